"""Call-backs asked for while waiting: the caller hangs up and keeps their place.

1. Waiting, the caller presses 2 (offered only if their number can be called back): the queue
   entry is marked, ``<Leave>`` ends the Enqueue, the Enqueue action says "we will call you
   back" and hangs up. The caller stays in the routing core exactly where they were.
2. At the front, the request is offered to a handler like a call, with a call-back whisper.
   The handler presses 1: ``CALLBACK_ATTEMPT`` starts; the handler waits in the case's
   conference while the system calls the caller (from the hotline's number, a neutral greeting
   that names nobody: someone else may answer their phone); the caller presses 1 and joins.
3. No answer, busy, no key, or the handler gone: the attempt failed. The handler is told and
   released (available, no wrap-up); the caller goes back to their old place after
   ``ROUTING_CALLBACK_RETRY_S``, at most ``ROUTING_CALLBACK_ATTEMPTS`` attempts; then the entry
   is ``callback_failed`` and the case keeps its callback request for staff.

Every transition is a conditional UPDATE on the entry's state and attempt number, so repeated or
reordered callbacks change nothing twice. The caller's number is decrypted only to place the
call; it never reaches a URL, a job argument, a Redis key or a log line.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from typing import Any

import redis
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from twilio.base.exceptions import TwilioException
from twilio.twiml.voice_response import Gather, VoiceResponse

from dataprotection import caller_address
from db import db_session
from inquiries.models import Caller, Inquiry, Interaction, utcnow
from inquiries.service import caller_number
from jobs import enqueue, enqueue_in
from recordings import carrier_calls
from routing import offers
from routing.models import QueueEntry
from routing.prompts import text as routing_text
from routing.voice import arg_int, bp, join_conference, say, say_text
from services import services
from webhooks import form_value, twilio_webhook

log = logging.getLogger(__name__)

_entry = QueueEntry.__table__
_offer = offers._offer
_CALLABLE = re.compile(r"^(\+[1-9][0-9]{6,14}|client:[A-Za-z0-9_.@-]{1,64})$")
GREETING_ATTEMPTS = 2
#: A call-back leg's final statuses (the caller's phone).
LEG_ENDINGS = ("completed", "no-answer", "busy", "failed", "canceled")


def callback_address(conn: Session, interaction_id: int) -> str | None:
    """Where the caller can be called back (their number or browser client), or None for a
    withheld number (``Caller.withheld``; a placeholder or anything not callable, for rows
    written before that existed) or one erased. Decrypted here, used at once, never kept."""
    row = conn.execute(
        select(Caller.number_hash, Caller.number_ciphertext, Caller.number_key_id, Caller.withheld)
        .join(Inquiry, Inquiry.caller_id == Caller.id)
        .join(Interaction, Interaction.inquiry_id == Inquiry.id)
        .where(Interaction.id == interaction_id)
    ).first()
    if row is None or row.withheld:
        return None
    address = caller_number(services().protector, row)  # type: ignore[arg-type]
    if caller_address(address) is None or not _CALLABLE.match(address or ""):
        return None
    return address


def can_call_back(conn: Session, interaction_id: int) -> bool:
    return services().settings.routing_callback_attempts > 0 and (
        callback_address(conn, interaction_id) is not None
    )


def mark_requested(conn: Session, interaction_id: int) -> bool:
    """The waiting caller pressed 2: keep the place, call them back. True if now marked."""
    return bool(
        conn.execute(
            update(_entry)
            .where(
                _entry.c.interaction_id == interaction_id,
                _entry.c.state.in_(("waiting", "offered")),
                _entry.c.callback_requested_at.is_(None),
            )
            .values(callback_requested_at=utcnow())
        ).rowcount
    )


def handler_waits(interaction_id: int, language: str) -> VoiceResponse:
    """The handler's TwiML while the caller is called: a word, then the case's conference."""
    response = VoiceResponse()
    say_text(response, language, routing_text(language, "calling_back"))
    for verb in join_conference(interaction_id, record=True).verbs:
        response.append(verb)
    return response


def start_attempt(conn: Session, offer: Any, language: str) -> VoiceResponse:
    """The handler accepted a call-back request (the offer row is ``accepted``, committed):
    one more attempt, the caller's phone rings; the handler's leg waits in the conference."""
    iid = offer.interaction_id
    entry = offers.entry_row(conn, iid)
    attempt = entry.callback_attempts + 1
    claimed = conn.execute(
        update(_entry)
        .where(_entry.c.id == entry.id, _entry.c.state.in_(("waiting", "offered")))
        .values(state="calling_back", handler_id=offer.handler_id, callback_attempts=attempt,
                callback_sid=None, callback_due_at=None)
    ).rowcount  # fmt: skip
    conn.commit()
    if not claimed:  # a retried request after the attempt already started
        return handler_waits(iid, language)
    svc = services()
    address = callback_address(conn, iid)
    conn.commit()  # no transaction (on SQLite: no write lock) while the carrier answers
    try:
        if address is None:
            raise TwilioException("the caller's number cannot be called")
        call = svc.twilio.calls.create(
            to=address,
            from_=svc.settings.hotline_number,
            url=offers.url("/routing/callback-answer", caller=iid, attempt=attempt),
            method="POST",
            status_callback=offers.url("/routing/callback-status", caller=iid, attempt=attempt),
            status_callback_method="POST",
            status_callback_event=["completed"],
            timeout=svc.settings.routing_callback_ring_s,
        )
    except TwilioException as exc:
        log.warning("interaction %s: call-back attempt %s not placed: %s", iid, attempt,
                    type(exc).__name__)  # fmt: skip
        attempt_failed(conn, iid, attempt, "failed", tell_handler=False)
        response = VoiceResponse()
        say_text(response, language, routing_text(language, "callback_no_answer"))
        response.hangup()
        return response
    conn.execute(
        update(_entry)
        .where(_entry.c.id == entry.id, _entry.c.callback_attempts == attempt)
        .values(callback_sid=call.sid)
    )
    carrier_calls.note_call(conn, call.sid, "callback", iid)  # deleted once it ends
    conn.commit()
    return handler_waits(iid, language)


def attempt_failed(
    conn: Session, interaction_id: int, attempt: int, why: str, *, tell_handler: bool = True
) -> bool:
    """The attempt did not reach the caller: logged, the handler released (told on their
    phone), the caller back in their old place later, or given up after the last attempt."""
    settings = services().settings
    entry = offers.entry_row(conn, interaction_id)
    if entry is None:
        return False
    final = attempt >= settings.routing_callback_attempts
    now = utcnow()
    values: dict[str, Any] = {"handler_id": None}
    if final:
        values.update(state="callback_failed", ended_at=now)
    else:
        values.update(
            state="waiting",
            callback_due_at=now + dt.timedelta(seconds=settings.routing_callback_retry_s),
        )
    claimed = conn.execute(
        update(_entry)
        .where(
            _entry.c.id == entry.id,
            _entry.c.state == "calling_back",
            _entry.c.callback_attempts == attempt,
        )
        .values(**values)
    ).rowcount
    if not claimed:
        return False
    offers.add_event(
        conn, interaction_id, "CALLBACK_ATTEMPT",
        {"attempt": attempt, "handler_id": entry.handler_id, "result": why, "final": final},
        f"callback-attempt:{interaction_id}:{attempt}",
    )  # fmt: skip
    conn.commit()
    accepted = conn.execute(
        select(_offer.c.call_sid)
        .where(_offer.c.interaction_id == interaction_id, _offer.c.state == "accepted",
               _offer.c.handler_id == entry.handler_id)
        .order_by(_offer.c.id.desc())
    ).first()  # fmt: skip
    conn.commit()  # the carrier is asked next: no transaction open meanwhile
    if tell_handler and accepted is not None and accepted.call_sid:
        _tell_handler(accepted.call_sid, entry.handler_id)
    if entry.callback_sid and why == "handler-left":
        offers.hang_up_leg(entry.callback_sid, 0)
    core = offers.core()
    try:
        core.requeue(str(interaction_id), now=time.time())  # the handler is free at once
        if final or settings.routing_callback_retry_s > 0:
            core.remove(str(interaction_id), now=time.time())  # out until due
    except redis.RedisError:
        log.warning("interaction %s: the routing core did not answer", interaction_id)
    if not final:
        schedule_due(interaction_id, attempt, settings.routing_callback_retry_s)
    offers.enqueue_dispatch(f"callback-failed:{interaction_id}:{attempt}")
    return True


def _tell_handler(call_sid: str, handler_id: int) -> None:
    from routing.offer_views import handler_language

    language = handler_language(handler_id)
    db_session().commit()  # no transaction open while the carrier answers
    response = VoiceResponse()
    say_text(response, language, routing_text(language, "callback_no_answer"))
    response.hangup()
    try:
        services().twilio.calls(call_sid).update(twiml=str(response))
    except TwilioException:
        log.info("handler %s: their leg had already ended", handler_id)


def schedule_due(interaction_id: int, attempt: int, delay_s: int) -> None:
    job_id = f"routing-callback-due-{interaction_id}-{attempt}"
    try:
        if delay_s > 0:
            enqueue_in(
                delay_s, "routing.jobs.callback_due", interaction_id, job_id=job_id, urgent=True
            )
        else:
            enqueue("routing.jobs.callback_due", interaction_id, job_id=job_id, urgent=True)
    except redis.RedisError:
        log.warning("interaction %s: call-back retry not scheduled (the tick will)",
                    interaction_id)  # fmt: skip


def requeue_due(conn: Session, interaction_id: int) -> bool:
    """A call-back whose retry time has come: back in the core in its original place."""
    entry = offers.entry_row(conn, interaction_id)
    if entry is None or entry.state != "waiting" or entry.callback_requested_at is None:
        return False
    offers.core().enqueue(
        str(interaction_id), language=entry.language, kind=entry.kind,
        priority=float(entry.priority), enqueued_at=offers.aware(entry.enqueued_at).timestamp(),
    )  # fmt: skip
    conn.execute(update(_entry).where(_entry.c.id == entry.id).values(callback_due_at=None))
    conn.commit()
    return True


def _attempt_entry(conn: Session) -> tuple[Any, int | None, int | None]:
    iid, attempt = arg_int("caller"), arg_int("attempt")
    entry = offers.entry_row(conn, iid) if iid is not None else None
    return entry, iid, attempt


# -- the call-back leg (the caller's phone) ----------------------------------------------------


@bp.post("/routing/callback-answer")
@twilio_webhook
def callback_answer() -> VoiceResponse:
    """The caller picked up: a neutral greeting, 1 connects (so a voicemail box cannot)."""
    conn = db_session()
    entry, iid, attempt = _attempt_entry(conn)
    response = VoiceResponse()
    if entry is None or entry.callback_attempts != attempt:
        response.hangup()
        return response
    if entry.state == "connected":  # a retried request
        return join_conference(iid, record=False)
    if entry.state != "calling_back":
        response.hangup()
        return response
    tries = arg_int("try") or 1
    gather = Gather(
        input="dtmf", num_digits=1, timeout=6, method="POST",
        action=offers.url("/routing/callback-key", caller=iid, attempt=attempt),
    )  # fmt: skip
    say(gather, entry.language, "callback_greeting")
    response.append(gather)
    if tries < GREETING_ATTEMPTS:
        again = offers.url("/routing/callback-answer", caller=iid, attempt=attempt, **{"try": 2})
        response.redirect(again, method="POST")
    else:
        response.hangup()
    return response


@bp.post("/routing/callback-key")
@twilio_webhook
def callback_key() -> VoiceResponse:
    """1: the caller meets the handler in the case's conference (CONNECT)."""
    conn = db_session()
    entry, iid, attempt = _attempt_entry(conn)
    response = VoiceResponse()
    if entry is None or entry.callback_attempts != attempt:
        response.hangup()
        return response
    if form_value("Digits", 8) != "1":
        response.redirect(
            offers.url("/routing/callback-answer", caller=iid, attempt=attempt), method="POST"
        )
        return response
    if entry.state == "connected":
        return join_conference(iid, record=False)
    now = utcnow()
    claimed = conn.execute(
        update(_entry)
        .where(_entry.c.id == entry.id, _entry.c.state == "calling_back",
               _entry.c.callback_attempts == attempt)
        .values(state="connected", connected_at=now)
    ).rowcount  # fmt: skip
    if not claimed:
        response.hangup()
        return response
    accepted = conn.execute(
        select(_offer)
        .where(_offer.c.interaction_id == iid, _offer.c.state == "accepted",
               _offer.c.handler_id == entry.handler_id)
        .order_by(_offer.c.id.desc())
    ).first()  # fmt: skip
    if accepted is not None:
        offers.connect_event(conn, iid, entry, accepted, now, callback=True, attempt=attempt)
    offers.add_event(
        conn, iid, "CALLBACK_ATTEMPT",
        {"attempt": attempt, "handler_id": entry.handler_id, "result": "connected",
         "final": True},
        f"callback-attempt:{iid}:{attempt}",
    )  # fmt: skip
    conn.commit()
    return join_conference(iid, record=False)


@bp.post("/routing/callback-status")
@twilio_webhook
def callback_status() -> VoiceResponse:
    """The call-back leg ended: before the caller joined, the attempt failed."""
    conn = db_session()
    entry, iid, attempt = _attempt_entry(conn)
    status = form_value("CallStatus", 32)
    if (
        entry is not None
        and attempt is not None
        and status in LEG_ENDINGS
        and entry.state == "calling_back"
        and entry.callback_attempts == attempt
    ):
        attempt_failed(conn, iid, attempt, "not-confirmed" if status == "completed" else status)
    if status in LEG_ENDINGS:  # the leg's record at the carrier goes once it may
        sid = form_value("CallSid", 64)
        case = entry.interaction_id if entry is not None else None
        ended = carrier_calls.note_call(conn, sid, "callback", case, ended=True)
        conn.commit()
        carrier_calls.enqueue_deletion(ended)
    return VoiceResponse()
