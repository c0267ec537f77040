"""The call log's write side: find or open a caller's case, record each step of a call.

Every function here is safe under carrier retries: the same webhook delivered twice finds the
rows the first delivery made (unique constraints + re-read on conflict), and status changes only
ever move a call forward.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

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


def find_or_create_caller(session: Session, protector: DataProtector, raw_number: str) -> Caller:
    """The pseudonymous caller for a number: looked up by keyed hash, number kept encrypted."""
    number = normalise_number(raw_number)
    number_hash = protector.lookup_hash(number)
    caller = session.scalar(select(Caller).where(Caller.number_hash == number_hash))
    if caller is not None:
        return caller
    sealed = protector.seal_text(number, associated=number_hash.encode())
    caller = Caller(
        number_hash=number_hash, number_ciphertext=sealed.ciphertext, number_key_id=sealed.key_id
    )
    try:
        with session.begin_nested():
            session.add(caller)
            session.flush()
    except IntegrityError:  # another request created the same caller just now
        caller = session.scalars(select(Caller).where(Caller.number_hash == number_hash)).one()
    return caller


def caller_number(protector: DataProtector, caller: Caller) -> str | None:
    """Decrypt a caller's number (for roles allowed to see it; callers must audit the view)."""
    if caller.number_ciphertext is None or caller.number_key_id is None:
        return None
    sealed = Sealed(caller.number_key_id, caller.number_ciphertext)
    return protector.open_text(sealed, associated=caller.number_hash.encode())


def open_inquiry_for(session: Session, caller: Caller) -> tuple[Inquiry, bool]:
    """The caller's open case, or a new one: a repeat caller's new call joins their open inquiry.

    Returns ``(inquiry, created)``.
    """
    inquiry = session.scalar(
        select(Inquiry)
        .where(Inquiry.caller_id == caller.id, Inquiry.status.in_(OPEN_INQUIRY_STATUSES))
        .order_by(Inquiry.id.desc())
        .limit(1)
    )
    if inquiry is not None:
        return inquiry, False
    inquiry = Inquiry(caller_id=caller.id, status="new")
    session.add(inquiry)
    session.flush()
    return inquiry, True


def find_interaction(session: Session, call_sid: str) -> Interaction | None:
    return session.scalar(select(Interaction).where(Interaction.provider_sid == call_sid))


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
    caller = find_or_create_caller(session, protector, from_number)
    inquiry, new_case = open_inquiry_for(session, caller)
    interaction = Interaction(
        inquiry_id=inquiry.id,
        provider_sid=call_sid,
        channel=channel,
        direction=_direction(direction),
        status=status if status in CALL_STATUS_RANK else "ringing",
        ivr_path=[],
    )
    try:
        with session.begin_nested():
            session.add(interaction)
    except IntegrityError:  # the carrier's retry raced us: use the row the first one made
        existing = find_interaction(session, call_sid)
        if existing is None:
            raise
        return existing, False
    if not new_case and inquiry.status == "new":
        inquiry.status = "open"  # a repeat call: the case is being worked on
    inquiry.updated_at = utcnow()
    return interaction, True


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
) -> CallEvent | None:
    """Append an event; with ``dedupe_key`` a second write of the same event is a no-op."""
    if dedupe_key is not None and session.scalar(
        select(CallEvent.id).where(CallEvent.dedupe_key == dedupe_key)
    ):
        return None
    row = CallEvent(
        interaction_id=interaction.id if interaction is not None else None,
        event=event,
        data=data or {},
        dedupe_key=dedupe_key,
        time=time or utcnow(),
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        if dedupe_key is None:
            raise
        return None
    return row


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
    if add_event(session, interaction, "IVR_STEP", step, dedupe_key=dedupe_key, time=at) is None:
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
    if changed:
        session.refresh(interaction)
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
