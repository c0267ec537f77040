"""Where encrypted recordings live: the ``RecordingStore`` interface and a local directory.

The store holds opaque encrypted objects under keys like ``17/3f9c….hrec`` (the recording's id,
then the file id): no personal data in a key, nothing readable in an object. Writes are whole
objects, atomic (a reader sees the old object or the new one, never half of one); reads are byte
ranges. That is what an S3-compatible store offers too (PUT, ranged GET, DELETE, list by
prefix), so one can replace ``LocalRecordingStore`` without touching the pipeline or playback.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from pathlib import Path
from typing import Protocol

from settings import Settings

_KEY = re.compile(r"^[0-9]{1,12}/[0-9a-f]{32}\.hrec$")


class MissingObject(LookupError):
    """No object under that key."""


class RecordingStore(Protocol):
    def put(self, key: str, data: bytes) -> None:
        """Write an object atomically (replacing one with the same key)."""

    def size(self, key: str) -> int:
        """The object's size in bytes; ``MissingObject`` if there is none."""

    def read(self, key: str, offset: int, length: int) -> bytes:
        """``length`` bytes from ``offset`` (fewer at the end); ``MissingObject`` if none."""

    def delete(self, key: str) -> bool:
        """Remove the object; False if there was none."""

    def keys(self, prefix: str) -> list[str]:
        """The keys that start with ``prefix`` (``"17/"``: every object of recording 17)."""


def object_key(recording_id: int, file_id: bytes) -> str:
    return f"{recording_id}/{file_id.hex()}.hrec"


def prefix_of(recording_id: int) -> str:
    return f"{recording_id}/"


class LocalRecordingStore:
    """Objects as files under ``root`` (mode 0600 in 0700 directories), written to a temporary
    name, fsynced, then renamed into place."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        if not _KEY.match(key):
            raise ValueError("not a recording store key")
        return self.root / key

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.parent.mkdir(mode=0o700, exist_ok=True)
        staging = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
        fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(staging, path)
        except BaseException:
            staging.unlink(missing_ok=True)
            raise
        _fsync_directory(path.parent)

    def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            raise MissingObject(key) from None

    def read(self, key: str, offset: int, length: int) -> bytes:
        try:
            with self._path(key).open("rb") as fh:
                fh.seek(offset)
                return fh.read(length)
        except FileNotFoundError:
            raise MissingObject(key) from None

    def delete(self, key: str) -> bool:
        path = self._path(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        _fsync_directory(path.parent)
        with contextlib.suppress(OSError):  # the recording's last object: its folder goes too
            path.parent.rmdir()
        return True

    def keys(self, prefix: str) -> list[str]:
        folder, _, name_prefix = prefix.rpartition("/")
        directory = self.root / folder if folder else self.root
        if not directory.is_dir():
            return []
        found = []
        for entry in directory.iterdir():
            key = f"{folder}/{entry.name}" if folder else entry.name
            if entry.is_file() and entry.name.startswith(name_prefix) and _KEY.match(key):
                found.append(key)
        return sorted(found)


def _fsync_directory(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def store_path(settings: Settings) -> Path:
    """The local store's directory: ``recordings/`` in the instance folder."""
    return settings.instance_path / "recordings"


def recording_store(settings: Settings) -> RecordingStore:
    """The store the settings name (today: the local directory)."""
    return LocalRecordingStore(store_path(settings))
