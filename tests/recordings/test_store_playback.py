"""The local store (atomic, private, keys by prefix) and range reads through playback: exact
bytes at every segment boundary, only the needed segments read, tampering and key rotation."""

from __future__ import annotations

import os
import stat
from types import SimpleNamespace

import pytest

from recordings import crypto, playback
from recordings.crypto import SEGMENT_SIZE, FileKey, TamperedRecording
from recordings.store import LocalRecordingStore, MissingObject, object_key, prefix_of
from tests.recordings.conftest import new_key, protector

S = SEGMENT_SIZE


class CountingStore(LocalRecordingStore):
    """The real local store, noting every read (to see which segments a range costs)."""

    def __init__(self, root):
        super().__init__(root)
        self.reads: list[tuple[int, int]] = []

    def read(self, key, offset, length):
        self.reads.append((offset, length))
        return super().read(key, offset, length)


def stored_recording(store, keys, plaintext: bytes, recording_id: int = 41):
    """Encrypt ``plaintext`` as the pipeline does, put it in ``store``; a row-like object."""
    key = FileKey.generate()
    sealed = crypto.seal_key(keys, recording_id, key)
    blob = crypto.encrypt(plaintext, key)
    storage_key = object_key(recording_id, key.file_id)
    store.put(storage_key, blob)
    return SimpleNamespace(
        id=recording_id, storage_key=storage_key, key_id=sealed.key_id,
        wrapped_key=sealed.ciphertext, content_type="audio/ogg; codecs=opus",
        stored_size=len(blob), file_id=key.file_id.hex(),
    )  # fmt: skip


def test_store_round_trip_is_private_atomic_and_listed_by_prefix(store):
    key = object_key(12, os.urandom(16))
    store.put(key, b"x" * 1000)
    assert store.size(key) == 1000
    assert store.read(key, 990, 50) == b"x" * 10
    path = store.root / key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no staging file left
    other = object_key(12, os.urandom(16))
    store.put(other, b"y")
    store.put(object_key(120, os.urandom(16)), b"z")  # another recording: not in 12's prefix
    assert store.keys(prefix_of(12)) == sorted([key, other])
    assert store.delete(key) and not store.delete(key)
    assert store.delete(other)
    assert not (store.root / "12").exists()  # the recording's folder goes with its last file
    with pytest.raises(MissingObject):
        store.size(key)
    with pytest.raises(ValueError):
        store.put("../escape.hrec", b"")


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (None, None), (0, 0), (0, S - 1), (S - 1, S), (S, S), (S - 2, S + 1), (S, 2 * S - 1),
        (2 * S - 1, 2 * S), (3 * S, None), (3 * S + 99, None), (100, 10 * S),
    ],
)  # fmt: skip
def test_range_reads_give_exact_bytes_at_segment_boundaries(tmp_path, start, end):
    store = CountingStore(tmp_path / "store")
    keys = protector(k1=new_key())
    plaintext = os.urandom(3 * S + 100)
    recording = stored_recording(store, keys, plaintext)
    total, content_type, chunks = playback.read_range(
        recording, start, end, store=store, protector=keys
    )
    first = start or 0
    last = min(end if end is not None else total - 1, total - 1)
    assert (total, content_type) == (len(plaintext), "audio/ogg; codecs=opus")
    assert b"".join(chunks) == plaintext[first : last + 1]
    header_read, *segment_reads = store.reads
    assert header_read == (0, crypto.HEADER_SIZE)
    read_bytes = sum(length for _, length in segment_reads)
    needed = len(range(first // S, last // S + 1))
    assert read_bytes <= needed * (S + crypto.TAG_SIZE)  # only the segments the range needs


def test_a_range_past_the_end_is_not_satisfiable(store):
    keys = protector(k1=new_key())
    recording = stored_recording(store, keys, os.urandom(1000))
    with pytest.raises(playback.RangeNotSatisfiable) as info:
        playback.read_range(recording, 1000, None, store=store, protector=keys)
    assert info.value.total_size == 1000


def test_a_range_that_ends_before_it_starts_is_not_satisfiable(store):
    keys = protector(k1=new_key())
    recording = stored_recording(store, keys, os.urandom(1000))
    with pytest.raises(playback.RangeNotSatisfiable) as info:
        playback.read_range(recording, 10, 5, store=store, protector=keys)
    assert info.value.total_size == 1000


@pytest.mark.parametrize(
    ("header", "wanted"),
    [
        (None, None), ("bytes=0-", (0, 999)), ("bytes=0-0", (0, 0)), ("bytes=100-199", (100, 199)),
        ("bytes=990-5000", (990, 999)), ("bytes=999-", (999, 999)), ("bytes=-50", (950, 999)),
        ("bytes=-5000", (0, 999)), ("BYTES=1-2", (1, 2)), (" bytes=1-2 ", (1, 2)),
        ("bytes=1-2,", (1, 2)), ("bytes=, 1-2", (1, 2)), ("bytes=5-" + "9" * 40, (5, 999)),
        ("items=0-5", None), ("x-custom=whatever", None),  # another unit: ignored (RFC 9110)
    ],
)  # fmt: skip
def test_a_range_header_gives_one_byte_range_or_the_whole(header, wanted):
    assert playback.parse_range(header, 1000) == wanted


@pytest.mark.parametrize(
    "header",
    [
        "bytes=10-5", "bytes=-0", "bytes=1000-", "bytes=999999999-", "bytes=9" + "9" * 5000 + "-",
        "bytes=0-1,5-6", "bytes=0-1, 2-3, 4-5", "bytes=-", "bytes=", "bytes=abc", "bytes=1-2-3",
        "bytes=0x10-20", "bytes=+1-2", "bytes=1 -2", "bytes=½-1", "bytes=١-٢", "garbage", "",
        "bytes", "=0-1", "bytes=\x00-1", "bytes=0-1\r\nX: y",
    ],
)  # fmt: skip
def test_a_malformed_or_unsatisfiable_range_is_refused_with_the_size(header):
    with pytest.raises(playback.RangeNotSatisfiable) as info:
        playback.parse_range(header, 1000)
    assert info.value.total_size == 1000


def test_every_range_of_an_empty_file_is_unsatisfiable():
    for header in ("bytes=0-", "bytes=-1", "bytes=0-0"):
        with pytest.raises(playback.RangeNotSatisfiable):
            playback.parse_range(header, 0)


def test_tampering_is_detected_in_the_segment_read(store):
    keys = protector(k1=new_key())
    plaintext = os.urandom(3 * S)
    recording = stored_recording(store, keys, plaintext)
    path = store.root / recording.storage_key
    blob = bytearray(path.read_bytes())
    blob[crypto.HEADER_SIZE + 2 * (S + crypto.TAG_SIZE) + 5] ^= 0x80  # inside segment 2
    path.write_bytes(bytes(blob))
    _total, _type, chunks = playback.read_range(recording, 0, S - 1, store=store, protector=keys)
    assert b"".join(chunks) == plaintext[:S]  # segment 0 is intact and opens
    _total, _type, chunks = playback.read_range(recording, 2 * S, None, store=store, protector=keys)
    with pytest.raises(TamperedRecording):
        b"".join(chunks)


def test_a_truncated_file_is_refused_before_any_byte(store):
    keys = protector(k1=new_key())
    recording = stored_recording(store, keys, os.urandom(2 * S))
    path = store.root / recording.storage_key
    path.write_bytes(path.read_bytes()[: -(S + crypto.TAG_SIZE)])
    with pytest.raises(TamperedRecording):
        playback.read_range(recording, store=store, protector=keys)


def test_playback_after_key_rotation_and_rewrap(store):
    old, new = new_key(), new_key()
    plaintext = os.urandom(S + 10)
    recording = stored_recording(store, protector(old=old), plaintext)
    rotated = protector(new=new, old=old)
    assert playback.read_all(recording, store=store, protector=rotated) == plaintext
    sealed = crypto.rewrap_key(
        rotated, recording.id, bytes.fromhex(recording.file_id), "old", recording.wrapped_key
    )
    recording.key_id, recording.wrapped_key = sealed.key_id, sealed.ciphertext
    assert playback.read_all(recording, store=store, protector=protector(new=new)) == plaintext


def test_no_stored_audio_is_not_playable(store):
    row = SimpleNamespace(id=1, storage_key=None, wrapped_key=None)
    with pytest.raises(playback.NotPlayable):
        playback.read_range(row, store=store, protector=protector(k=new_key()))
