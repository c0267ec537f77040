"""Shared by the recordings tests: real speech audio (espeak-ng through the emulator's audio
module, a tone where espeak-ng is missing), data-protection keys, a local store."""

from __future__ import annotations

import base64
import functools
import io
import os
from pathlib import Path

import pytest

from dataprotection import DataProtector
from emulator import audio as emulator_audio
from recordings.store import LocalRecordingStore


@functools.cache
def speech_wav(text: str = "Здравствуйте, мне нужна помощь, перезвоните мне вечером.") -> bytes:
    """A real 8 kHz mono 16-bit WAV of speech, as the carrier hands it over."""
    buffer = io.BytesIO()
    emulator_audio.normalise(emulator_audio.speech(text, "ru")).export(buffer, format="wav")
    return buffer.getvalue()


def new_key() -> bytes:
    return os.urandom(32)


def protector(**keys: bytes) -> DataProtector:
    """A DataProtector with these data keys (the first seals new data)."""
    return DataProtector(os.urandom(32), dict(keys))


def b64(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).decode()


@pytest.fixture
def store(tmp_path: Path) -> LocalRecordingStore:
    return LocalRecordingStore(tmp_path / "recordings")
