"""Ogg Opus vs MP3 for the recordings pipeline, on the same speech, in the same run.

    .venv/bin/python -m bench.recording_formats            # 60 s of speech, 5 rounds
    .venv/bin/python -m bench.recording_formats --seconds 300 --rounds 3

Builds one speech-like 8 kHz mono WAV (espeak-ng sentences in Russian and Ukrainian with
pauses between them and quiet line noise; a tone stand-in when espeak-ng is missing), then
encodes it with each of the pipeline's formats (``recordings.audio.FORMATS``: the same ffmpeg
options, through the same pipes) and reports, for each: the size, the median encode time and the
spectral distance from the original after decoding (the mean log-spectral distance over the
speech frames, in dB: lower is closer; phase-blind, so fair to a speech codec that shapes its
noise instead of keeping the waveform). Then MP3 at 24 and 32 kbit/s, to see whether more bits
let it catch up. Ratios are MP3 / Opus. The last line is one JSON object.

The verdict (``recordings.audio.CHOSEN``): **Opus in Ogg**. At the same nominal 16 kbit/s
both files are the same size (within 2 %), but Opus's spectral distance is about half MP3's
(5.9 against 12.1 dB on a quiet 2-core machine), and MP3 does not catch up even with twice the
bits (32 kbit/s: 9.5 dB at twice the size): for a given quality Opus needs well under half the
storage. At 8 kHz MP3 is MPEG-2.5, a music codec run below its design range (it starves whole
bands); Opus's SILK mode is a speech codec made for exactly this band. MP3 encodes about 4x
faster (0.1 s against 0.4 s per minute of audio), but both run over 100x faster than real
time, so encode time does not decide.
"""

from __future__ import annotations

import argparse
import array
import cmath
import dataclasses
import io
import json
import math
import statistics
import subprocess
import sys
import time
import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from pydub import AudioSegment
    from pydub.utils import audioop

from emulator import audio as emulator_audio
from recordings.audio import CHOSEN, FORMATS, Format, decode_wav, encode, ffmpeg_path

RATE = 8000
SENTENCES = [
    ("Здравствуйте, мне нужна помощь, пожалуйста перезвоните мне вечером.", "ru"),
    ("Мой брат не выходит на связь уже третью неделю, я не знаю, где он.", "ru"),
    ("Добрий день, я хочу дізнатися, як можна отримати інформацію.", "uk"),
    ("Я звоню из другого города, связь плохая, повторю ещё раз.", "ru"),
    ("Номер телефона я оставлю позже, спасибо, до свидания.", "ru"),
]
PAUSES_S = (0.6, 1.2, 0.4, 0.9, 1.5)


def speech_wav(seconds: float) -> bytes:
    """About ``seconds`` of speech with pauses and quiet line noise: 8 kHz mono 16-bit WAV."""
    track = AudioSegment.silent(duration=300, frame_rate=RATE)
    index = 0
    while len(track) < seconds * 1000:
        text, language = SENTENCES[index % len(SENTENCES)]
        track += emulator_audio.speech(text, language)
        track += AudioSegment.silent(
            duration=PAUSES_S[index % len(PAUSES_S)] * 1000, frame_rate=RATE
        )
        index += 1
    track = emulator_audio.normalise(track[: int(seconds * 1000)])
    noise = emulator_audio.noise(len(track) / 1000).apply_gain(-32)  # about -47 dBFS of hiss
    track = track.overlay(noise)
    buffer = io.BytesIO()
    track.export(buffer, format="wav")
    return buffer.getvalue()


def decode(encoded: bytes) -> bytes:
    """Encoded audio back to 8 kHz mono s16 PCM (ffmpeg through pipes)."""
    result = subprocess.run(
        [ffmpeg_path(), "-nostdin", "-v", "error", "-i", "pipe:0", "-ac", "1", "-ar", str(RATE),
         "-f", "s16le", "pipe:1"],
        input=encoded, capture_output=True, check=True, timeout=300,
    )  # fmt: skip
    return result.stdout


def align(reference: bytes, decoded: bytes) -> tuple[bytes, bytes]:
    """Both PCM streams cut to where they line up (the codec's delay found with audioop)."""
    probe = reference[2 * RATE : 3 * RATE * 2]  # one second from the middle of the speech
    offset, _factor = audioop.findfit(decoded[: 2 * RATE * 4], probe)
    shift = offset - RATE  # samples the decoded audio lags the reference by
    if shift >= 0:
        decoded = decoded[2 * shift :]
    else:
        reference = reference[-2 * shift :]
    length = min(len(reference), len(decoded)) // 2 * 2
    return reference[:length], decoded[:length]


def _fft(values: list[complex]) -> list[complex]:
    size = len(values)
    if size == 1:
        return values
    even, odd = _fft(values[0::2]), _fft(values[1::2])
    out = [0j] * size
    for k in range(size // 2):
        twiddle = cmath.exp(-2j * math.pi * k / size) * odd[k]
        out[k], out[k + size // 2] = even[k] + twiddle, even[k] - twiddle
    return out


def _power_spectrum(samples: array.array, start: int) -> list[float]:
    frame = [complex(samples[start + i] * _HANN[i]) for i in range(FRAME)]
    return [abs(value) ** 2 for value in _fft(frame)[1 : FRAME // 2]]


FRAME = 256  # 32 ms at 8 kHz
_HANN = [0.5 - 0.5 * math.cos(2 * math.pi * i / FRAME) for i in range(FRAME)]
_FLOOR = 1e3  # power floor: bins far below audibility do not dominate the distance


def spectral_distance_db(reference: bytes, decoded: bytes) -> float:
    """Mean log-spectral distance (dB) over the speech frames: how far the decoded spectrum
    is from the original's. Phase-blind, so fair to a speech codec that shapes its noise
    rather than keeping the waveform; spectral holes (a starved MP3) count fully."""
    reference, decoded = align(reference, decoded)
    ref, dec = array.array("h", reference), array.array("h", decoded)
    starts = [
        start
        for start in range(0, len(ref) - FRAME, 2 * FRAME)
        if audioop.rms(reference[2 * start : 2 * (start + FRAME)], 2) > 300  # speech, not pause
    ]
    distances = []
    for start in starts:
        pairs = zip(_power_spectrum(ref, start), _power_spectrum(dec, start), strict=True)
        squares = [(10 * math.log10((r + _FLOOR) / (d + _FLOOR))) ** 2 for r, d in pairs]
        distances.append(math.sqrt(sum(squares) / len(squares)))
    return round(sum(distances) / len(distances), 2) if distances else 0.0


def measure(segment: AudioSegment, fmt: Format, rounds: int) -> dict[str, float]:
    """Size, median encode time and spectral distance of ``segment`` encoded as ``fmt``."""
    timings, encoded = [], b""
    for _ in range(max(1, rounds)):
        started = time.perf_counter()
        encoded = encode(segment, fmt)
        timings.append(time.perf_counter() - started)
    return {
        "bytes": len(encoded),
        "kbps": round(len(encoded) * 8 / len(segment), 1),  # bytes·8 / ms = kbit/s
        "encode_ms": round(statistics.median(timings) * 1000, 1),
        "lsd_db": spectral_distance_db(segment.raw_data, decode(encoded)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the speech")
    parser.add_argument("--rounds", type=int, default=5, help="encodes per format (median)")
    args = parser.parse_args(argv)

    wav = speech_wav(args.seconds)
    segment = decode_wav(wav)
    seconds = len(segment) / 1000
    voice = "espeak-ng" if emulator_audio.espeak_path() else "a tone (espeak-ng missing)"
    print(f"speech: {seconds:.1f} s of {voice} with pauses, WAV {len(wav):,} bytes, 8 kHz mono")
    results = {name: measure(segment, FORMATS[name], args.rounds) for name in ("opus", "mp3")}
    for name, got in results.items():
        print(
            f"{name:4} {FORMATS[name].content_type:22} {got['bytes']:>9,} bytes "
            f"({got['kbps']} kbit/s), encode {got['encode_ms']:6.1f} ms "
            f"({seconds * 1000 / got['encode_ms']:.0f}x real time), "
            f"spectral distance {got['lsd_db']} dB"
        )
    for bitrate in ("24k", "32k"):  # what MP3 needs more bits for: does it catch up?
        richer = dataclasses.replace(
            FORMATS["mp3"], ffmpeg_args=_with_bitrate(FORMATS["mp3"].ffmpeg_args, bitrate)
        )
        got = measure(segment, richer, 1)
        print(
            f"     (MP3 at {bitrate}: {got['bytes']:>9,} bytes, spectral distance "
            f"{got['lsd_db']} dB)"
        )
    opus, mp3 = results["opus"], results["mp3"]
    size_ratio = mp3["bytes"] / opus["bytes"]
    time_ratio = mp3["encode_ms"] / opus["encode_ms"]
    print(
        f"MP3 / Opus: size {size_ratio:.2f}x, encode time {time_ratio:.2f}x, "
        f"spectral distance {mp3['lsd_db'] / opus['lsd_db']:.2f}x; the pipeline uses {CHOSEN}"
    )
    summary = {
        "seconds": round(seconds, 1),
        "wav_bytes": len(wav),
        "opus_bytes": opus["bytes"],
        "mp3_bytes": mp3["bytes"],
        "opus_encode_ms": opus["encode_ms"],
        "mp3_encode_ms": mp3["encode_ms"],
        "opus_lsd_db": opus["lsd_db"],
        "mp3_lsd_db": mp3["lsd_db"],
        "size_ratio_mp3_to_opus": round(size_ratio, 2),
        "encode_time_ratio_mp3_to_opus": round(time_ratio, 2),
        "chosen": CHOSEN,
    }
    print(json.dumps(summary))
    return 0


def _with_bitrate(args: str, bitrate: str) -> str:
    values = args.split()
    values[values.index("-b:a") + 1] = bitrate
    return " ".join(values)


if __name__ == "__main__":
    sys.exit(main())
