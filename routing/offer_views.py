"""The offer call to a handler: the whisper (caller's language, kind, minutes waited), 1
accepts (the first accept wins), and the call's status (an end without an accept withdraws it).

An accepted live caller is redirected into the case's conference; an accepted call-back request
first calls the caller back (``routing.callbacks``).
"""

from __future__ import annotations

import logging
import time

import redis
from sqlalchemy import select, update
from twilio.base.exceptions import TwilioException
from twilio.twiml.voice_response import Gather, VoiceResponse

from db import db_session
from inquiries.models import FINAL_CALL_STATUSES, utcnow
from recordings import carrier_calls
from routing import callbacks, offers
from routing.models import Handler, QueueEntry
from routing.prompts import text as routing_text
from routing.prompts import whisper_text
from routing.voice import arg_int, bp, conference_name, join_conference, say_text
from services import services
from webhooks import form_value, twilio_webhook

log = logging.getLogger(__name__)

_entry = QueueEntry.__table__
_handler = Handler.__table__
WHISPER_ATTEMPTS = 2


def handler_language(handler_id: int) -> str:
    languages = (
        db_session().execute(select(_handler.c.languages).where(_handler.c.id == handler_id))
    ).scalar()
    return (languages or ["ru"])[0]


@bp.post("/routing/offer")
@twilio_webhook
def offer() -> VoiceResponse:
    """The handler answered: the whisper (caller's language, kind, minutes waited), 1 accepts."""
    offer_id = arg_int("offer")
    attempt = arg_int("attempt") or 1
    response = VoiceResponse()
    conn = db_session()
    row = offers.offer_row(conn, offer_id) if offer_id is not None else None
    if row is None or row.state not in offers.PENDING:
        response.hangup()
        return response
    entry = offers.entry_row(conn, row.interaction_id)
    language = handler_language(row.handler_id)
    waited = (utcnow() - offers.aware(entry.enqueued_at)).total_seconds() if entry else 0
    gather = Gather(
        input="dtmf", num_digits=1, timeout=6, action=offers.url("/routing/offer-key",
        offer=offer_id, attempt=attempt), method="POST",
    )  # fmt: skip
    text = whisper_text(
        language, entry.language if entry else "", entry.kind if entry else "",
        int(waited // 60), callback=bool(entry is not None and entry.callback_requested_at),
    )  # fmt: skip
    say_text(gather, language, text)
    response.append(gather)
    if attempt < WHISPER_ATTEMPTS:
        response.redirect(offers.url("/routing/offer", offer=offer_id, attempt=attempt + 1))
    else:
        response.hangup()
    return response


@bp.post("/routing/offer-key")
@twilio_webhook
def offer_key() -> VoiceResponse:
    """The handler's key: 1 accepts (the first accept wins), anything else hears it again."""
    offer_id = arg_int("offer")
    attempt = arg_int("attempt") or 1
    response = VoiceResponse()
    conn = db_session()
    row = offers.offer_row(conn, offer_id) if offer_id is not None else None
    if row is None:
        response.hangup()
        return response
    if form_value("Digits", 8) != "1":
        response.redirect(offers.url("/routing/offer", offer=offer_id, attempt=attempt))
        return response
    language = handler_language(row.handler_id)
    entry = offers.entry_row(conn, row.interaction_id)
    is_callback = entry is not None and entry.callback_requested_at is not None
    if row.state == "accepted":  # a retried request
        if is_callback:
            return callbacks.handler_waits(row.interaction_id, language)
        return join_conference(row.interaction_id, record=True)
    won = False
    if row.state in offers.PENDING:
        result = offers.core().accept(str(row.interaction_id), str(row.handler_id), time.time())
        won = result.won
    if not won:
        conn.execute(
            update(offers._offer)
            .where(offers._offer.c.id == offer_id, offers._offer.c.state.in_(offers.PENDING))
            .values(state="lost", ended_at=utcnow())
        )
        conn.commit()
        say_text(response, language, routing_text(language, "offer_taken"))
        response.hangup()
        return response
    now = utcnow()
    if not is_callback and not conn.execute(
        update(_entry)
        .where(_entry.c.interaction_id == row.interaction_id,
               _entry.c.state.in_(("waiting", "offered")))
        .values(state="connected", handler_id=row.handler_id, connected_at=now)
    ).rowcount:  # fmt: skip
        return _caller_left(conn, row, language, response)
    conn.execute(
        update(offers._offer)
        .where(offers._offer.c.id == offer_id)
        .values(state="accepted", ended_at=now)
    )
    if is_callback:
        conn.commit()
        offers.cancel_offers(conn, row.interaction_id, result.released)
        return callbacks.start_attempt(conn, row, language)
    offers.connect_event(conn, row.interaction_id, entry, row, now)
    conn.commit()
    offers.cancel_offers(conn, row.interaction_id, result.released)
    sid = offers.caller_sid(conn, row.interaction_id)
    conn.commit()  # no transaction (on SQLite: no write lock) while the carrier answers
    try:
        services().twilio.calls(sid).update(
            url=offers.url("/routing/join", caller=row.interaction_id), method="POST"
        )
    except TwilioException:
        log.warning("interaction %s: the caller could not be connected", row.interaction_id)
        offers.complete(conn, row.interaction_id, "COMPLETECALLER")
        say_text(response, language, routing_text(language, "caller_gone"))
        response.hangup()
        return response
    return join_conference(row.interaction_id, record=True)


def _caller_left(conn, row, language: str, response: VoiceResponse) -> VoiceResponse:
    """The core took the accept, but the caller's exit (hang-up, key 1, timeout) had already
    claimed the queue entry and was on its way to the core: the call ended there, once (its
    ABANDON or EXIT), so no CONNECT and no end here. The handler is freed, the caller is out
    of the core, the handler hears that the caller has gone."""
    conn.execute(
        update(offers._offer)
        .where(offers._offer.c.id == row.id, offers._offer.c.state.in_(offers.PENDING))
        .values(state="lost", ended_at=utcnow())
    )
    conn.commit()
    core = offers.core()
    try:
        core.requeue(str(row.interaction_id), now=time.time())  # the handler is free again
        core.remove(str(row.interaction_id), now=time.time())
    except redis.RedisError:  # as elsewhere: logged; Redis down stops routing anyway
        log.warning("interaction %s: the routing core did not answer", row.interaction_id)
    offers.enqueue_dispatch(f"caller-left:{row.id}")
    say_text(response, language, routing_text(language, "caller_gone"))
    response.hangup()
    return response


@bp.post("/routing/offer-status")
@twilio_webhook
def offer_status() -> VoiceResponse:
    """The offer call's progress: an end without an accept withdraws the offer (next handler);
    the end of an accepted call completes it (the handler hung up)."""
    offer_id = arg_int("offer")
    status = form_value("CallStatus", 32)
    conn = db_session()
    row = offers.offer_row(conn, offer_id) if offer_id is not None else None
    if row is None:
        return VoiceResponse()
    ended = None
    if row.state in offers.PENDING and status in offers.OFFER_ENDINGS:
        offers.end_offer(conn, row.id, status)
    elif (
        row.state == "accepted"
        and status == "completed"
        and offers.caller_call_ended(conn, row.interaction_id)
    ):
        # Who hung up first is decided by the conference's participant-leave (ordered per
        # conference) or the caller's Dial action; this callback races both, so it only closes
        # the call when the caller's leg is already known to have ended.
        offers.complete(conn, row.interaction_id, "COMPLETECALLER")
    if status in FINAL_CALL_STATUSES:  # the leg's record at the carrier goes once it may
        sid = form_value("CallSid", 64)
        ended = carrier_calls.note_call(conn, sid, "offer", row.interaction_id, ended=True)
    conn.commit()
    carrier_calls.enqueue_deletion(ended)
    if row.state == "accepted" and status in FINAL_CALL_STATUSES:
        _caller_left_alone(conn, row.interaction_id, form_value("CallSid", 64))
    return VoiceResponse()


def _caller_left_alone(conn, interaction_id: int, handler_sid: str) -> None:
    """The accepted handler's leg ended. If it never reached the case's conference (it ended
    while its conference TwiML was on the way), no participant-leave will come for it and the
    caller would wait alone with the music: the end is recorded (COMPLETEAGENT, the handler
    left first; wrap-up once) and, if the caller waits alone in the conference, their call is
    moved to ``/routing/handler-lost`` (the message box, as when nobody can take the call).

    Decided from the carrier's view of the conference: a live one (``init``/``in-progress``)
    without the handler's leg, or none at all (the caller is still on the way: ``/routing/join``
    then sees the call ended). A conference that has already ended says nothing (both were
    in it: its participant-leave and the Dial action tell who left first)."""
    entry = offers.entry_row(conn, interaction_id)
    conn.commit()  # no transaction while the carrier answers
    if entry is None or entry.state != "connected" or entry.callback_requested_at is not None:
        return
    if offers.caller_call_ended(conn, interaction_id):
        conn.commit()
        return  # the caller's end closes it (offer_status above, or their own callbacks)
    conn.commit()
    client = services().twilio
    name = conference_name(interaction_id)
    try:
        held = client.conferences.list(friendly_name=name, limit=20)
        live = [c for c in held if c.status in ("init", "in-progress")]
        members = [
            [p.call_sid for p in client.conferences(c.sid).participants.list(limit=20)]
            for c in live
        ]
    except TwilioException:
        log.warning("interaction %s: the conference could not be read", interaction_id)
        return
    if held and not live:
        return  # it ended with both in it: its own callbacks record the end
    if any(handler_sid in sids for sids in members):
        return  # the handler is (still) in it: endConferenceOnExit ends it for both
    sid = offers.caller_sid(conn, interaction_id)
    conn.commit()
    waiting = sid is not None and any(sid in sids for sids in members)
    if live and not waiting:
        return  # a conference on its way out with nobody in it: its callbacks decide
    offers.complete(conn, interaction_id, "COMPLETEAGENT")
    if not waiting:
        return  # not in a conference yet: /routing/join sees the call ended
    log.info("interaction %s: the handler left before joining; the caller is moved", interaction_id)
    try:
        client.calls(sid).update(
            url=offers.url("/routing/handler-lost", caller=interaction_id), method="POST"
        )
    except TwilioException:
        log.info("interaction %s: the caller's call had already ended", interaction_id)
