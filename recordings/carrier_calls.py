"""The carrier's call records: deleted there once a call has ended and its recordings are stored.

Twilio keeps a record of every call — the caller's number as the From of an inbound call, a
handler's or a caller's number as the To of an offer or a call-back — and shows it in its API
and Console for about 13 months, unless it is deleted (``DELETE …/Calls/{Sid}.json``: "once
the record is deleted, it will no longer appear in the API and Account Portal logs"). So:

- The webhooks and routing jobs note each call they create or hear end (``note_call``, a row
  of ``carrier_call``, in their own transaction); once a call's final status is committed,
  its deletion job is enqueued (``enqueue_deletion``; job id ``carrier-call-{row id}``).
- The job (``delete``) waits while a recording of the case is not yet stored (the recording
  pipeline enqueues the case's calls again once it has stored one), asks the carrier which
  recordings the call still has, then deletes the call. A 404 counts as deleted; anything
  else (Twilio's 20009 while a call is not yet complete, a network error) is retried by RQ.
- The periodic sweep (``sweep``) lists the calls to and from the hotline's number at the
  carrier and deletes every ended one, the hotline's own rows included: a status callback
  that never came, an enqueue that failed, a job out of retries.

A recording still not stored a day after its call ended no longer holds the call back (a
warning is logged; the recording is a resource of its own at the carrier, which the recording
pipeline deletes). Only ids appear in logs and job arguments: never a number.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from typing import Any

import redis
import requests
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from twilio.base.exceptions import TwilioException, TwilioRestException

from db import insert_ignoring_duplicates
from inquiries.models import FINAL_CALL_STATUSES, Interaction, utcnow
from jobs import enqueue
from recordings.models import CALL_LEGS, CARRIER_DELETED, DELETED, STORED, CarrierCall, Recording
from services import Services

log = logging.getLogger(__name__)

_call = CarrierCall.__table__
_recording = Recording.__table__
_interaction = Interaction.__table__
CALL_SID = re.compile(r"^CA[0-9a-fA-F]{32}$")
DELETE_JOB = "recordings.jobs.delete_carrier_call"
#: Recordings in these states are safe in our store (or were deleted by retention).
SAFE_STATES = (STORED, CARRIER_DELETED, DELETED)
#: Carrier recording statuses that hold no audio to wait for (silence, an error, deleted).
NO_AUDIO = ("absent", "failed", "deleted")
#: How long a call waits for its case's recordings to be stored, after it ended.
RECORDINGS_GRACE = dt.timedelta(hours=24)
#: The sweep leaves calls that ended this recently to the webhooks' jobs.
SWEEP_SETTLE = dt.timedelta(minutes=10)
#: Calls listed per direction (to, from the hotline's number) per sweep; rows enqueued per sweep.
SWEEP_LIST_LIMIT = 200
SWEEP_BATCH = 500


class CallNotDeleted(RuntimeError):
    """The carrier did not delete the call (yet): RQ retries the job."""


def job_id(row_id: int) -> str:
    return f"carrier-call-{row_id}"


def note_call(
    conn: Session,
    call_sid: str,
    leg: str,
    interaction_id: int | None = None,
    *,
    ended: bool = False,
) -> int | None:
    """The call's ``carrier_call`` row (inserted on first sight; ``ended``: its end noted
    once), in the caller's transaction; its id while it is still to be deleted at the
    carrier, else None (not a CallSid, or deleted already). The caller commits, then calls
    ``enqueue_deletion`` with the id if the call ended."""
    if not CALL_SID.match(call_sid or "") or leg not in CALL_LEGS:
        return None
    now = utcnow()
    values = {
        "call_sid": call_sid, "interaction_id": interaction_id, "leg": leg,
        "ended_at": now if ended else None, "deleted_at": None, "attempts": 0,
        "created_at": now, "updated_at": now,
    }  # fmt: skip
    new_id = insert_ignoring_duplicates(conn, _call, values, "call_sid")
    if new_id is not None:
        return int(new_id)
    row = conn.execute(
        select(_call.c.id, _call.c.interaction_id, _call.c.ended_at, _call.c.deleted_at).where(
            _call.c.call_sid == call_sid
        )
    ).first()
    if row is None:  # pragma: no cover - the INSERT conflicted with this very row
        raise RuntimeError("carrier call vanished after insert")
    if ended and row.ended_at is None:
        conn.execute(
            update(_call)
            .where(_call.c.id == row.id, _call.c.ended_at.is_(None))
            .values(ended_at=now, updated_at=now)
        )
    if interaction_id is not None and row.interaction_id is None:
        conn.execute(
            update(_call)
            .where(_call.c.id == row.id, _call.c.interaction_id.is_(None))
            .values(interaction_id=interaction_id)
        )
    return None if row.deleted_at is not None else int(row.id)


def enqueue_deletion(row_id: int | None) -> bool:
    """Enqueue the call's deletion job (a no-op while one waits). Redis down: False, and the
    sweep enqueues it later."""
    if row_id is None:
        return False
    try:
        enqueue(DELETE_JOB, row_id, job_id=job_id(row_id))
    except redis.RedisError:
        log.warning("carrier call %s: could not enqueue its deletion (Redis)", row_id)
        return False
    return True


def enqueue_for_interaction(conn: Session, interaction_id: int) -> int:
    """Enqueue the deletion of the case's calls that ended and are still at the carrier (the
    recording pipeline, once it has stored one of the case's recordings)."""
    ids = conn.execute(
        select(_call.c.id).where(
            _call.c.interaction_id == interaction_id,
            _call.c.ended_at.is_not(None),
            _call.c.deleted_at.is_(None),
        )
    ).scalars().all()  # fmt: skip
    conn.commit()
    return sum(enqueue_deletion(row_id) for row_id in ids)


def delete(conn: Session, svc: Services, row_id: int, now: dt.datetime | None = None) -> str:
    """Delete the call of row ``row_id`` at the carrier once it has ended and its recordings
    are stored. Returns ``deleted``, ``waiting`` (recordings not stored yet: the pipeline or
    the sweep enqueues it again), ``live`` (not ended), or ``missing``. Raises
    ``CallNotDeleted`` for RQ to retry. Safe to run twice, even at once."""
    now = now or utcnow()
    row = conn.execute(select(_call).where(_call.c.id == row_id)).first()
    conn.commit()  # no transaction open while the carrier answers
    if row is None:
        return "missing"
    if row.deleted_at is not None:
        return "deleted"
    ended_at = row.ended_at
    if ended_at is None:  # not heard to end: ask the carrier
        status = _carrier_status(conn, svc, row)
        if status is None:
            _mark_deleted(conn, row.id)
            return "deleted"
        if status not in FINAL_CALL_STATUSES:
            return "live"
        ended_at = now
        conn.execute(
            update(_call)
            .where(_call.c.id == row.id, _call.c.ended_at.is_(None))
            .values(ended_at=now, updated_at=now)
        )
        conn.commit()
    waiting = _recordings_waiting(conn, svc, row)
    if waiting:
        if now - _aware(ended_at) < RECORDINGS_GRACE:
            return "waiting"
        log.warning(
            "carrier call %s: deleted with %d recording(s) of its case not stored, a day after "
            "it ended", row.id, waiting,
        )  # fmt: skip
    try:
        svc.twilio.calls(row.call_sid).delete()
    except TwilioRestException as exc:
        if exc.status != 404:
            raise _failed(conn, row.id, exc) from None
    except (TwilioException, requests.RequestException) as exc:
        raise _failed(conn, row.id, exc) from None
    _mark_deleted(conn, row.id)
    log.info("carrier call %s (%s): deleted at the carrier", row.id, row.leg)
    return "deleted"


def _carrier_status(conn: Session, svc: Services, row: Any) -> str | None:
    """The call's status at the carrier; None when the carrier no longer has it."""
    try:
        return str(svc.twilio.calls(row.call_sid).fetch().status)
    except TwilioRestException as exc:
        if exc.status == 404:
            return None
        raise _failed(conn, row.id, exc) from None
    except (TwilioException, requests.RequestException) as exc:
        raise _failed(conn, row.id, exc) from None


def _recordings_waiting(conn: Session, svc: Services, row: Any) -> int:
    """How many recordings keep the call waiting: the case's recordings not yet stored (our
    rows), and those the carrier lists for the call that we have not stored (a status
    callback still on its way). The carrier is asked with no transaction open."""
    waiting = 0
    if row.interaction_id is not None:
        waiting = conn.execute(
            select(func.count())
            .select_from(_recording)
            .where(
                _recording.c.interaction_id == row.interaction_id,
                _recording.c.state.not_in(SAFE_STATES),
            )
        ).scalar_one()
        conn.commit()
    try:
        listed = svc.twilio.recordings.list(call_sid=row.call_sid, limit=50)
    except (TwilioException, requests.RequestException) as exc:
        raise _failed(conn, row.id, exc) from None
    with_audio = {r.sid for r in listed if str(r.status) not in NO_AUDIO}
    if with_audio:
        safe = set(
            conn.execute(
                select(_recording.c.recording_sid).where(
                    _recording.c.recording_sid.in_(sorted(with_audio)),
                    _recording.c.state.in_(SAFE_STATES),
                )
            ).scalars()
        )
        conn.commit()
        waiting += len(with_audio - safe)
    return int(waiting)


def _mark_deleted(conn: Session, row_id: int) -> None:
    now = utcnow()
    conn.execute(
        update(_call)
        .where(_call.c.id == row_id, _call.c.deleted_at.is_(None))
        .values(deleted_at=now, updated_at=now, last_error=None)
    )
    conn.commit()


def _failed(conn: Session, row_id: int, exc: Exception) -> CallNotDeleted:
    """Count a failed attempt on the row (its reason: the carrier's HTTP status and error
    code, or the exception's type); the exception for RQ to retry the job."""
    if isinstance(exc, TwilioRestException):
        reason = f"carrier {exc.status}/{exc.code}"
    else:
        reason = type(exc).__name__
    reason = reason[:64]
    conn.rollback()
    conn.execute(
        update(_call)
        .where(_call.c.id == row_id)
        .values(attempts=_call.c.attempts + 1, last_error=reason, updated_at=utcnow())
    )
    conn.commit()
    log.warning("carrier call %s: not deleted (%s); retried later", row_id, reason)
    return CallNotDeleted(f"carrier call {row_id}: {reason}")


def sweep(conn: Session, svc: Services, now: dt.datetime | None = None) -> dict[str, int]:
    """Delete every ended call left at the carrier: the calls to and from the hotline's
    number that ended over ``SWEEP_SETTLE`` ago are noted (matched to their case when the
    hotline knows them), then every noted call that ended and is not yet deleted gets its job.
    Counts: ``found`` at the carrier, ``enqueued``."""
    now = now or utcnow()
    counts = {"found": 0, "enqueued": 0}
    try:
        ended = _ended_at_carrier(svc, now)
    except (TwilioException, requests.RequestException) as exc:
        log.warning("carrier calls: the carrier's list failed (%s)", type(exc).__name__)
        ended = []
    for call_sid, direction in ended:
        leg, interaction_id = _match(conn, call_sid, direction)
        note_call(conn, call_sid, leg, interaction_id, ended=True)
        counts["found"] += 1
    conn.commit()
    ids = conn.execute(
        select(_call.c.id)
        .where(_call.c.ended_at.is_not(None), _call.c.deleted_at.is_(None))
        .order_by(_call.c.id)
        .limit(SWEEP_BATCH)
    ).scalars().all()  # fmt: skip
    conn.commit()
    counts["enqueued"] = sum(enqueue_deletion(row_id) for row_id in ids)
    if any(counts.values()):
        log.info("carrier calls: %d found ended at the carrier, %d deletions enqueued",
                 counts["found"], counts["enqueued"])  # fmt: skip
    return counts


def _ended_at_carrier(svc: Services, now: dt.datetime) -> list[tuple[str, str]]:
    """(CallSid, direction) of the calls to or from the hotline's number that ended before
    ``now - SWEEP_SETTLE``, as the carrier lists them (nothing else of them is kept)."""
    number = svc.settings.hotline_number
    found: dict[str, str] = {}
    for filters in ({"to": number}, {"from_": number}):
        for call in svc.twilio.calls.list(**filters, limit=SWEEP_LIST_LIMIT):
            if str(call.status) not in FINAL_CALL_STATUSES:
                continue
            if call.end_time is not None and now - _aware(call.end_time) < SWEEP_SETTLE:
                continue
            found[str(call.sid)] = str(call.direction or "")
    return list(found.items())


def _match(conn: Session, call_sid: str, direction: str) -> tuple[str, int | None]:
    """The leg and case of a call found at the carrier: a row noted before keeps its own (an
    offer, a call-back); a caller's call is found by its CallSid; anything else is ``other``."""
    if direction == "inbound":
        interaction_id = conn.execute(
            select(_interaction.c.id).where(_interaction.c.provider_sid == call_sid)
        ).scalar()
        if interaction_id is not None:
            return "inbound", interaction_id
    return "other", None


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
