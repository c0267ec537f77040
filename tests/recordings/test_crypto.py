"""The segmented encryption format: round trips at every size around a segment boundary,
tampering of every kind detected, data keys bound to their recording, key rotation."""

from __future__ import annotations

import os

import pytest

from recordings import crypto
from recordings.crypto import HEADER_SIZE, SEGMENT_SIZE, TAG_SIZE, FileKey, TamperedRecording
from tests.recordings.conftest import new_key, protector

S = SEGMENT_SIZE


def encrypted(plaintext: bytes) -> tuple[bytes, FileKey]:
    key = FileKey.generate()
    return crypto.encrypt(plaintext, key), key


@pytest.mark.parametrize("size", [1, 17, S - 1, S, S + 1, 2 * S, 3 * S + 5])
def test_round_trip_at_every_size_around_the_segment_size(size):
    plaintext = os.urandom(size)
    blob, key = encrypted(plaintext)
    segments = -(-size // S)
    assert len(blob) == HEADER_SIZE + size + segments * TAG_SIZE
    assert crypto.decrypt(blob, key.data_key) == plaintext
    layout = crypto.Layout.of(crypto.Header.parse(blob), len(blob))
    assert (layout.segment_count, layout.plaintext_size) == (segments, size)


def test_layout_names_the_segments_a_range_needs():
    blob, _ = encrypted(os.urandom(3 * S + 5))
    layout = crypto.Layout.of(crypto.Header.parse(blob), len(blob))
    assert list(layout.segments_for(0, 0)) == [0]
    assert list(layout.segments_for(S - 1, S)) == [0, 1]
    assert list(layout.segments_for(S, 2 * S - 1)) == [1]
    assert list(layout.segments_for(3 * S, 3 * S + 4)) == [3]
    assert layout.span(3) == (HEADER_SIZE + 3 * (S + TAG_SIZE), 5 + TAG_SIZE)


def _segment(blob: bytes, index: int) -> tuple[int, int]:
    layout = crypto.Layout.of(crypto.Header.parse(blob), len(blob))
    return layout.span(index)


def test_a_flipped_bit_anywhere_is_detected():
    blob, key = encrypted(os.urandom(2 * S + 100))
    for position in (HEADER_SIZE - 1, HEADER_SIZE + 10, HEADER_SIZE + S + 20, len(blob) - 1):
        damaged = bytearray(blob)
        damaged[position] ^= 0x01
        with pytest.raises(TamperedRecording):
            crypto.decrypt(bytes(damaged), key.data_key)


def test_swapped_segments_are_detected():
    blob, key = encrypted(os.urandom(3 * S))
    (a, length), (b, _) = _segment(blob, 0), _segment(blob, 1)
    swapped = blob[:a] + blob[b : b + length] + blob[a : a + length] + blob[b + length :]
    with pytest.raises(TamperedRecording):
        crypto.decrypt(swapped, key.data_key)


def test_a_file_cut_at_a_segment_boundary_is_detected():
    """Without the last-segment flag in nonce and AAD, dropping the final segment would leave
    a shorter file that still opened."""
    blob, key = encrypted(os.urandom(3 * S))
    offset, _ = _segment(blob, 2)
    with pytest.raises(TamperedRecording):
        crypto.decrypt(blob[:offset], key.data_key)
    with pytest.raises(TamperedRecording):
        crypto.decrypt(blob[: offset - 7], key.data_key)


def test_appended_segments_are_detected():
    blob, key = encrypted(os.urandom(2 * S))
    offset, length = _segment(blob, 1)
    with pytest.raises(TamperedRecording):
        crypto.decrypt(blob + blob[offset : offset + length], key.data_key)


def test_a_segment_from_another_file_with_the_same_key_does_not_open():
    """Even under one data key, the header (file id, nonce prefix) is bound to each segment."""
    key = FileKey.generate()
    other = FileKey(key.data_key, os.urandom(16), os.urandom(7))
    first = crypto.encrypt(os.urandom(2 * S), key)
    second = crypto.encrypt(os.urandom(2 * S), other)
    offset, length = _segment(first, 0)
    mixed = first[:offset] + second[offset : offset + length] + first[offset + length :]
    with pytest.raises(TamperedRecording):
        crypto.decrypt(mixed, key.data_key)


def test_not_an_encrypted_recording():
    with pytest.raises(TamperedRecording):
        crypto.Header.parse(b"RIFF" + bytes(40))
    with pytest.raises(TamperedRecording):
        crypto.Header.parse(b"HREC")


def test_the_data_key_is_bound_to_its_recording_and_file():
    keys = protector(k1=new_key())
    key = FileKey.generate()
    sealed = crypto.seal_key(keys, 7, key)
    assert crypto.open_key(keys, 7, key.file_id, sealed.key_id, sealed.ciphertext) == key.data_key
    with pytest.raises(TamperedRecording):  # moved to another recording's row
        crypto.open_key(keys, 8, key.file_id, sealed.key_id, sealed.ciphertext)
    with pytest.raises(TamperedRecording):  # paired with another file
        crypto.open_key(keys, 7, os.urandom(16), sealed.key_id, sealed.ciphertext)


def test_key_rotation_old_ids_still_open_and_rewrap_moves_to_the_new_key():
    old, new = new_key(), new_key()
    before = protector(old=old)
    key = FileKey.generate()
    sealed = crypto.seal_key(before, 3, key)
    assert sealed.key_id == "old"

    rotated = protector(new=new, old=old)  # the new key seals, the old one still opens
    assert crypto.open_key(rotated, 3, key.file_id, "old", sealed.ciphertext) == key.data_key
    rewrapped = crypto.rewrap_key(rotated, 3, key.file_id, "old", sealed.ciphertext)
    assert rewrapped.key_id == "new"

    retired = protector(new=new)  # the old key removed from HOTLINE_DATA_KEYS
    opened = crypto.open_key(retired, 3, key.file_id, "new", rewrapped.ciphertext)
    assert opened == key.data_key
    with pytest.raises(TamperedRecording):
        crypto.open_key(retired, 3, key.file_id, "old", sealed.ciphertext)
