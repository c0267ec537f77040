"""Playing a stored recording: any byte range of the encoded audio, decrypted on the fly.

``read_range`` reads the file's header and only the segments the range overlaps, decrypts them
in memory and yields the requested bytes: seeking in a one-hour recording costs a 64 KiB
segment or two, and no decrypted byte is ever written to disk. The console wraps it in an HTTP
response (``206 Partial Content`` with ``Content-Range: bytes start-end/total``, the range read
from the request's header by ``parse_range``); it checks the viewer's rights and audits the
playback.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from dataprotection import DataProtector
from recordings import crypto
from recordings.store import RecordingStore

#: Segments fetched from the store per read (at most 1 MiB of ciphertext at a time).
SEGMENTS_PER_READ = 16


class NotPlayable(LookupError):
    """The recording has no stored audio (not stored yet, failed, or deleted by retention)."""


class RangeNotSatisfiable(ValueError):
    """The byte range cannot be served: it starts past the end of the audio, ends before it
    starts, or the ``Range`` header is not one well-formed byte range (HTTP 416, with
    ``Content-Range: bytes */total_size``)."""

    def __init__(self, total_size: int, why: str = "the range starts past the end"):
        super().__init__(f"{why} ({total_size} bytes)")
        self.total_size = total_size


_RANGE_UNIT = re.compile(r"^([!#$%&'*+.^_`|~0-9A-Za-z-]+)=(.*)$", re.DOTALL)
_BYTE_RANGE = re.compile(r"^([0-9]*)-([0-9]*)$")
#: More digits than this is past the end of any recording (and spares ``int()`` a huge string).
_MAX_DIGITS = 18


def parse_range(header: str | None, total: int) -> tuple[int, int] | None:
    """The byte range an HTTP ``Range`` header asks of ``total`` bytes, as inclusive offsets
    ``(first, last)`` with ``last`` cut to the end; None for the whole (no header, or a unit
    other than ``bytes``, which RFC 9110 §14.2 says to ignore).

    One range is served. ``RangeNotSatisfiable`` for anything else in ``bytes``: a malformed
    range set, several ranges (no multipart answers), ``last < first`` (invalid, §14.1.1), a
    first byte at or past the end or a zero-length suffix (unsatisfiable, §14.1.1). Never any
    other exception, whatever the header holds.
    """
    if header is None:
        return None
    unit = _RANGE_UNIT.match(header.strip())
    if unit is not None and unit.group(1).lower() != "bytes":
        return None
    if unit is None:
        raise RangeNotSatisfiable(total, "not a byte range")
    specs = [spec.strip(" \t") for spec in unit.group(2).split(",")]
    specs = [spec for spec in specs if spec]  # a list may hold empty elements (RFC 9110 §5.6.1)
    if len(specs) != 1:
        raise RangeNotSatisfiable(total, "not one byte range")
    spec = _BYTE_RANGE.match(specs[0])
    if spec is None or spec.group(0) == "-":
        raise RangeNotSatisfiable(total, "not a byte range")
    first_text, last_text = spec.groups()
    if first_text == "":  # the last N bytes
        length = _offset(last_text)
        if length == 0 or total == 0:
            raise RangeNotSatisfiable(total, "an empty suffix")
        return max(0, total - length), total - 1
    first = _offset(first_text)
    last = _offset(last_text) if last_text else total - 1
    if last < first:
        raise RangeNotSatisfiable(total, "the range ends before it starts")
    if first >= total:
        raise RangeNotSatisfiable(total)
    return first, min(last, total - 1)


def _offset(digits: str) -> int:
    return int(digits) if len(digits) <= _MAX_DIGITS else 10**_MAX_DIGITS


def read_range(
    recording: Any,
    start: int | None = None,
    end: int | None = None,
    *,
    store: RecordingStore | None = None,
    protector: DataProtector | None = None,
) -> tuple[int, str, Iterator[bytes]]:
    """``(total_size, content_type, chunks)`` of a stored recording's encoded audio.

    ``start`` and ``end`` are inclusive byte offsets, as in an HTTP ``Range: bytes=start-end``
    (``None``: from the start / to the end; ``end`` past the end is cut to it). ``recording``
    is a ``Recording`` (or a row with its columns). The store and protector default to the
    current app's. Raises ``NotPlayable``, ``RangeNotSatisfiable``, and ``TamperedRecording``
    when the file or its key does not open (also while iterating, for a later segment).
    """
    if recording.storage_key is None or recording.wrapped_key is None:
        raise NotPlayable(f"recording {recording.id} has no stored audio")
    if store is None or protector is None:
        from recordings.store import recording_store
        from services import services

        svc = services()
        store = store or recording_store(svc.settings)
        protector = protector or svc.protector
    size = store.size(recording.storage_key)
    if recording.stored_size is not None and size != recording.stored_size:
        raise crypto.TamperedRecording("the stored file's size is not the one recorded")
    header = crypto.Header.parse(store.read(recording.storage_key, 0, crypto.HEADER_SIZE))
    data_key = crypto.open_key(
        protector, recording.id, header.file_id, recording.key_id, recording.wrapped_key
    )
    layout = crypto.Layout.of(header, size)
    total = layout.plaintext_size
    first = 0 if start is None else start
    last = total - 1 if end is None else min(end, total - 1)
    if first < 0 or first >= total:
        raise RangeNotSatisfiable(total)
    if last < first:
        raise RangeNotSatisfiable(total, "the range ends before it starts")
    content_type = recording.content_type or "application/octet-stream"
    chunks = _chunks(store, recording.storage_key, data_key, header, layout, first, last)
    return total, content_type, chunks


def _chunks(
    store: RecordingStore,
    key: str,
    data_key: bytes,
    header: crypto.Header,
    layout: crypto.Layout,
    first: int,
    last: int,
) -> Iterator[bytes]:
    """Decrypt the segments holding bytes ``first`` … ``last`` and yield exactly those bytes."""
    segments = layout.segments_for(first, last)
    for batch_start in range(segments.start, segments.stop, SEGMENTS_PER_READ):
        batch = range(batch_start, min(batch_start + SEGMENTS_PER_READ, segments.stop))
        offset, _ = layout.span(batch.start)
        end_offset, end_length = layout.span(batch[-1])
        blob = store.read(key, offset, end_offset + end_length - offset)
        for index in batch:
            seg_offset, seg_length = layout.span(index)
            ciphertext = blob[seg_offset - offset : seg_offset - offset + seg_length]
            plaintext = crypto.decrypt_segment(data_key, header, layout, index, ciphertext)
            seg_start = index * layout.segment_size
            lo = max(first - seg_start, 0)
            hi = min(last - seg_start + 1, len(plaintext))
            yield plaintext[lo:hi]


def read_all(recording: Any, **kwargs: Any) -> bytes:
    """The whole encoded audio (a download, or a test)."""
    _total, _type, chunks = read_range(recording, **kwargs)
    return b"".join(chunks)
