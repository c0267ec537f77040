"""Checking and converting real audio (pydub, ffmpeg): a WAV of speech becomes mono Ogg Opus
with its duration and 100 peaks; anything that is not a non-empty WAV is refused."""

from __future__ import annotations

import io
import subprocess
import tempfile
import wave

import pytest
from pydub import AudioSegment

from recordings import audio
from tests.recordings.conftest import speech_wav


def decoded_seconds(encoded: bytes) -> float:
    """Decode with ffmpeg (through pipes) and measure, independently of the pipeline."""
    result = subprocess.run(
        [audio.ffmpeg_path(), "-v", "error", "-i", "pipe:0", "-f", "wav", "pipe:1"],
        input=encoded, capture_output=True, check=True,
    )  # fmt: skip
    segment = AudioSegment(data=result.stdout)
    return len(segment) / 1000


def test_speech_becomes_mono_ogg_opus_with_duration_and_peaks():
    wav = speech_wav()
    with wave.open(io.BytesIO(wav)) as source:
        seconds = source.getnframes() / source.getframerate()
    prepared = audio.prepare(wav)
    assert prepared.encoded.startswith(b"OggS") and b"OpusHead" in prepared.encoded[:200]
    assert prepared.content_type == "audio/ogg; codecs=opus"
    assert abs(prepared.duration_ms / 1000 - seconds) < 0.01
    assert abs(decoded_seconds(prepared.encoded) - seconds) < 0.1
    assert len(prepared.encoded) < len(wav) / 4  # 16 kbit/s against 128 kbit/s of PCM
    assert len(prepared.peaks) == audio.PEAK_COUNT == 100
    assert max(prepared.peaks) == 255 and min(prepared.peaks) < 255


def test_mp3_is_available_too():
    prepared = audio.prepare(speech_wav(), "mp3")
    assert prepared.content_type == "audio/mpeg"
    assert prepared.encoded[:2] in (b"\xff\xf3", b"\xff\xe3", b"\xff\xf2", b"\xff\xe2")


def test_stereo_is_mixed_to_mono_and_silence_has_flat_peaks():
    silent = AudioSegment.silent(duration=1500, frame_rate=8000).set_channels(2)
    buffer = io.BytesIO()
    silent.export(buffer, format="wav")
    prepared = audio.prepare(buffer.getvalue())
    assert prepared.duration_ms == 1500
    assert prepared.peaks == bytes(100)
    assert b"\x01\x01" in prepared.encoded[:100]  # OpusHead: version 1, one channel


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"<html>Not Found</html>" * 4,
        b"ID3\x04" + bytes(100),  # an MP3 is not what the carrier's .wav must be
        b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(60),  # a header, garbage format
    ],
)
def test_what_is_not_a_wav_is_refused(data):
    with pytest.raises(audio.NotAudio):
        audio.prepare(data)


def test_an_empty_wav_is_refused():
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as empty:
        empty.setnchannels(1)
        empty.setsampwidth(2)
        empty.setframerate(8000)
        empty.writeframes(b"")
    with pytest.raises(audio.NotAudio):
        audio.prepare(buffer.getvalue())


def test_no_temporary_file_is_written(tmp_path, monkeypatch):
    """The plaintext stays in memory: pydub's export to anything but WAV, or its decoding of
    a WAV it cannot parse, would stage the audio in temporary files."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    audio.prepare(speech_wav())
    audio.prepare(speech_wav(), "mp3")
    assert list(tmp_path.iterdir()) == []
