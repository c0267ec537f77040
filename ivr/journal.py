"""The fallback journal: what /voice/fallback received while the database or Redis was down.

Each entry is one line: the data key id and the AES-GCM-sealed JSON of the request (the caller's
number is inside, so it is never on disk in plain text). Appends take an exclusive ``flock`` so
several gunicorn workers can write at once. ``replay`` moves the entries into the database
once it is reachable; each entry is applied under a dedupe key, so a replay interrupted half-way
and run again writes nothing twice.
"""

from __future__ import annotations

import base64
import datetime as dt
import fcntl
import hashlib
import json
import logging
import os
import re
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from dataprotection import DataProtector, DecryptionError, Sealed
from inquiries.models import utcnow
from inquiries.service import CallLog
from recordings import service as recordings
from recordings.models import PENDING

log = logging.getLogger(__name__)
_AAD = b"hotline-fallback-journal"
#: What a replayed entry may hold: the fallback's steps, Twilio's sid formats, short values.
STEPS = frozenset({"entered", "recorded", "recording", "error"})
_CALL_SID = re.compile(r"CA[0-9a-f]{32}")
_RECORDING_SID = re.compile(r"RE[0-9a-f]{32}")
MAX_VALUE = 512


class JournalFull(OSError):
    """The journal has reached its size cap: the request was not kept."""


def append(
    path: Path, protector: DataProtector, step: str, params: dict[str, str], max_bytes: int = 0
) -> None:
    """Seal and append one received request. Touches only the local disk. With ``max_bytes``
    (> 0), raises ``JournalFull`` instead of growing the file beyond it."""
    entry = {"received_at": utcnow().isoformat(), "step": step, "params": params}
    sealed = protector.seal(json.dumps(entry, ensure_ascii=False).encode(), _AAD)
    line = (sealed.key_id + ":" + base64.b64encode(sealed.ciphertext).decode() + "\n").encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if max_bytes > 0 and os.fstat(fd).st_size + len(line) > max_bytes:
            raise JournalFull(f"the fallback journal holds {os.fstat(fd).st_size} bytes")
        os.write(fd, line)
        os.fsync(fd)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def has_entries(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except FileNotFoundError:
        return False


def replay(path: Path, protector: DataProtector, conn: Session) -> int:
    """Apply every journal entry to the database, then empty the journal. Returns entries applied.

    Holds the journal's lock throughout, so appends wait (briefly) and nothing is lost between
    reading and truncating. Lines that do not decrypt are kept aside in ``<journal>.bad``.
    """
    if not has_entries(path):
        return 0
    applied = 0
    to_process: list[int] = []  # messages left through the fallback: their recording jobs
    with open(path, "r+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            bad: list[bytes] = []
            for raw_line in fh.read().splitlines():
                if not raw_line.strip():
                    continue
                entry = _open_line(raw_line, protector)
                if entry is None or not well_formed(entry):
                    bad.append(raw_line)
                    continue
                digest = hashlib.sha256(raw_line).hexdigest()[:40]
                applied += _apply(CallLog(conn, protector), entry, digest, to_process)
                conn.commit()
            if bad:
                bad_fd = os.open(str(path) + ".bad", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                with os.fdopen(bad_fd, "ab") as bad_fh:
                    bad_fh.write(b"\n".join(bad) + b"\n")
                log.error(
                    "fallback journal: %d entries did not decrypt or were not well formed; "
                    "kept aside in %s.bad", len(bad), path.name,
                )  # fmt: skip
            fh.seek(0)
            fh.truncate()
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
    for recording_id in to_process:  # committed above
        recordings.enqueue_processing(recording_id)
    return applied


def _open_line(raw_line: bytes, protector: DataProtector) -> dict[str, Any] | None:
    try:
        key_id, _, encoded = raw_line.decode().partition(":")
        sealed = Sealed(key_id, base64.b64decode(encoded))
        return json.loads(protector.open(sealed, _AAD))
    except (DecryptionError, ValueError, UnicodeDecodeError):
        return None


def well_formed(entry: object) -> bool:
    """Whether a decrypted entry is what the fallback writes: a known step, a time, a CallSid
    and (if any) a RecordingSid of Twilio's formats, and short string values only."""
    if not isinstance(entry, dict) or entry.get("step") not in STEPS:
        return False
    try:
        dt.datetime.fromisoformat(entry["received_at"])
    except (KeyError, TypeError, ValueError):
        return False
    params = entry.get("params")
    if not isinstance(params, dict) or not all(
        isinstance(value, str) and len(value) <= MAX_VALUE for value in params.values()
    ):
        return False
    if not _CALL_SID.fullmatch(params.get("CallSid", "")):
        return False
    recording_sid = params.get("RecordingSid", "")
    return not recording_sid or bool(_RECORDING_SID.fullmatch(recording_sid))


def _apply(calls: CallLog, entry: dict[str, Any], digest: str, to_process: list[int]) -> int:
    params: dict[str, str] = entry["params"]
    call_sid = params["CallSid"]
    call, _ = calls.find_or_open(
        call_sid,
        params.get("From", ""),
        direction=params.get("Direction", "inbound"),
        status="in-progress",
    )
    received_at = dt.datetime.fromisoformat(entry["received_at"])
    step = entry.get("step", "")
    data = {"step": step, "error_code": params.get("ErrorCode", "")[:16]}
    if not calls.add_event(
        call, "FALLBACK", data, dedupe_key=f"journal:{digest}", time=received_at
    ):
        return 0
    if step in ("recorded", "recording") and params.get("RecordingSid"):
        duration = params.get("RecordingDuration", "")
        calls.store_recording(
            call,
            params["RecordingSid"][:64],
            url=params.get("RecordingUrl", "")[:512] or None,
            duration_s=int(duration) if duration.isdigit() and len(duration) < 8 else None,
            status=params.get("RecordingStatus") or None,
        )
        sid, status = params["RecordingSid"], params.get("RecordingStatus", "")
        if recordings.RECORDING_SID.match(sid) and status in ("", "completed"):
            registered = recordings.register(
                calls.conn, recording_sid=sid, kind="message", interaction_id=call.interaction_id
            )
            if registered.state == PENDING and registered.id not in to_process:
                to_process.append(registered.id)
        calls.request_callback(call, "fallback_message")
    return 1
