"""Recordings for the webhooks, staff and the CLI: register a carrier recording (idempotent on
its RecordingSid), enqueue its job, retry by hand, list, re-seal data keys after a rotation.

Webhooks commit the row, then enqueue its id (``enqueue_processing``); the job id is
deterministic (``recording-{id}``), so a callback delivered three times makes one row and, at
most, one pending job — and a job that runs again finds its work done.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass
from typing import Any

import redis
from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from dataprotection import DataProtector
from db import db_session, insert_ignoring_duplicates
from inquiries.models import utcnow
from jobs import enqueue, fetch_job
from recordings import crypto
from recordings.models import (
    CARRIER_DELETED,
    DELETED,
    FAILED,
    KINDS,
    PENDING,
    PERMANENT_FAILURES,
    UNFINISHED,
    Recording,
)

log = logging.getLogger(__name__)

_recording = Recording.__table__
_BY_SID = select(_recording.c.id, _recording.c.state).where(
    _recording.c.recording_sid == bindparam("sid")
)
RECORDING_SID = re.compile(r"^RE[0-9a-fA-F]{32}$")
PROCESS_JOB = "recordings.jobs.process_recording"
#: A recording in flight whose row has not moved for this long has lost its job.
STALLED_AFTER = dt.timedelta(minutes=15)
#: Failed recordings are resumed automatically while they have had fewer attempts than this
#: (RQ's own retries: 1 + 5); after that, by hand (``retry``).
AUTOMATIC_ATTEMPTS = 6


def job_id(recording_id: int) -> str:
    return f"recording-{recording_id}"


@dataclass(frozen=True)
class Registered:
    id: int
    created: bool
    state: str


def register(
    conn: Session,
    *,
    recording_sid: str,
    kind: str,
    interaction_id: int,
    carrier_duration_s: int | None = None,
) -> Registered:
    """The recording's row, inserted on first sight (``INSERT … ON CONFLICT DO NOTHING`` on the
    RecordingSid). The caller commits, then enqueues if the state is ``pending``."""
    if kind not in KINDS or not RECORDING_SID.match(recording_sid):
        raise ValueError("not a recording of a known kind")
    now = utcnow()
    values = {
        "recording_sid": recording_sid, "interaction_id": interaction_id, "kind": kind,
        "state": PENDING, "attempts": 0, "carrier_duration_s": carrier_duration_s,
        "created_at": now, "updated_at": now,
    }  # fmt: skip
    new_id = insert_ignoring_duplicates(conn, _recording, values, "recording_sid")
    if new_id is not None:
        return Registered(new_id, True, PENDING)
    found = conn.execute(_BY_SID, {"sid": recording_sid}).first()
    if found is None:  # pragma: no cover - the INSERT conflicted with this very row
        raise RuntimeError("recording vanished after insert")
    return Registered(found[0], False, found[1])


def enqueue_processing(recording_id: int) -> bool:
    """Enqueue the recording's job (a no-op while one is queued). Redis down: False, and the
    periodic ``resume_stalled`` enqueues it later."""
    try:
        enqueue(PROCESS_JOB, recording_id, job_id=job_id(recording_id))
    except redis.RedisError:
        log.warning("recording %s: could not enqueue its job (Redis)", recording_id)
        return False
    return True


def retry(recording_id: int) -> str:
    """Run recording ``recording_id``'s pipeline again now (the console's and the CLI's retry).

    Returns ``"enqueued"``, ``"running"`` (a run is in progress) or ``"done"`` (nothing left to
    do). Raises ``LookupError`` for an unknown id. A retry RQ has scheduled for later is
    replaced by one now.
    """
    conn = db_session()
    state = conn.execute(select(_recording.c.state).where(_recording.c.id == recording_id)).scalar()
    conn.commit()
    if state is None:
        raise LookupError(f"no recording {recording_id}")
    if state in (CARRIER_DELETED, DELETED):
        return "done"
    job = fetch_job(job_id(recording_id))
    if job is not None:
        status = job.get_status(refresh=True)
        if status == "started":
            return "running"
        job.delete()  # queued, scheduled for a later retry, failed or finished: start afresh
    enqueue(PROCESS_JOB, recording_id, job_id=job_id(recording_id))
    log.info("recording %s: retry enqueued by hand (state %s)", recording_id, state)
    return "enqueued"


def resume_stalled(conn: Session, now: dt.datetime | None = None) -> int:
    """Re-enqueue recordings whose job was lost: in flight with no progress for
    ``STALLED_AFTER`` (a killed worker, a flushed Redis, an enqueue that failed), or failed
    with automatic attempts left but no RQ job waiting (and not ``PERMANENT_FAILURES``).
    Idempotent."""
    now = now or utcnow()
    rows = conn.execute(
        select(
            _recording.c.id, _recording.c.state, _recording.c.attempts, _recording.c.failure_reason
        )
        .where(
            _recording.c.state.in_(UNFINISHED),
            _recording.c.updated_at < now - STALLED_AFTER,
        )
        .order_by(_recording.c.id)
        .limit(500)
    ).all()
    conn.commit()
    resumed = 0
    for row in rows:
        job = fetch_job(job_id(row.id))
        status = job.get_status(refresh=True) if job is not None else None
        if status in ("queued", "scheduled", "started", "deferred"):
            continue
        if row.state == FAILED and (
            row.attempts >= AUTOMATIC_ATTEMPTS or row.failure_reason in PERMANENT_FAILURES
        ):
            continue  # left for a person: ``flask recordings retry``
        if job is not None:
            job.delete()
        if enqueue_processing(row.id):
            resumed += 1
    if resumed:
        log.info("recordings: %d stalled recording(s) enqueued again", resumed)
    return resumed


def list_recordings(
    conn: Session, *, state: str | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    """The newest recordings, as ids, kinds, states and times (no personal data)."""
    query = (
        select(
            _recording.c.id, _recording.c.interaction_id, _recording.c.kind,
            _recording.c.state, _recording.c.attempts, _recording.c.failure_reason,
            _recording.c.last_error, _recording.c.duration_ms, _recording.c.created_at,
            _recording.c.updated_at,
        )
        .order_by(_recording.c.id.desc())
        .limit(limit)
    )  # fmt: skip
    if state:
        query = query.where(_recording.c.state == state)
    return [dict(row) for row in conn.execute(query).mappings()]


def rewrap_keys(conn: Session, protector: DataProtector, batch: int = 500) -> int:
    """Re-seal every stored recording's data key with the active data-protection key (after
    ``HOTLINE_DATA_KEYS`` gained a new first key). The audio files are not touched."""
    active = protector.active_key_id
    done = 0
    while True:
        rows = conn.execute(
            select(
                _recording.c.id, _recording.c.file_id, _recording.c.key_id,
                _recording.c.wrapped_key,
            )
            .where(_recording.c.wrapped_key.is_not(None), _recording.c.key_id != active)
            .order_by(_recording.c.id)
            .limit(batch)
        ).all()  # fmt: skip
        if not rows:
            return done
        for row in rows:
            sealed = crypto.rewrap_key(
                protector, row.id, bytes.fromhex(row.file_id), row.key_id, row.wrapped_key
            )
            conn.execute(
                update(_recording)
                .where(_recording.c.id == row.id, _recording.c.key_id == row.key_id)
                .values(key_id=sealed.key_id, wrapped_key=sealed.ciphertext)
            )
            done += 1
        conn.commit()
