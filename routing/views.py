"""Routing webhooks of the waiting caller: the Enqueue waitUrl (position, estimated wait, the
keys: 1 a message, 2 a call-back), the Enqueue action, the conference and its recording.

The offer calls to handlers are in ``routing.offer_views``, call-backs in ``routing.callbacks``;
``routing.voice`` holds the blueprint and what they share.
"""

from __future__ import annotations

import logging
import time

from sqlalchemy import update
from twilio.twiml.voice_response import Gather, VoiceResponse

from db import db_session, reading_only
from inquiries.models import utcnow
from inquiries.service import CallState
from recordings import service as recordings
from recordings.models import PENDING
from routing import callbacks, offer_views, offers  # noqa: F401 - their routes join the blueprint
from routing.estimate import announcement, estimated_wait_s
from routing.handover import message_box_prompt
from routing.models import QueueEntry
from routing.voice import (
    arg_int,
    bp,
    call_language,
    caller,
    calls,
    join_conference,
    say,
)
from services import services
from webhooks import form_int, form_value, twilio_webhook

log = logging.getLogger(__name__)

_entry = QueueEntry.__table__
#: Seconds of hold between two position announcements (the whole cycle is about 30 s).
HOLD_PAUSE_S = 20


@bp.post("/routing/wait")
@twilio_webhook
def wait() -> VoiceResponse:
    """The Enqueue waitUrl: the place in the queue, the estimated wait, "press 1 for a
    message" (and "2 to be called back" if the number can be), hold audio."""
    reading_only(db_session())  # the hold message writes nothing: no write lock on SQLite
    call = caller()
    language = call_language(call)
    response = VoiceResponse()
    gather = Gather(
        input="dtmf", num_digits=1, timeout=1, action=offers.url("/routing/wait-key"),
        method="POST",
    )  # fmt: skip
    position = None
    can_call_back = False
    if call is not None:
        try:
            position = offers.core().position(str(call.interaction_id))
        except Exception:  # Redis down: the caller still hears the hold
            log.warning("interaction %s: no queue position", call.interaction_id)
        if _waited_too_long(call, position):
            response.leave()  # the Enqueue action then records the message and the callback
            return response
        can_call_back = callbacks.can_call_back(db_session(), call.interaction_id)
    if position:
        say(gather, language, "queue_position", position=position)
        estimate = estimated_wait_s(db_session(), position, language, call.kind or "other")
        spoken = announcement(estimate)
        if spoken is not None:
            say(gather, language, spoken[0], **spoken[1])
    say(gather, language, "queue_leave_option")
    if can_call_back:
        say(gather, language, "queue_callback_option")
    hold = services().settings.routing_hold_music_url
    if hold:
        gather.play(hold)
    gather.pause(length=HOLD_PAUSE_S)
    response.append(gather)
    return response


def _waited_too_long(call: CallState, position: int | None) -> bool:
    """Past ROUTING_MAX_WAIT_S: out of the queue (EXITWITHTIMEOUT) before the ``<Leave>``."""
    max_wait = services().settings.routing_max_wait_s
    entry = offers.entry_row(db_session(), call.interaction_id)
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
    """A key pressed while waiting: 1 leaves the queue (the Enqueue action then records), 2
    asks for a call-back keeping the place (the Enqueue action then says goodbye)."""
    response = VoiceResponse()
    digits = form_value("Digits", 8)
    if digits == "1":
        response.leave()
    elif digits == "2":
        call = caller()
        conn = db_session()
        if call is not None and callbacks.can_call_back(conn, call.interaction_id):
            callbacks.mark_requested(conn, call.interaction_id)
            conn.commit()
            response.leave()
    return response  # anything else: the wait music goes on


@bp.post("/routing/queue-action")
@twilio_webhook
def queue_action() -> VoiceResponse:
    """The Enqueue action: the caller left with 1 (→ message box) or 2 (a call-back: the place
    is kept, goodbye), hung up (ABANDON), or the queue was full; a caller already connected is
    (re)sent to the conference.

    ``redirected``: the caller was taken out of the queue over REST, which the hotline does
    only after an accept (``calls(sid).update(url=…/routing/join)``, the entry committed
    ``connected`` first). The caller is on the way to the handler: not a leave, not an abandon,
    no message box, nothing recorded. The carrier runs the redirect's URL and ignores this
    answer; it may come before or after ``/routing/join`` is fetched. Should a carrier use the
    answer, it is the same conference join as ``/routing/join``."""
    call = caller()
    result = form_value("QueueResult", 32)
    response = VoiceResponse()
    if call is None:
        return response
    conn = db_session()
    entry = offers.entry_row(conn, call.interaction_id)
    if entry is not None and entry.state == "connected":
        return join_conference(call.interaction_id, record=False)
    if result == "redirected":  # not connected (a call already over, say): nothing to do
        log.info(
            "interaction %s: redirected out of the queue while %s",
            call.interaction_id, entry.state if entry is not None else "not queued",
        )  # fmt: skip
        return response
    language = call_language(call)
    if (
        entry is not None
        and entry.callback_requested_at is not None
        and result in ("leave", "hangup")
    ):  # still in the core, in its place; a handler will take it as a call-back
        calls().request_callback(call, "queue-callback")
        conn.commit()
        if result == "leave":
            say(response, language, "callback_confirmed")
            response.hangup()
        return response
    if result in ("leave", "hangup", "queue-full", "error", "system-error"):
        outcome = {"leave": ("left", "EXITWITHKEY"), "hangup": ("abandoned", "ABANDON")}.get(
            result, ("overflow", "OVERFLOW")
        )
        extra = None
        if result == "hangup":  # ABANDON says where they were
            try:
                extra = {"position": offers.core().position(str(call.interaction_id))}
            except Exception:  # Redis down: the abandon is logged all the same
                log.warning("interaction %s: no queue position", call.interaction_id)
        _leave_queue(call, entry, *outcome, extra)
        if result != "hangup":
            requested = calls().request_callback(call, "queue")
            conn.commit()
            _message_box(response, language, message_box_prompt(call), requested)
    return response


def _leave_queue(
    call: CallState, entry, state: str, event: str, extra: dict[str, object] | None = None
) -> None:
    conn = db_session()
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


def _message_box(response: VoiceResponse, language: str, prompt: str, callback: bool) -> None:
    settings = services().settings
    say(response, language, prompt)
    response.record(
        action=offers.url("/voice/message/recorded"), method="POST",
        max_length=settings.message_max_seconds, timeout=8, play_beep=True,
        trim="trim-silence", recording_status_callback=offers.url("/voice/recording"),
        recording_status_callback_method="POST",
        recording_status_callback_event="completed absent",
    )  # fmt: skip
    response.redirect(
        offers.url("/voice/message/retry", attempt=1, callback=int(callback)), method="POST"
    )


@bp.post("/routing/join")
@twilio_webhook
def join() -> VoiceResponse:
    """The caller, redirected out of the queue after an accept: into the case's conference."""
    iid = arg_int("caller")
    if iid is None:
        return VoiceResponse()
    entry = offers.entry_row(db_session(), iid)
    if entry is not None and entry.state == "done" and entry.callback_requested_at is None:
        return _handler_lost_box()  # the handler was gone before either joined: never alone
    return join_conference(iid, record=False)


@bp.post("/routing/handler-lost")
@twilio_webhook
def handler_lost() -> VoiceResponse:
    """The handler who took the call left before reaching the conference (the end is recorded
    COMPLETEAGENT): the caller, who would otherwise wait alone with the music, gets the message
    box with a call-back request, as when no handler can take the call."""
    return _handler_lost_box()


def _handler_lost_box() -> VoiceResponse:
    call = caller()
    response = VoiceResponse()
    if call is None:
        response.hangup()
        return response
    requested = calls().request_callback(call, "handler-lost")
    db_session().commit()
    _message_box(response, call_language(call), message_box_prompt(call), requested)
    return response


@bp.post("/routing/caller-done")
@twilio_webhook
def caller_done() -> VoiceResponse:
    """The caller's conference leg ended: the caller hung up, or the handler ended it."""
    iid = arg_int("caller")
    response = VoiceResponse()
    if iid is not None:
        hung_up = form_value("CallStatus", 32) == "completed"
        offers.complete(db_session(), iid, "COMPLETECALLER" if hung_up else "COMPLETEAGENT")
    response.hangup()
    return response


@bp.post("/routing/conference")
@twilio_webhook
def conference_status() -> VoiceResponse:
    """The case's conference: the first participant to leave ends the call (who hung up)."""
    iid = arg_int("caller")
    if iid is not None and form_value("StatusCallbackEvent", 32) == "participant-leave":
        conn = db_session()
        left = form_value("CallSid", 64)
        by_caller = form_value("ParticipantLabel", 32) == "caller" or (
            left == offers.caller_sid(conn, iid)
        )
        entry = offers.entry_row(conn, iid)
        if entry is not None and entry.state == "calling_back" and not by_caller:
            # the handler hung up while the caller was being called back: the attempt failed
            callbacks.attempt_failed(conn, iid, entry.callback_attempts, "handler-left")
        else:
            offers.complete(conn, iid, "COMPLETECALLER" if by_caller else "COMPLETEAGENT")
    return VoiceResponse()


@bp.post("/routing/recording")
@twilio_webhook
def recording() -> VoiceResponse:
    """The conference recording's status: kept as an event on the caller's call; once
    ``completed``, its Recording row (a conversation) is committed and its job enqueued."""
    iid = arg_int("caller")
    sid = form_value("RecordingSid", 64)
    to_process = None
    if iid is not None and sid.startswith("RE"):
        conn = db_session()
        status = form_value("RecordingStatus", 16)
        offers.add_event(
            conn, iid, "CALL_RECORDING",
            {"recording_sid": sid, "status": status,
             "duration_s": form_int("RecordingDuration")},
            f"call-recording:{sid}:{status}",
        )  # fmt: skip
        if (
            status == "completed"
            and recordings.RECORDING_SID.match(sid)
            and offers.caller_sid(conn, iid) is not None
        ):
            registered = recordings.register(
                conn, recording_sid=sid, kind="conversation", interaction_id=iid,
                carrier_duration_s=form_int("RecordingDuration"),
            )  # fmt: skip
            to_process = registered.id if registered.state == PENDING else None
        conn.commit()
    if to_process is not None:  # committed first, then the id is enqueued
        recordings.enqueue_processing(to_process)
    return VoiceResponse()
