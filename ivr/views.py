"""Voice webhooks: the IVR menus, the message box, call and recording status, the fallback URL.

Every view is signed (``twilio_webhook``), idempotent under carrier retries (each write carries a
dedupe key derived from the CallSid and the step), and answers with TwiML. An unexpected error
never reaches the caller as a 5xx: the request is journalled and the caller gets the message box.
"""

from __future__ import annotations

import logging
import re

from flask import Blueprint, abort, current_app, request, send_from_directory
from twilio.twiml.voice_response import VoiceResponse
from werkzeug.exceptions import Forbidden, HTTPException

from db import db_session
from inquiries.models import FINAL_CALL_STATUSES
from inquiries.service import RECORDING_STATUS_RANK, CallLog, CallState
from ivr import fallback, journal, screening
from ivr.flow import Flow, Node
from ivr.twiml import (
    PromptAudio,
    Speaker,
    concat,
    render_goodbye,
    render_menu,
    render_message_box,
    render_queue,
)
from jobs import enqueue
from recordings import carrier_calls
from recordings import service as recordings
from recordings.models import PENDING
from routing.handover import MESSAGE_BOX, QUEUE, hand_over
from services import services
from webhooks import EMPTY_TWIML, carrier_signed, form_int, form_value, twilio_webhook

log = logging.getLogger(__name__)
bp = Blueprint("voice", __name__)

_SID = re.compile(r"^[A-Za-z]{2}[0-9a-fA-F]{32}$")
_RECORDING_SID = re.compile(r"^RE[0-9a-fA-F]{32}$")
_ONE_KEY = re.compile(r"^[0-9*#]$")
JOURNAL_REPLAY_JOB = "ivr-fallback-journal-replay"
#: The final statuses of a call the carrier never answered (``<Reject>`` as the first verb).
NEVER_ANSWERED = ("busy", "no-answer")


def flow() -> Flow:
    return current_app.extensions["ivr_flow"]  # type: ignore[no-any-return]


def speaker() -> Speaker:
    extensions = current_app.extensions
    settings = services().settings
    return Speaker(
        extensions["ivr_flow"],
        PromptAudio(settings.prompt_audio_path),
        settings.public_base_url,
        settings.message_max_seconds,
        shared=extensions.setdefault("ivr_shared_twiml", {}),
    )


def call_log() -> CallLog:
    return CallLog(db_session(), services().protector)


def commit() -> None:
    db_session().commit()


def call_sid() -> str | None:
    sid = form_value("CallSid", 64)
    return sid if _SID.match(sid) else None


def recording_sid() -> str:
    """The posted RecordingSid if it is shaped like one, else ""."""
    sid = form_value("RecordingSid", 64)
    return sid if _RECORDING_SID.match(sid) else ""


def current_call(calls: CallLog, status: str = "in-progress") -> CallState | None:
    """The posting call's state (created on first sight), or None without a valid CallSid."""
    sid = call_sid()
    if sid is None:
        return None
    state, _created = calls.find_or_open(
        sid,
        form_value("From", 64),
        direction=form_value("Direction", 32) or "inbound",
        status=status,
    )
    return state


def language_of(call: CallState | None) -> str:
    return flow().language_or_default(call.language if call else None)


def enter_node(
    calls: CallLog,
    node: Node,
    call: CallState | None,
    attempt: int = 1,
    before: tuple[str, ...] = (),
) -> VoiceResponse:
    """Arrive at ``node``: its writes, committed, then its TwiML (say nodes run straight on into
    their next node).

    The commit comes before the TwiML is built: on SQLite the write lock is held from a
    webhook's first write to its commit, and the other workers wait for it; building the answer
    inside that window made them wait for that too."""
    language = language_of(call)
    spk = speaker()
    if node.type == "menu":
        commit()
        return render_menu(spk, node, language, attempt, before)
    if call is not None:
        calls.record_ivr_step(
            call, node.name, None, dedupe_key=f"ivr:{call.provider_sid}:{node.name}:enter"
        )
    if node.type == "say":
        rest = enter_node(calls, flow().nodes[node.next or ""], call)  # committed there
        said = VoiceResponse()
        spk.prompts(said, language, node.prompts)
        return concat(said, rest)
    decision = None
    if node.type == "handover" and call is not None:
        decision = hand_over(calls, call, reason=node.name)
    commit()
    if node.type == "goodbye":
        return render_goodbye(spk, language, node.prompts)
    if decision is not None and decision.action == MESSAGE_BOX:
        intro = (*node.prompts, decision.prompt)
        return render_message_box(spk, language, intro, 1, decision.callback_requested)
    if decision is not None and decision.action == QUEUE:
        intro = (*node.prompts, decision.prompt)
        return render_queue(
            spk, language, intro, decision.queue_name, decision.wait_url, decision.action_url
        )
    # message_box (or a hand-over without a call to attach it to)
    return render_message_box(spk, language, node.prompts or ("operators_busy",), 1, False)


@bp.post("/voice/incoming")
@twilio_webhook
def incoming() -> VoiceResponse:
    """A call comes in: screened first (the blocklist, the rate limits: ``ivr.screening``); a
    refused call gets ``<Reject>`` alone and nothing is written. Else its case and call, and
    the first menu."""
    refused = screening.screen_incoming(call_sid())
    if refused is not None:
        return refused
    calls = call_log()
    call = current_call(calls)
    if call is not None:
        calls.add_event(
            call, "IVR_ENTER", {"direction": call.direction},
            dedupe_key=f"enter:{call.provider_sid}",
        )  # fmt: skip
    response = enter_node(calls, flow().nodes[flow().start], call)  # committed there
    _replay_journal_if_needed()
    return response


@bp.post("/voice/ivr/<node_name>")
@twilio_webhook
def menu_answer(node_name: str) -> VoiceResponse:
    """A <Gather> action (or the <Redirect> after it, when nothing was pressed or said)."""
    calls = call_log()
    the_flow = flow()
    node = the_flow.node(node_name)
    call = current_call(calls)
    if node is None or node.type != "menu":
        node = the_flow.nodes[the_flow.start]
    attempt = min(max(_int_arg("attempt", 1), 1), the_flow.max_attempts)
    language = language_of(call)
    digits = form_value("Digits", 16)
    speech = form_value("SpeechResult", 512)
    choice = node.choice_for_key(digits) if digits else None
    if choice is None and speech and not digits:
        choice = the_flow.match_speech(node, node.speech_language or language, speech)
    key = f"ivr:{call.provider_sid if call else ''}:{node.name}:{attempt}"

    # What is kept of an answer: the key pressed, or "speech" and the choice it matched. The
    # words themselves (SpeechResult, its Confidence) are never stored, nor more keys than the
    # one a menu asks for (a number typed on the keypad is not kept either).
    pressed = digits if _ONE_KEY.match(digits) else ("keys" if digits else None)
    if choice is not None:
        if call is not None:
            answer = pressed or "speech"
            calls.record_ivr_step(call, node.name, answer, dedupe_key=key, choice=choice.key)
            _apply_choice(calls, call, choice.set)
        response = enter_node(calls, the_flow.nodes[choice.next], call)
    else:
        problem = "invalid" if (digits or speech) else "no_input"
        if call is not None:
            calls.record_ivr_step(
                call, node.name, pressed, dedupe_key=key, problem=problem, attempt=attempt
            )
        if attempt >= the_flow.max_attempts:
            if call is not None:
                calls.add_event(
                    call, "IVR_FALLTHROUGH", {"node": node.name, "to": node.on_fail},
                    dedupe_key=f"{key}:fail",
                )  # fmt: skip
            response = enter_node(calls, the_flow.nodes[node.on_fail or the_flow.start], call)
        else:
            response = enter_node(calls, node, call, attempt + 1, before=(problem,))
    return response  # enter_node committed the writes


def _apply_choice(calls: CallLog, call: CallState, chosen: dict[str, str]) -> None:
    if "language" in chosen:
        calls.set_language(call, chosen["language"])
    if "kind" in chosen:
        calls.set_kind(call, chosen["kind"], flow().kind_priority[chosen["kind"]])


@bp.post("/voice/message/recorded")
@twilio_webhook
def message_recorded() -> VoiceResponse:
    """<Record> action: a message was left (Twilio sends none for an empty recording)."""
    calls = call_log()
    call = current_call(calls)
    rec_sid = recording_sid()
    if call is not None:
        _store_recording(calls, call, status=None)
        if rec_sid:  # the row now; its job once the status callback says the media is ready
            _register_message(call, rec_sid)
        calls.add_event(
            call, "MESSAGE_LEFT",
            {"recording_sid": rec_sid, "duration_s": form_int("RecordingDuration"),
             "ended_by": form_value("Digits", 16)},
            dedupe_key=f"message:{call.provider_sid}:{rec_sid}",
        )  # fmt: skip
    commit()  # before the TwiML is built (see enter_node)
    return render_goodbye(speaker(), language_of(call), ("message_thanks", "goodbye"))


@bp.post("/voice/message/retry")
@twilio_webhook
def message_retry() -> VoiceResponse:
    """After a <Record> that heard nothing: offer the message box again, a few times."""
    calls = call_log()
    call = current_call(calls)
    attempt = min(max(_int_arg("attempt", 1), 1), flow().max_attempts)
    callback = _int_arg("callback", 0) == 1
    if call is not None:
        calls.add_event(
            call, "MESSAGE_EMPTY", {"attempt": attempt},
            dedupe_key=f"message-empty:{call.provider_sid}:{attempt}",
        )  # fmt: skip
    commit()  # before the TwiML is built (see enter_node)
    language = language_of(call)
    if attempt >= flow().max_attempts:
        return render_goodbye(speaker(), language, ("goodbye",))
    return render_message_box(speaker(), language, ("message_retry",), attempt + 1, callback)


@bp.post("/voice/recording")
@twilio_webhook
def recording_status() -> str:
    """Recording status callback: keep the recording's metadata on the interaction; once
    ``completed``, the recording's row is committed and its job (fetch, encrypt, store,
    delete at the carrier) enqueued."""
    calls = call_log()
    call = current_call(calls)
    status = form_value("RecordingStatus", 16)
    rec_sid = recording_sid()
    to_process = None
    if call is not None and status in RECORDING_STATUS_RANK and rec_sid:
        # The interaction row first, then the recording's: the <Record> action (which may run
        # at the same moment) takes them in this order too, so PostgreSQL cannot deadlock.
        _store_recording(calls, call, status=status)
        if status == "completed":
            to_process = _register_message(call, rec_sid)
        calls.add_event(
            call, "RECORDING",
            {"recording_sid": rec_sid, "status": status,
             "duration_s": form_int("RecordingDuration"),
             "error_code": form_value("ErrorCode", 16)},
            dedupe_key=f"recording:{rec_sid}:{status}",
        )  # fmt: skip
    commit()
    if to_process is not None:  # committed first, then the id is enqueued
        recordings.enqueue_processing(to_process)
    return EMPTY_TWIML


def _register_message(call: CallState, rec_sid: str) -> int | None:
    """The message's Recording row (once per RecordingSid); its id while still to process."""
    registered = recordings.register(
        db_session(), recording_sid=rec_sid, kind="message",
        interaction_id=call.interaction_id, carrier_duration_s=form_int("RecordingDuration"),
    )  # fmt: skip
    return registered.id if registered.state == PENDING else None


def _store_recording(calls: CallLog, call: CallState, status: str | None) -> None:
    url = form_value("RecordingUrl", 512)
    calls.store_recording(
        call,
        recording_sid(),
        url=url if url.startswith(("https://", "http://")) else None,
        duration_s=form_int("RecordingDuration"),
        status=status,
    )


@bp.post("/voice/status")
@twilio_webhook
def call_status() -> str:
    """Call status callback: moves a call forward only; duplicates and late ones are no-ops.

    An inbound call the carrier never answered (``busy``, ``no-answer``: what ``<Reject>``
    gives) and that we never saw is one that screening refused: nothing is written for it."""
    calls = call_log()
    status = form_value("CallStatus", 32)
    sid = call_sid()
    inbound = form_value("Direction", 32) in ("", "inbound")
    if status in NEVER_ANSWERED and inbound and sid is not None and calls.find(sid) is None:
        return EMPTY_TWIML
    call = current_call(calls, status="ringing")
    ended = None
    if call is not None:
        duration = form_int("CallDuration")
        if calls.apply_call_status(call, status, duration_s=duration):
            calls.add_event(
                call, "CALL_STATUS",
                {"status": status,
                 "duration_s": duration if status in FINAL_CALL_STATUSES else None},
                dedupe_key=f"status:{call.provider_sid}:{status}",
            )  # fmt: skip
        if status in FINAL_CALL_STATUSES:  # its record at the carrier goes once it may
            leg = "inbound" if call.direction == "inbound" else "other"
            ended = carrier_calls.note_call(
                db_session(), call.provider_sid, leg, call.interaction_id, ended=True
            )
    commit()
    carrier_calls.enqueue_deletion(ended)
    return EMPTY_TWIML


@bp.post("/voice/fallback")
@twilio_webhook
def voice_fallback() -> VoiceResponse:
    return fallback.handle_fallback()


@bp.get("/voice/prompts/<language>/<key>.wav")
def prompt_audio(language: str, key: str):
    """Recorded prompts, fetched by the carrier for <Play>. Public: they hold no personal data."""
    catalog = flow().catalogs.get(language)
    if catalog is None or key not in catalog.prompts:
        abort(404)
    folder = services().settings.prompt_audio_path / language
    return send_from_directory(folder, f"{key}.wav", mimetype="audio/wav", max_age=300)


@bp.errorhandler(Exception)
def webhook_failed(exc: Exception):
    """Never a 5xx to the carrier: journal what came in and give the caller the message box.
    Only for a request whose signature was verified: anything else is a plain 403."""
    if isinstance(exc, HTTPException):
        return exc
    if not carrier_signed():
        log.warning("voice webhook %s failed before its signature was verified", request.path)
        return Forbidden()
    log.exception("voice webhook %s failed; answering with the fallback message box", request.path)
    try:
        db_session().rollback()
    except Exception:  # the database may be the thing that failed
        log.warning("rollback after a failed webhook also failed")
    fallback.journal_request("error")
    settings = services().settings
    twiml = fallback.message_box_twiml(settings.public_base_url, settings.message_max_seconds)
    return current_app.response_class(str(twiml), mimetype="text/xml")


def _int_arg(name: str, default: int) -> int:
    try:
        return int(request.args.get(name, default))
    except (TypeError, ValueError):
        return default


def _replay_journal_if_needed() -> None:
    """The database is healthy now: if the fallback journalled anything, replay it (a job)."""
    if not journal.has_entries(services().settings.journal_path):
        return
    try:
        enqueue("ivr.jobs.replay_fallback_journal", job_id=JOURNAL_REPLAY_JOB)
    except Exception:  # Redis down: the next healthy request tries again
        log.warning("could not enqueue the fallback journal replay")
