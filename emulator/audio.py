"""Real audio for recordings: 8 kHz mono 16-bit WAV (espeak-ng speech or a generated signal)."""

from __future__ import annotations

import array
import functools
import io
import math
import os
import random
import re
import shutil
import subprocess
import tempfile
import threading
import warnings

with warnings.catch_warnings():
    # pydub imports audioop (deprecated) and warns when ffmpeg is not on PATH.
    warnings.simplefilter("ignore")
    from pydub import AudioSegment
    from pydub.utils import audioop, db_to_float

RATE = 8000
TONE_HZ = 220
NOISE_SAMPLES = 16 * RATE  # a cached noise block: speech-length noise is a window of it
_lock = threading.Lock()


@functools.cache
def ffmpeg_path() -> str:
    """The system's ffmpeg when on PATH, otherwise the binary the imageio-ffmpeg wheel ships."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def _use_ffmpeg() -> None:
    AudioSegment.converter = ffmpeg_path()
    AudioSegment.ffmpeg = ffmpeg_path()


def espeak_path() -> str | None:
    return shutil.which("espeak-ng")


def normalise(segment: AudioSegment) -> AudioSegment:
    return segment.set_frame_rate(RATE).set_channels(1).set_sample_width(2)


def estimate_speech_seconds(text: str) -> float:
    """Roughly how long a voice takes to say ``text`` (about 14 characters a second)."""
    return round(max(0.5, len(text.strip()) / 14.0), 2)


def guess_language(text: str) -> str:
    """An espeak-ng voice for the text: Ukrainian or Russian for Cyrillic, else English."""
    if re.search("[іїєґІЇЄҐ]", text):
        return "uk"
    if re.search("[а-яА-ЯёЁ]", text):
        return "ru"
    return "en-us"


def speech(text: str, language: str | None = None) -> AudioSegment:
    """``text`` spoken by espeak-ng when installed, else a tone of the estimated length."""
    exe = espeak_path()
    voice = (language or guess_language(text)).split("-")[0].lower()
    if voice == "en":
        voice = "en-us"
    if exe:
        fd, path = tempfile.mkstemp(suffix=".wav", prefix="emu-say-")
        os.close(fd)
        try:
            done = subprocess.run(
                [exe, "-w", path, "-v", voice, "--", text],
                capture_output=True,
                timeout=30,
                check=False,
            )
            with open(path, "rb") as fh:
                data = fh.read()
            if done.returncode == 0 and len(data) > 44:
                return normalise(AudioSegment.from_wav(io.BytesIO(data)))
        finally:
            os.unlink(path)
    return tone(estimate_speech_seconds(text))


def _samples(seconds: float) -> int:
    """How many 8 kHz samples pydub's generators made for ``seconds`` (whole milliseconds)."""
    return int(RATE * (max(1, round(seconds * 1000)) / 1000.0))


def _segment(data: bytes) -> AudioSegment:
    return AudioSegment(data=data, sample_width=2, frame_rate=RATE, channels=1)


@functools.cache
def _noise_block(volume: float) -> bytes:
    """NOISE_SAMPLES of uniform white noise at ``volume`` dB below full scale (what pydub's
    WhiteNoise makes), scaled in C, stored twice over so any window of it is one slice."""
    block = audioop.mul(random.randbytes(2 * NOISE_SAMPLES), 2, db_to_float(volume))  # noqa: S311
    return block + block


def _white_noise(samples: int, volume: float) -> bytes:
    """``samples`` of white noise: a window at a random offset of a cached noise block."""
    block = _noise_block(volume)
    start = 2 * random.randrange(NOISE_SAMPLES)  # noqa: S311
    size = 2 * samples
    if size <= NOISE_SAMPLES * 2:
        return block[start : start + size]
    return (block[start:] + block * (size // len(block) + 1))[:size]


@functools.cache
def _sine_period(volume: float) -> bytes:
    """One exact period of the 220 Hz tone at 8 kHz: 11 cycles fit in 400 samples."""
    period = RATE // math.gcd(RATE, TONE_HZ)
    step = 2 * math.pi * TONE_HZ / RATE
    scale = 32767 * db_to_float(volume)
    return array.array("h", (int(math.sin(step * n) * scale) for n in range(period))).tobytes()


def tone(seconds: float) -> AudioSegment:
    """A voice-like stand-in signal: a 220 Hz tone with a little noise."""
    samples = _samples(seconds)
    period = _sine_period(-12.0)
    base = (period * (2 * samples // len(period) + 1))[: 2 * samples]
    return _segment(audioop.add(base, _white_noise(samples, -30.0), 2))


def noise(seconds: float) -> AudioSegment:
    """Unintelligible speech-level noise of the given length (``speak_for``)."""
    return _segment(_white_noise(_samples(seconds), -15.0))


def silence(seconds: float) -> AudioSegment:
    return AudioSegment.silent(duration=max(0, round(seconds * 1000)), frame_rate=RATE)


def seconds_of(segment: AudioSegment) -> float:
    return len(segment) / 1000.0


def mix(pieces: list[tuple[float, AudioSegment]], length: float) -> AudioSegment:
    """Place each (offset seconds, audio) on a silent track ``length`` seconds long: what
    pydub's ``silent`` + ``overlay`` make (pieces cut at the end), summed in C on raw bytes."""
    if any((p.frame_rate, p.channels, p.sample_width) != (RATE, 1, 2) for _, p in pieces):
        track = silence(length)
        for offset, piece in pieces:
            track = track.overlay(piece, position=max(0, round(offset * 1000)))
        return normalise(track)
    frames = int(RATE * (max(0, round(length * 1000)) / 1000.0))
    step = 2 * RATE // 1000  # bytes per millisecond
    if pieces:  # pydub's overlay re-cuts the track to whole milliseconds of its own length
        frames = step // 2 * round(1000 * (frames / RATE))
    track = bytearray(2 * frames)
    for offset, piece in pieces:
        start = min(max(0, round(offset * 1000)) * step, len(track))
        data = piece.raw_data[: len(track) - start]
        under = track[start : start + len(data)]
        if under != bytes(len(under)):  # something there already: add, clipping like pydub
            data = audioop.add(under, data, 2)
        track[start : start + len(data)] = data
    return _segment(bytes(track))


def wav_bytes(segment: AudioSegment) -> bytes:
    buffer = io.BytesIO()
    normalise(segment).export(buffer, format="wav")
    return buffer.getvalue()


def mp3_bytes(wav: bytes) -> bytes:
    """Transcode a WAV to MP3 with ffmpeg (through pydub)."""
    with _lock:
        _use_ffmpeg()
        segment = AudioSegment.from_wav(io.BytesIO(wav))
        buffer = io.BytesIO()
        segment.export(buffer, format="mp3", bitrate="32k")
    return buffer.getvalue()
