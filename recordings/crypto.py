"""Recordings encrypted at rest in fixed-size segments, so that a player can seek.

An encrypted file (all integers big-endian)::

    header  32 bytes   b"HREC" | version 1 (1) | segment size (4) | nonce prefix (7) | file id (16)
    segment i          AES-256-GCM(data key, nonce(i), plaintext[i·S : (i+1)·S], aad(i)) ‖ tag (16)

    nonce(i) = nonce prefix (7) ‖ i (4) ‖ last (1)
    aad(i)   = header (32)      ‖ i (4) ‖ last (1)        last = 1 on the final segment only

Every segment holds ``S`` plaintext bytes (64 KiB) except the last (1…S). A range read decrypts
only the segments it overlaps. Each segment authenticates itself, its place and the file it
belongs to: reordered or swapped segments, a segment from another file, a cut-off end (the new
final segment lacks the last flag) or appended bytes (the old final one has it) all fail to
open. This is the segmented "STREAM" construction that Tink's streaming AEAD also uses.

The data key is 32 random bytes per file, sealed with the app's data-protection key
(``DataProtector.seal``, AES-256-GCM) with the recording id and the file id as associated data.
The sealed key and the data-protection key's id are kept on the recording's row, so a key
rotation re-seals 60 bytes per recording and never rewrites the audio (``rewrap_key``); a row's
key moved to another row does not open.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from dataprotection import DataProtector, DecryptionError, Sealed

MAGIC = b"HREC"
VERSION = 1
SEGMENT_SIZE = 64 * 1024
HEADER_SIZE = 32
TAG_SIZE = 16
_HEADER = struct.Struct(">4sBI7s16s")
_KEY_AAD = b"hotline-recording-key/v1\x00"


class TamperedRecording(DecryptionError):
    """An encrypted recording that does not open: altered, cut, extended, or another file."""


@dataclass(frozen=True)
class FileKey:
    """A file's data key and the random values its header carries."""

    data_key: bytes
    file_id: bytes
    nonce_prefix: bytes
    segment_size: int = SEGMENT_SIZE

    @classmethod
    def generate(cls, segment_size: int = SEGMENT_SIZE) -> FileKey:
        return cls(os.urandom(32), os.urandom(16), os.urandom(7), segment_size)

    @property
    def header(self) -> bytes:
        return _HEADER.pack(MAGIC, VERSION, self.segment_size, self.nonce_prefix, self.file_id)


@dataclass(frozen=True)
class Header:
    raw: bytes
    segment_size: int
    nonce_prefix: bytes
    file_id: bytes

    @classmethod
    def parse(cls, raw: bytes) -> Header:
        if len(raw) < HEADER_SIZE:
            raise TamperedRecording("the encrypted recording is shorter than its header")
        magic, version, segment_size, prefix, file_id = _HEADER.unpack(raw[:HEADER_SIZE])
        if magic != MAGIC or version != VERSION or not 0 < segment_size <= 1 << 24:
            raise TamperedRecording("not an encrypted recording of a known version")
        return cls(raw[:HEADER_SIZE], segment_size, prefix, file_id)


@dataclass(frozen=True)
class Layout:
    """Where each segment of an encrypted file lies, from its header and total size."""

    segment_size: int
    segment_count: int
    plaintext_size: int

    @classmethod
    def of(cls, header: Header, encrypted_size: int) -> Layout:
        body = encrypted_size - HEADER_SIZE
        stride = header.segment_size + TAG_SIZE
        count = max(1, -(-body // stride))
        plaintext = body - count * TAG_SIZE
        if body < TAG_SIZE or plaintext < (count - 1) * header.segment_size:
            raise TamperedRecording("the encrypted recording is cut short")
        return cls(header.segment_size, count, plaintext)

    def span(self, index: int) -> tuple[int, int]:
        """(offset, length) of segment ``index`` in the encrypted file."""
        stride = self.segment_size + TAG_SIZE
        start = HEADER_SIZE + index * stride
        if index == self.segment_count - 1:
            plain = self.plaintext_size - index * self.segment_size
            return start, plain + TAG_SIZE
        return start, stride

    def segments_for(self, start: int, end: int) -> range:
        """The segments holding plaintext bytes ``start`` … ``end`` (inclusive)."""
        return range(start // self.segment_size, end // self.segment_size + 1)


def _nonce(prefix: bytes, index: int, last: bool) -> bytes:
    return prefix + struct.pack(">IB", index, 1 if last else 0)


def _aad(header: bytes, index: int, last: bool) -> bytes:
    return header + struct.pack(">IB", index, 1 if last else 0)


def encrypt(plaintext: bytes, key: FileKey) -> bytes:
    """The whole encrypted file (header and segments) for ``plaintext``."""
    header = key.header
    aead = AESGCM(key.data_key)
    size = key.segment_size
    count = max(1, -(-len(plaintext) // size))
    parts = [header]
    for index in range(count):
        last = index == count - 1
        chunk = plaintext[index * size : (index + 1) * size]
        parts.append(
            aead.encrypt(_nonce(key.nonce_prefix, index, last), chunk, _aad(header, index, last))
        )
    return b"".join(parts)


def decrypt_segment(
    data_key: bytes, header: Header, layout: Layout, index: int, ciphertext: bytes
) -> bytes:
    last = index == layout.segment_count - 1
    try:
        return AESGCM(data_key).decrypt(
            _nonce(header.nonce_prefix, index, last), ciphertext, _aad(header.raw, index, last)
        )
    except Exception as exc:  # InvalidTag, or a wrong length
        raise TamperedRecording(f"segment {index} of the recording does not open") from exc


def decrypt(blob: bytes, data_key: bytes) -> bytes:
    """The whole plaintext of an encrypted file (every segment checked)."""
    header = Header.parse(blob)
    layout = Layout.of(header, len(blob))
    return b"".join(iter_plaintext(blob, data_key, header, layout))


def iter_plaintext(blob: bytes, data_key: bytes, header: Header, layout: Layout) -> Iterator[bytes]:
    for index in range(layout.segment_count):
        offset, length = layout.span(index)
        yield decrypt_segment(data_key, header, layout, index, blob[offset : offset + length])


def _key_aad(recording_id: int, file_id: bytes) -> bytes:
    return _KEY_AAD + str(recording_id).encode() + b"\x00" + file_id


def seal_key(protector: DataProtector, recording_id: int, key: FileKey) -> Sealed:
    """The file's data key sealed with the active data-protection key (its id inside)."""
    return protector.seal(key.data_key, associated=_key_aad(recording_id, key.file_id))


def open_key(
    protector: DataProtector, recording_id: int, file_id: bytes, key_id: str, wrapped: bytes
) -> bytes:
    """The data key of recording ``recording_id``'s file ``file_id``."""
    try:
        return protector.open(Sealed(key_id, wrapped), associated=_key_aad(recording_id, file_id))
    except DecryptionError as exc:
        raise TamperedRecording(f"the recording's data key does not open ({exc})") from None


def rewrap_key(
    protector: DataProtector, recording_id: int, file_id: bytes, key_id: str, wrapped: bytes
) -> Sealed:
    """The same data key sealed again with the active data-protection key (key rotation)."""
    data_key = open_key(protector, recording_id, file_id, key_id, wrapped)
    return protector.seal(data_key, associated=_key_aad(recording_id, file_id))
