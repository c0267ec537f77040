"""Real audio for recordings: 8 kHz mono 16-bit WAV (espeak-ng speech or a generated signal)."""

from __future__ import annotations

import functools
import io
import os
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
    from pydub.generators import Sine, WhiteNoise

RATE = 8000
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


def tone(seconds: float) -> AudioSegment:
    """A voice-like stand-in signal: a 220 Hz tone with a little noise."""
    millis = max(1, round(seconds * 1000))
    base = Sine(220, sample_rate=RATE).to_audio_segment(duration=millis, volume=-12)
    hiss = WhiteNoise(sample_rate=RATE).to_audio_segment(duration=millis, volume=-30)
    return normalise(base.overlay(hiss))


def noise(seconds: float) -> AudioSegment:
    """Unintelligible speech-level noise of the given length (``speak_for``)."""
    millis = max(1, round(seconds * 1000))
    return normalise(WhiteNoise(sample_rate=RATE).to_audio_segment(duration=millis, volume=-15))


def silence(seconds: float) -> AudioSegment:
    return AudioSegment.silent(duration=max(0, round(seconds * 1000)), frame_rate=RATE)


def seconds_of(segment: AudioSegment) -> float:
    return len(segment) / 1000.0


def mix(pieces: list[tuple[float, AudioSegment]], length: float) -> AudioSegment:
    """Place each (offset seconds, audio) on a silent track ``length`` seconds long."""
    track = silence(length)
    for offset, piece in pieces:
        track = track.overlay(piece, position=max(0, round(offset * 1000)))
    return normalise(track)


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
