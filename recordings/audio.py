"""A recording's audio: check the carrier's WAV, convert it for the player, summarise it.

pydub decodes, checks and measures the WAV (its own parser: no ffmpeg, no temporary file). The
encoder is the ffmpeg binary pydub uses (the system's, else the imageio-ffmpeg wheel's), fed
through pipes rather than through ``AudioSegment.export``, which stages the audio in temporary
files: the plaintext never touches the disk, only the encrypted result does.

The format is Opus in Ogg (``bench/recording_formats.py`` measures it against MP3 on the same
speech): see ``FORMATS`` and ``CHOSEN``.
"""

from __future__ import annotations

import functools
import hashlib
import io
import shutil
import subprocess
import warnings
import wave
from dataclasses import dataclass

with warnings.catch_warnings():
    # pydub imports audioop (deprecated) and warns when ffmpeg is not on PATH.
    warnings.simplefilter("ignore")
    from pydub import AudioSegment
    from pydub.exceptions import CouldntDecodeError
    from pydub.utils import audioop

#: Peak values (0-255) kept for the player's waveform.
PEAK_COUNT = 100
ENCODE_TIMEOUT_S = 300


class NotAudio(ValueError):
    """What the carrier handed over is not a usable recording (not a WAV, or empty)."""


class EncodeFailed(RuntimeError):
    """ffmpeg could not encode the audio."""


@dataclass(frozen=True)
class Format:
    name: str
    content_type: str
    #: ffmpeg output options (after ``-i pipe:0``, space-separated), ending with the muxer.
    ffmpeg_args: str
    #: How an encoded file starts (a sanity check on ffmpeg's output).
    magic: tuple[bytes, ...]


FORMATS = {
    # Opus's SILK mode is built for speech: 8 kHz input gives narrowband Opus, VBR at 16 kbit/s
    # ("voip" favours intelligibility). Ogg is Opus's own container (RFC 7845).
    "opus": Format(
        "opus",
        "audio/ogg; codecs=opus",
        "-c:a libopus -b:a 16k -vbr on -application voip -compression_level 10 -f ogg",
        (b"OggS",),
    ),
    # MP3 at 8 kHz is MPEG-2.5 layer III; the same 16 kbit/s budget (CBR, no Xing header: the
    # output is a pipe that cannot be rewound).
    "mp3": Format(
        "mp3",
        "audio/mpeg",
        "-c:a libmp3lame -b:a 16k -write_xing 0 -id3v2_version 0 -f mp3",
        (b"\xff\xe2", b"\xff\xe3", b"\xff\xf2", b"\xff\xf3", b"\xff\xfa", b"\xff\xfb", b"ID3"),
    ),
}
#: The pipeline's format: Opus in Ogg. ``bench/recording_formats.py`` encodes the same speech
#: both ways: at 16 kbit/s the sizes are equal, but Opus's spectral distance from the original is
#: half MP3's, and MP3 stays worse even at 32 kbit/s (twice the size). MP3 encodes ~4x faster,
#: but both run over 100x real time. Chromium and Firefox play Ogg Opus in ``<audio>`` and seek
#: in it with HTTP range requests (older Safari needs MP3: ``FORMATS["mp3"]`` is kept for that).
CHOSEN = "opus"


@dataclass(frozen=True)
class PreparedAudio:
    """A recording ready to be encrypted: the encoded audio and what the player shows."""

    encoded: bytes
    content_type: str
    duration_ms: int
    peaks: bytes  # PEAK_COUNT values 0-255
    sha256: str  # of ``encoded``: the store's read-back is compared with it


@functools.cache
def ffmpeg_path() -> str:
    """The system's ffmpeg when on PATH, otherwise the binary the imageio-ffmpeg wheel ships."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def decode_wav(data: bytes) -> AudioSegment:
    """The carrier's WAV as mono 16-bit audio; ``NotAudio`` unless it is a real, non-empty WAV."""
    if len(data) < 44 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise NotAudio("not a RIFF/WAVE file")
    try:
        segment = AudioSegment(data=data)  # pydub's own WAV reader
    except (CouldntDecodeError, wave.Error, ValueError, IndexError) as exc:
        raise NotAudio(f"the WAV does not decode ({type(exc).__name__})") from None
    if segment.frame_count() < 1 or segment.frame_rate < 1000:
        raise NotAudio("the WAV holds no audio")
    if segment.channels != 1:
        segment = segment.set_channels(1)
    if segment.sample_width != 2:
        segment = segment.set_sample_width(2)
    return segment


def waveform_peaks(segment: AudioSegment, count: int = PEAK_COUNT) -> bytes:
    """``count`` peak values (0-255), one per equal slice of the audio, scaled so the loudest
    slice is 255 (a quiet phone line still draws a readable waveform); silence is all zeros."""
    raw = segment.raw_data
    width = segment.sample_width
    frames = len(raw) // width
    peaks = []
    for index in range(count):
        start, end = frames * index // count, frames * (index + 1) // count
        chunk = raw[start * width : max(end, start + 1) * width] if frames else b""
        peaks.append(audioop.max(chunk, width) if chunk else 0)
    loudest = max(peaks)
    if loudest == 0:
        return bytes(count)
    return bytes(min(255, round(peak * 255 / loudest)) for peak in peaks)


def encode(segment: AudioSegment, fmt: Format) -> bytes:
    """``segment`` encoded by ffmpeg through pipes (nothing written to disk)."""
    source = io.BytesIO()
    segment.export(source, format="wav")  # a plain WAV in memory: pydub runs no ffmpeg for it
    command = [
        ffmpeg_path(), "-nostdin", "-hide_banner", "-v", "error", "-f", "wav", "-i", "pipe:0",
        "-vn", "-ac", "1", "-map_metadata", "-1", "-fflags", "+bitexact", *fmt.ffmpeg_args.split(),
        "pipe:1",
    ]  # fmt: skip
    try:
        result = subprocess.run(
            command, input=source.getvalue(), capture_output=True, timeout=ENCODE_TIMEOUT_S,
            check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EncodeFailed(f"ffmpeg did not run ({type(exc).__name__})") from None
    if result.returncode != 0 or not result.stdout.startswith(fmt.magic):
        last = (result.stderr.decode(errors="replace").strip().splitlines() or ["?"])[-1]
        raise EncodeFailed(f"ffmpeg failed ({result.returncode}): {last[:160]}")
    return result.stdout


def prepare(data: bytes, format_name: str = CHOSEN) -> PreparedAudio:
    """Check the carrier's WAV and encode it for storage and playback."""
    segment = decode_wav(data)
    fmt = FORMATS[format_name]
    encoded = encode(segment, fmt)
    return PreparedAudio(
        encoded=encoded,
        content_type=fmt.content_type,
        duration_ms=len(segment),
        peaks=waveform_peaks(segment),
        sha256=hashlib.sha256(encoded).hexdigest(),
    )
