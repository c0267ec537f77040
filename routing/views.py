"""Routing webhooks: the waiting caller (waitUrl, Enqueue action, the conference) and the offer
calls to handlers (whisper + accept key, call status).

All signed (``twilio_webhook``); ids only in every URL. Caller-side views find the call by its
CallSid; offer views by ``?offer=<id>`` (the handler's leg is not a case's call).
"""

from __future__ import annotations

import logging
import re
import time

from flask import Blueprint, Response, current_app, request
from sqlalchemy import update
from twilio.base.exceptions import TwilioException
from twilio.twiml.voice_response import Dial, Gather, VoiceResponse
from werkzeug.exceptions import HTTPException

from extensions import db_connection, services
from inquiries.models import utcnow
from inquiries.service import CallLog, CallState
from routing import offers
from routing.metrics import estimated_wait_minutes, estimated_wait_s
from routing.models import Handler, QueueEntry
from routing.prompts import text as routing_text
from routing.prompts import whisper_text
from webhooks import form_int, form_value, twilio_webhook

log = logging.getLogger(__name__)
bp = Blueprint("routing", __name__)

_SID = re.compile(r"^CA[0-9a-fA-F]{32}$")
_entry = QueueEntry.__table__
WHISPER_ATTEMPTS = 2
#: Seconds of hold between two position announcements (the whole cycle is about 30 s).
HOLD_PAUSE_S = 20


def conference_name(interaction_id: int) -> str:
    return f"case-{interaction_id}"


def _calls() -> CallLog:
    return CallLog(db_connection(), services().protector)


def _caller() -> CallState | None:
    sid = form_value("CallSid", 64)
    return _calls().find(sid) if _SID.match(sid) else None


def _arg_int(name: str) -> int | None:
    value = request.args.get(name, "")
    return int(value) if value.isdigit() and len(value) < 12 else None


def _say(target: VoiceResponse | Gather, language: str, key: str, **fields: object) -> None:
    flow = current_app.extensions["ivr_flow"]
    voice = flow.voices[language]
    text = flow.text(language, key).format(**fields) if fields else flow.text(language, key)
    target.say(text, language=voice.say_language, voice=voice.voice)


def _say_text(target: VoiceResponse | Gather, language: str, text: str) -> None:
    flow = current_app.extensions["ivr_flow"]
    voice = flow.voices[flow.language_or_default(language)]
    target.say(text, language=voice.say_language, voice=voice.voice)


def _language(call: CallState | None) -> str:
    return current_app.extensions["ivr_flow"].language_or_default(call.language if call else None)


def _join_conference(interaction_id: int, *, record: bool) -> VoiceResponse:
    response = VoiceResponse()
    dial = Dial(
        action=offers.url("/routing/caller-done", caller=interaction_id) if not record else None,
        method="POST",
    )
    options: dict[str, object] = {
        "start_conference_on_enter": True, "end_conference_on_exit": True, "beep": False,
        "participant_label": "handler" if record else "caller",
        "status_callback": offers.url("/routing/conference", caller=interaction_id),
        "status_callback_event": "leave", "status_callback_method": "POST",
    }  # fmt: skip
    if record:
        options.update(
            record="record-from-start",
            recording_status_callback=offers.url("/routing/recording", caller=interaction_id),
            recording_status_callback_method="POST",
        )
    dial.conference(conference_name(interaction_id), **options)
    response.append(dial)
    return response


# -- the waiting caller ------------------------------------------------------------------------


@bp.post("/routing/wait")
@twilio_webhook
def wait() -> VoiceResponse:
    """The Enqueue waitUrl: the place in the queue, "press 1 for a message", hold audio."""
    call = _caller()
    language = _language(call)
    response = VoiceResponse()
    gather = Gather(
        input="dtmf", num_digits=1, timeout=1, action=offers.url("/routing/wait-key"),
        method="POST",
    )  # fmt: skip
    position = None
    if call is not None:
        try:
            position = offers.core().position(str(call.interaction_id))
        except Exception:  # Redis down: the caller still hears the hold
            log.warning("interaction %s: no queue position", call.interaction_id)
        if _waited_too_long(call, position):
            response.leave()  # the Enqueue action then records the message and the callback
            return response
    if position:
        _say(gather, language, "queue_position", position=position)
        minutes = estimated_wait_minutes(estimated_wait_s(db_connection()))
        if minutes is not None:
            _say(gather, language, "queue_estimate", minutes=minutes)
    _say(gather, language, "queue_leave_option")
    hold = services().settings.routing_hold_music_url
    if hold:
        gather.play(hold)
    gather.pause(length=HOLD_PAUSE_S)
    response.append(gather)
    return response


def _waited_too_long(call: CallState, position: int | None) -> bool:
    """Past ROUTING_MAX_WAIT_S: out of the queue (EXITWITHTIMEOUT) before the ``<Leave>``."""
    max_wait = services().settings.routing_max_wait_s
    entry = offers.entry_row(db_connection(), call.interaction_id)
    if entry is not None and entry.state == "left":  # a retried request: out already
        return True
    if not max_wait or entry is None or entry.state not in ("waiting", "offered"):
        return False
    if (utcnow() - offers.aware(entry.enqueued_at)).total_seconds() <= max_wait:
        return False
    _leave_queue(call, entry, "left", "EXITWITHTIMEOUT", {"position": position})
    return True


@bp.post("/routing/wait-key")
@twilio_webhook
def wait_key() -> VoiceResponse:
    """A key pressed while waiting: 1 leaves the queue (the Enqueue action then records)."""
    response = VoiceResponse()
    if form_value("Digits", 8) == "1":
        response.leave()
    return response  # anything else: the wait music goes on


@bp.post("/routing/queue-action")
@twilio_webhook
def queue_action() -> VoiceResponse:
    """The Enqueue action: the caller left with 1 (→ message box), hung up (ABANDON), or the
    queue was full; a caller already connected is (re)sent to the conference."""
    call = _caller()
    result = form_value("QueueResult", 32)
    response = VoiceResponse()
    if call is None:
        return response
    conn = db_connection()
    entry = offers.entry_row(conn, call.interaction_id)
    if entry is not None and entry.state == "connected":
        return _join_conference(call.interaction_id, record=False)
    language = _language(call)
    if result in ("leave", "hangup", "queue-full", "error", "system-error"):
        outcome = {"leave": ("left", "EXITWITHKEY"), "hangup": ("abandoned", "ABANDON")}.get(
            result, ("overflow", "OVERFLOW")
        )
        _leave_queue(call, entry, *outcome)
        if result != "hangup":
            calls = _calls()
            calls.request_callback(call, "queue")
            conn.commit()
            _message_box(response, language)
    return response


def _leave_queue(
    call: CallState, entry, state: str, event: str, extra: dict[str, object] | None = None
) -> None:
    conn = db_connection()
    iid = call.interaction_id
    now = utcnow()
    claimed = 0
    if entry is not None:
        claimed = conn.execute(
            update(_entry)
            .where(_entry.c.id == entry.id, _entry.c.state.in_(("waiting", "offered")))
            .values(state=state, ended_at=now)
        ).rowcount
    if claimed:
        waited = (now - offers.aware(entry.enqueued_at)).total_seconds()
        data: dict[str, object] = {"waittime_s": round(waited), "queue_time": form_int("QueueTime")}
        if event == "EXITWITHKEY":
            data["key"] = "1"
        data.update(extra or {})
        offers.add_event(conn, iid, event, data, f"queue-exit:{iid}")
    conn.commit()
    if not claimed:
        return
    try:
        removed = offers.core().remove(str(iid), now=time.time())
    except Exception:
        log.warning("interaction %s: the routing core did not answer", iid)
        removed = None
    offers.cancel_offers(conn, iid)
    if removed is not None and removed.handler_ids:
        offers.enqueue_dispatch(f"exit:{iid}")


def _message_box(response: VoiceResponse, language: str) -> None:
    settings = services().settings
    _say(response, language, "operators_busy")
    response.record(
        action=offers.url("/voice/message/recorded"), method="POST",
        max_length=settings.message_max_seconds, timeout=8, play_beep=True,
        trim="trim-silence", recording_status_callback=offers.url("/voice/recording"),
        recording_status_callback_method="POST",
        recording_status_callback_event="completed absent",
    )  # fmt: skip
    response.redirect(offers.url("/voice/message/retry", attempt=1, callback=1), method="POST")


@bp.post("/routing/join")
@twilio_webhook
def join() -> VoiceResponse:
    """The caller, redirected out of the queue after an accept: into the case's conference."""
    caller = _arg_int("caller")
    if caller is None:
        return VoiceResponse()
    return _join_conference(caller, record=False)


@bp.post("/routing/caller-done")
@twilio_webhook
def caller_done() -> VoiceResponse:
    """The caller's conference leg ended: the caller hung up, or the handler ended it."""
    caller = _arg_int("caller")
    response = VoiceResponse()
    if caller is not None:
        hung_up = form_value("CallStatus", 32) == "completed"
        offers.complete(db_connection(), caller, "COMPLETECALLER" if hung_up else "COMPLETEAGENT")
    response.hangup()
    return response


@bp.post("/routing/conference")
@twilio_webhook
def conference_status() -> VoiceResponse:
    """The case's conference: the first participant to leave ends the call (who hung up)."""
    caller = _arg_int("caller")
    if caller is not None and form_value("StatusCallbackEvent", 32) == "participant-leave":
        conn = db_connection()
        left = form_value("CallSid", 64)
        by_caller = form_value("ParticipantLabel", 32) == "caller" or (
            left == offers.caller_sid(conn, caller)
        )
        offers.complete(conn, caller, "COMPLETECALLER" if by_caller else "COMPLETEAGENT")
    return VoiceResponse()


@bp.post("/routing/recording")
@twilio_webhook
def recording() -> VoiceResponse:
    """The conference recording's status: kept as an event on the caller's call."""
    caller = _arg_int("caller")
    sid = form_value("RecordingSid", 64)
    if caller is not None and sid.startswith("RE"):
        status = form_value("RecordingStatus", 16)
        offers.add_event(
            db_connection(), caller, "CALL_RECORDING",
            {"recording_sid": sid, "status": status,
             "duration_s": form_int("RecordingDuration")},
            f"call-recording:{sid}:{status}",
        )  # fmt: skip
        db_connection().commit()
    return VoiceResponse()


# -- the offer call to a handler ---------------------------------------------------------------


def _handler_language(handler_id: int) -> str:
    handler = (
        db_connection()
        .execute(Handler.__table__.select().where(Handler.__table__.c.id == handler_id))
        .first()
    )
    return (handler.languages or ["ru"])[0] if handler is not None else "ru"


@bp.post("/routing/offer")
@twilio_webhook
def offer() -> VoiceResponse:
    """The handler answered: the whisper (caller's language, kind, minutes waited), 1 accepts."""
    offer_id = _arg_int("offer")
    attempt = _arg_int("attempt") or 1
    response = VoiceResponse()
    conn = db_connection()
    row = offers.offer_row(conn, offer_id) if offer_id is not None else None
    if row is None or row.state not in offers.PENDING:
        response.hangup()
        return response
    entry = offers.entry_row(conn, row.interaction_id)
    language = _handler_language(row.handler_id)
    waited = (utcnow() - offers.aware(entry.enqueued_at)).total_seconds() if entry else 0
    gather = Gather(
        input="dtmf", num_digits=1, timeout=6, action=offers.url("/routing/offer-key",
        offer=offer_id, attempt=attempt), method="POST",
    )  # fmt: skip
    text = whisper_text(language, entry.language if entry else "", entry.kind if entry else "",
                        int(waited // 60))  # fmt: skip
    _say_text(gather, language, text)
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
    offer_id = _arg_int("offer")
    attempt = _arg_int("attempt") or 1
    response = VoiceResponse()
    conn = db_connection()
    row = offers.offer_row(conn, offer_id) if offer_id is not None else None
    if row is None:
        response.hangup()
        return response
    if form_value("Digits", 8) != "1":
        response.redirect(offers.url("/routing/offer", offer=offer_id, attempt=attempt))
        return response
    language = _handler_language(row.handler_id)
    if row.state == "accepted":  # a retried request
        return _join_conference(row.interaction_id, record=True)
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
        _say_text(response, language, routing_text(language, "offer_taken"))
        response.hangup()
        return response
    now = utcnow()
    conn.execute(
        update(offers._offer)
        .where(offers._offer.c.id == offer_id)
        .values(state="accepted", ended_at=now)
    )
    entry = offers.entry_row(conn, row.interaction_id)
    conn.execute(
        update(_entry)
        .where(_entry.c.interaction_id == row.interaction_id)
        .values(state="connected", handler_id=row.handler_id, connected_at=now)
    )
    hold = (now - offers.aware(entry.enqueued_at)).total_seconds() if entry else None
    ring = (now - offers.aware(row.offered_at)).total_seconds()
    offers.add_event(
        conn, row.interaction_id, "CONNECT",
        {"handler_id": row.handler_id, "offer_id": offer_id, "holdtime_s": round(hold or 0),
         "ringtime_s": round(ring)},
        f"connect:{row.interaction_id}",
    )  # fmt: skip
    conn.commit()
    offers.cancel_offers(conn, row.interaction_id, result.released)
    sid = offers.caller_sid(conn, row.interaction_id)
    try:
        services().twilio.calls(sid).update(
            url=offers.url("/routing/join", caller=row.interaction_id), method="POST"
        )
    except TwilioException:
        log.warning("interaction %s: the caller could not be connected", row.interaction_id)
        offers.complete(conn, row.interaction_id, "COMPLETECALLER")
        _say_text(response, language, routing_text(language, "caller_gone"))
        response.hangup()
        return response
    return _join_conference(row.interaction_id, record=True)


@bp.post("/routing/offer-status")
@twilio_webhook
def offer_status() -> VoiceResponse:
    """The offer call's progress: an end without an accept withdraws the offer (next handler);
    the end of an accepted call completes it (the handler hung up)."""
    offer_id = _arg_int("offer")
    status = form_value("CallStatus", 32)
    conn = db_connection()
    row = offers.offer_row(conn, offer_id) if offer_id is not None else None
    if row is None:
        return VoiceResponse()
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
    conn.commit()
    return VoiceResponse()


@bp.errorhandler(Exception)
def routing_webhook_failed(exc: Exception):
    """Never a 5xx to the carrier: log (ids only), roll back, answer with empty TwiML (a waiting
    caller hears the hold again; an offer call ends and counts as missed)."""
    if isinstance(exc, HTTPException):
        return exc
    log.exception("routing webhook %s failed", request.path)
    try:
        db_connection().rollback()
    except Exception:  # the database may be the thing that failed
        log.warning("rollback after a failed routing webhook also failed")
    return Response(str(VoiceResponse()), mimetype="text/xml")
