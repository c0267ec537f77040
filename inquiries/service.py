"""The call log's write side: find or open a caller's case, record each step of a call.

Every function here is safe under carrier retries: the same webhook delivered twice finds the
rows the first delivery made (``INSERT … ON CONFLICT DO NOTHING`` on the unique keys, then a
re-read), and status changes only ever move a call forward. No savepoints, few statements: these
run inside every webhook, and on SQLite every write holds the database's only write lock.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Table, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, joinedload
from sqlalchemy.orm.attributes import set_committed_value

from dataprotection import DataProtector, Sealed, normalise_number
from inquiries.models import (
    CALL_STATUS_RANK,
    FINAL_CALL_STATUSES,
    Caller,
    CallEvent,
    Inquiry,
    Interaction,
    utcnow,
)

OPEN_INQUIRY_STATUSES = ("new", "open")


def insert_ignoring_duplicates(
    session: Session, table: Table, values: dict[str, Any], unique: str
) -> int | None:
    """INSERT a row unless one with the same ``unique`` column exists; the new id, else None."""
    dialect = sqlite if session.get_bind().dialect.name == "sqlite" else postgresql
    statement = (
        dialect.insert(table)
        .values(**values)
        .on_conflict_do_nothing(index_elements=[unique])
        .returning(table.c.id)
    )
    return session.execute(statement).scalar()


def find_or_create_caller(session: Session, protector: DataProtector, raw_number: str) -> int:
    """The id of the pseudonymous caller for a number (keyed hash; the number kept encrypted)."""
    number = normalise_number(raw_number)
    number_hash = protector.lookup_hash(number)
    caller_id = session.scalar(select(Caller.id).where(Caller.number_hash == number_hash))
    if caller_id is not None:
        return caller_id
    sealed = protector.seal_text(number, associated=number_hash.encode())
    values = {
        "number_hash": number_hash,
        "number_ciphertext": sealed.ciphertext,
        "number_key_id": sealed.key_id,
        "created_at": utcnow(),
    }
    new_id = insert_ignoring_duplicates(session, Caller.__table__, values, "number_hash")
    if new_id is not None:
        return new_id
    # Another request created the same caller between our SELECT and INSERT.
    return session.scalars(select(Caller.id).where(Caller.number_hash == number_hash)).one()


def caller_number(protector: DataProtector, caller: Caller) -> str | None:
    """Decrypt a caller's number (for roles allowed to see it; callers must audit the view)."""
    if caller.number_ciphertext is None or caller.number_key_id is None:
        return None
    sealed = Sealed(caller.number_key_id, caller.number_ciphertext)
    return protector.open_text(sealed, associated=caller.number_hash.encode())


def open_inquiry_for(session: Session, caller_id: int) -> tuple[int, bool]:
    """The caller's open case, or a new one: a repeat caller's new call joins their open inquiry.

    Returns ``(inquiry id, created)``.
    """
    inquiry_id = session.scalar(
        select(Inquiry.id)
        .where(Inquiry.caller_id == caller_id, Inquiry.status.in_(OPEN_INQUIRY_STATUSES))
        .order_by(Inquiry.id.desc())
        .limit(1)
    )
    if inquiry_id is not None:
        return inquiry_id, False
    now = utcnow()
    new_id = session.execute(
        Inquiry.__table__.insert()
        .values(caller_id=caller_id, status="new", kind="other", priority=0,
                callback_requested=False, created_at=now, updated_at=now)
        .returning(Inquiry.__table__.c.id)
    ).scalar_one()  # fmt: skip
    return new_id, True


def find_interaction(session: Session, call_sid: str) -> Interaction | None:
    """The interaction of a provider sid, with its inquiry loaded in the same query."""
    return session.scalar(
        select(Interaction)
        .options(joinedload(Interaction.inquiry))
        .where(Interaction.provider_sid == call_sid)
    )


def find_or_create_interaction(
    session: Session,
    protector: DataProtector,
    *,
    call_sid: str,
    from_number: str,
    direction: str = "inbound",
    channel: str = "voice",
    status: str = "ringing",
) -> tuple[Interaction, bool]:
    """The interaction for a provider sid, created (with caller and case) on first sight.

    Returns ``(interaction, created)``.
    """
    existing = find_interaction(session, call_sid)
    if existing is not None:
        return existing, False
    caller_id = find_or_create_caller(session, protector, from_number)
    inquiry_id, new_case = open_inquiry_for(session, caller_id)
    now = utcnow()
    values = {
        "inquiry_id": inquiry_id,
        "provider_sid": call_sid,
        "channel": channel,
        "direction": _direction(direction),
        "status": status if status in CALL_STATUS_RANK else "ringing",
        "started_at": now,
        "answered_at": now if status == "in-progress" else None,
        "ivr_path": [],
    }
    created = (
        insert_ignoring_duplicates(session, Interaction.__table__, values, "provider_sid")
        is not None
    )
    if created and not new_case:  # a repeat call: the case is being worked on
        session.execute(
            update(Inquiry)
            .where(Inquiry.id == inquiry_id, Inquiry.status == "new")
            .values(status="open", updated_at=now)
        )
    interaction = find_interaction(session, call_sid)
    if interaction is None:  # pragma: no cover - the row was just written or found
        raise RuntimeError("interaction vanished after insert")
    return interaction, created


def _direction(value: str) -> str:
    return "inbound" if value in ("", "inbound") else "outbound"


def add_event(
    session: Session,
    interaction: Interaction | None,
    event: str,
    data: dict[str, Any] | None = None,
    *,
    dedupe_key: str | None = None,
    time: dt.datetime | None = None,
) -> bool:
    """Append an event; with ``dedupe_key`` a second write of the same event is a no-op.

    Returns False when the event was already written (a carrier retry, a replay).
    """
    values = {
        "interaction_id": interaction.id if interaction is not None else None,
        "event": event,
        "data": data or {},
        "dedupe_key": dedupe_key,
        "time": time or utcnow(),
    }
    new_id = insert_ignoring_duplicates(session, CallEvent.__table__, values, "dedupe_key")
    return new_id is not None


def record_ivr_step(
    session: Session,
    interaction: Interaction,
    node: str,
    answer: str | None,
    *,
    dedupe_key: str,
    **extra: Any,
) -> bool:
    """Append one IVR step to the interaction's path and to the event log, once per dedupe key.

    Returns False when this step was already recorded (a carrier retry).
    """
    at = utcnow()
    step: dict[str, Any] = {"node": node, "answer": answer, "at": at.isoformat()}
    step.update(extra)
    if not add_event(session, interaction, "IVR_STEP", step, dedupe_key=dedupe_key, time=at):
        return False
    interaction.ivr_path = [*(interaction.ivr_path or []), step]
    return True


def apply_call_status(
    session: Session,
    interaction: Interaction,
    status: str,
    *,
    duration_s: int | None = None,
    at: dt.datetime | None = None,
) -> bool:
    """Move a call's status forward; a late or duplicate callback changes nothing.

    A conditional UPDATE (only from a lower-ranked status) makes this atomic across processes.
    Returns True when the status changed.
    """
    rank = CALL_STATUS_RANK.get(status)
    if rank is None:
        return False
    lower = [s for s, r in CALL_STATUS_RANK.items() if r < rank]
    when = at or utcnow()
    values: dict[str, Any] = {"status": status}
    if status == "in-progress":
        values["answered_at"] = when
    if status in FINAL_CALL_STATUSES:
        values["ended_at"] = when
        if duration_s is not None:
            values["duration_s"] = duration_s
    result = session.execute(
        update(Interaction)
        .where(Interaction.id == interaction.id, Interaction.status.in_(lower))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    changed = bool(result.rowcount)
    if changed:  # mirror the UPDATE on the loaded object without another SELECT
        for name, value in values.items():
            set_committed_value(interaction, name, value)
    return changed


def request_callback(session: Session, interaction: Interaction, reason: str) -> None:
    """Note on the case that the caller wants to be called back (idempotent)."""
    inquiry = interaction.inquiry
    if not inquiry.callback_requested:
        inquiry.callback_requested = True
        inquiry.callback_requested_at = utcnow()
        add_event(
            session,
            interaction,
            "CALLBACK_REQUESTED",
            {"reason": reason},
            dedupe_key=f"callback:{interaction.provider_sid}",
        )
    if inquiry.status == "new":
        inquiry.status = "open"
    inquiry.updated_at = utcnow()
