"""Retention: expired recordings deleted (our store and the carrier), expired personal data
erased (a caller's encrypted number), each deletion written down.

Periods are settings: ``RECORDING_RETENTION_DAYS_MESSAGE`` and
``RECORDING_RETENTION_DAYS_CONVERSATION`` (counted from the recording's callback),
``PERSONAL_DATA_RETENTION_DAYS`` (from the caller's last call); 0 keeps forever. An admin may
override each in the console (``recordings.retention_policy``); a pass uses the values in
force when it starts. What is anonymous stays: the rows, durations, events and statistics.
An erased caller loses their encrypted number and their keyed hash (``erased:<id>`` instead):
nothing links the number to them any more, and if they call again they are a new caller.

Every deletion appends a ``RETENTION_DELETE`` event (ids only, a dedupe key per deletion) and,
in the same transaction, a ``retention.delete`` row in the staff audit log. Case notes written
before the personal-data cutoff lose their text too. On SQLite (``secure_delete`` on) the
write-ahead log is then checkpointed and truncated (the recordings' sealed keys, the numbers,
the hashes and the notes leave the database's files, not only its tables).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import and_, func, not_, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from dataprotection import ERASED_PREFIX, erased_hash
from db import dialect_name, truncate_wal
from inquiries.models import Caller, CallEvent, Inquiry, Interaction, utcnow
from inquiries.notes import erase_notes_before
from recordings.models import CARRIER_DELETED, DELETED, Recording
from recordings.pipeline import StepFailed, delete_at_carrier
from recordings.retention_policy import effective_days
from recordings.store import RecordingStore, prefix_of
from services import Services
from staff import audit

log = logging.getLogger(__name__)

_recording = Recording.__table__
_caller = Caller.__table__
_inquiry = Inquiry.__table__
_interaction = Interaction.__table__
_event = CallEvent.__table__
#: Deletions per kind per run (the job runs hourly; a backlog drains over a few runs).
BATCH = 500
EVENT = "RETENTION_DELETE"


def apply(
    conn: Session, svc: Services, store: RecordingStore, now: dt.datetime | None = None
) -> dict[str, int]:
    """One retention pass; counts of what was deleted (and of carrier deletions that failed)."""
    now = now or utcnow()
    days_of = effective_days(conn, svc.settings)  # the console's overrides, else the environment
    conn.commit()
    counts = {"recordings": 0, "carrier": 0, "carrier_failed": 0, "callers": 0, "notes": 0}
    periods = {
        "message": days_of["recording_retention_days_message"],
        "conversation": days_of["recording_retention_days_conversation"],
    }
    for kind, days in periods.items():
        if days:
            cutoff = now - dt.timedelta(days=days)
            for row in _expired_recordings(conn, kind, cutoff):
                for name, done in delete_recording(conn, svc, store, row.id, "retention").items():
                    counts[name] += done
    if days_of["personal_data_retention_days"]:
        cutoff = now - dt.timedelta(days=days_of["personal_data_retention_days"])
        counts["callers"] = erase_caller_numbers(conn, cutoff)
        counts["notes"] = erase_notes(conn, cutoff)
    erased = counts["recordings"] + counts["callers"] + counts["notes"]
    if erased and truncate_wal(conn) is False:
        log.warning("retention: readers kept the SQLite log from being truncated after the "
                    "erasure; the next erasure tries again")  # fmt: skip
    if any(counts.values()):
        log.info("retention: %s", ", ".join(f"{k} {v}" for k, v in counts.items()))
    return counts


def _expired_recordings(conn: Session, kind: str, cutoff: dt.datetime) -> list[Any]:
    """Recordings of ``kind`` older than ``cutoff`` not yet deleted everywhere."""
    rows = conn.execute(
        select(_recording.c.id)
        .where(
            _recording.c.kind == kind,
            _recording.c.created_at < cutoff,
            or_(_recording.c.state != DELETED, _recording.c.carrier_deleted_at.is_(None)),
        )
        .order_by(_recording.c.id)
        .limit(BATCH)
    ).all()
    conn.commit()
    return rows


def delete_recording(
    conn: Session, svc: Services, store: RecordingStore, recording_id: int, reason: str
) -> dict[str, int]:
    """Delete a recording's audio everywhere: its data key and stored files, then the carrier's
    copy. The row is marked ``deleted`` first (committed), so a pipeline run in flight loses
    its race and removes the file it was writing; without the key, a file left behind by a
    crash is noise. Counts: ``recordings`` (our copy), ``carrier``, ``carrier_failed``."""
    counts = {"recordings": 0, "carrier": 0, "carrier_failed": 0}
    row = conn.execute(select(_recording).where(_recording.c.id == recording_id)).first()
    if row is None:
        return counts
    now = utcnow()
    claimed = conn.execute(
        update(_recording)
        .where(_recording.c.id == recording_id, _recording.c.state != DELETED)
        .values(
            state=DELETED, deleted_at=now, updated_at=now, storage_key=None, file_id=None,
            stored_size=None, key_id=None, wrapped_key=None, waveform=None, sha256=None,
        )
    ).rowcount  # fmt: skip
    if claimed:
        _audit(conn, row, "store", reason)
        counts["recordings"] = 1
    conn.commit()
    for key in store.keys(prefix_of(recording_id)):
        store.delete(key)
    if row.carrier_deleted_at is None:
        if row.state != CARRIER_DELETED:
            try:
                delete_at_carrier(svc, row.recording_sid)
            except StepFailed as exc:
                log.warning("recording %s: retention could not delete it at the carrier (%s)",
                            recording_id, exc.message)  # fmt: skip
                counts["carrier_failed"] = 1
                return counts
        conn.execute(
            update(_recording)
            .where(_recording.c.id == recording_id, _recording.c.carrier_deleted_at.is_(None))
            .values(carrier_deleted_at=utcnow())
        )
        if row.state != CARRIER_DELETED:
            _audit(conn, row, "carrier", reason)
            counts["carrier"] = 1
        conn.commit()
    return counts


def _audit(conn: Session, row: Any, where: str, reason: str) -> None:
    data = {
        "what": "recording", "recording_id": row.id, "kind": row.kind, "from": where,
        "reason": reason,
    }  # fmt: skip
    _add_event(conn, row.interaction_id, data, f"retention:recording:{row.id}:{where}")


def _add_event(conn: Session, interaction_id: int | None, data: dict, key: str) -> None:
    """The deletion on the case's timeline (once per ``key``) and in the staff audit log (in
    the same transaction; no actor: the retention job did it)."""
    dialect = sqlite if dialect_name(conn) == "sqlite" else postgresql
    added = conn.execute(
        dialect.insert(_event).on_conflict_do_nothing(index_elements=["dedupe_key"]),
        {"interaction_id": interaction_id, "event": EVENT, "data": data, "dedupe_key": key,
         "time": utcnow()},
    ).rowcount  # fmt: skip
    if added:
        what = str(data["what"])
        object_id = data.get("recording_id") or data.get("caller_id") or data.get("note_id")
        details = {k: v for k, v in data.items() if k not in ("what",)}
        audit.record("retention.delete", what, object_id, using=conn, actor=None, ip=None,
                     **details)  # fmt: skip


def erase_caller_numbers(conn: Session, cutoff: dt.datetime) -> int:
    """Erase the callers not heard from since ``cutoff``: their encrypted number, and their
    keyed hash too, replaced by ``erased:<id>``, so that a dump and the HMAC key together cannot
    confirm that a given number ever called. The rows and their cases stay, anonymous; a
    returning caller is a new caller (a new row, a new case), unlinked from the erased one.

    Also picks up a caller erased before the hash was erased too (ciphertext gone, hash kept),
    not a withheld caller (no number, a hash of the CallSid the interaction row holds anyway).
    The UPDATE checks again that no call came since ``cutoff`` (a call in between keeps them).
    """
    last_call = (
        select(
            _inquiry.c.caller_id,
            func.max(_interaction.c.started_at).label("last_at"),
            func.max(_interaction.c.id).label("last_id"),
        )
        .select_from(_interaction.join(_inquiry))
        .group_by(_inquiry.c.caller_id)
        .subquery()
    )
    not_erased = or_(
        _caller.c.number_ciphertext.is_not(None),
        and_(
            _caller.c.withheld.is_(False),  # a withheld caller's hash is of a CallSid: kept
            not_(_caller.c.number_hash.startswith(ERASED_PREFIX, autoescape=True)),
        ),
    )
    rows = conn.execute(
        select(_caller.c.id, last_call.c.last_id)
        .outerjoin(last_call, last_call.c.caller_id == _caller.c.id)
        .where(
            not_erased,
            _caller.c.created_at < cutoff,
            or_(last_call.c.last_at.is_(None), last_call.c.last_at < cutoff),
        )
        .order_by(_caller.c.id)
        .limit(BATCH)
    ).all()
    called_since = (
        select(_interaction.c.id)
        .join(_inquiry, _inquiry.c.id == _interaction.c.inquiry_id)
        .where(_inquiry.c.caller_id == _caller.c.id, _interaction.c.started_at >= cutoff)
        .exists()
    )
    erased = 0
    for row in rows:
        changed = conn.execute(
            update(_caller)
            .where(and_(_caller.c.id == row.id, not_erased, ~called_since))
            .values(number_ciphertext=None, number_key_id=None, number_hash=erased_hash(row.id))
        ).rowcount
        if changed:
            data = {"what": "caller_number", "caller_id": row.id, "reason": "retention"}
            _add_event(conn, row.last_id, data, f"retention:caller:{row.id}:{row.last_id or 0}")
            erased += 1
    conn.commit()
    return erased


def erase_notes(conn: Session, cutoff: dt.datetime) -> int:
    """Erase the text of case notes written before ``cutoff`` (free text: personal data); the
    rows stay (who wrote when), each erasure audited."""
    erased = erase_notes_before(conn, cutoff)
    for note_id, inquiry_id in erased:
        data = {"what": "case_note", "note_id": note_id, "inquiry_id": inquiry_id,
                "reason": "retention"}  # fmt: skip
        _add_event(conn, None, data, f"retention:note:{note_id}")
    conn.commit()
    return len(erased)
