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
from werkzeug.exceptions import HTTPException

from extensions import db_session, enqueue, services
from inquiries.models import FINAL_CALL_STATUSES, Interaction, utcnow
from inquiries.service import (
    add_event,
    apply_call_status,
    find_or_create_interaction,
    record_ivr_step,
)
from ivr import fallback, journal
from ivr.flow import Flow, Node
from ivr.twiml import (
    PromptAudio,
    Speaker,
    concat,
    render_goodbye,
    render_menu,
    render_message_box,
)
from routing.handover import MESSAGE_BOX, hand_over
from webhooks import form_int, form_value, twilio_webhook

log = logging.getLogger(__name__)
bp = Blueprint("voice", __name__)

_SID = re.compile(r"^[A-Za-z]{2}[0-9a-fA-F]{32}$")
_RECORDING_SID = re.compile(r"^RE[0-9a-fA-F]{32}$")
RECORDING_STATUS_RANK = {"in-progress": 0, "completed": 1, "absent": 1, "failed": 1}
JOURNAL_REPLAY_JOB = "ivr-fallback-journal-replay"


def flow() -> Flow:
    return current_app.extensions["ivr_flow"]


def speaker() -> Speaker:
    settings = services().settings
    return Speaker(
        flow(),
        PromptAudio(settings.prompt_audio_path),
        settings.public_base_url,
        settings.message_max_seconds,
    )


def call_sid() -> str | None:
    sid = form_value("CallSid", 64)
    return sid if _SID.match(sid) else None


def recording_sid() -> str:
    """The posted RecordingSid if it is shaped like one, else ""."""
    sid = form_value("RecordingSid", 64)
    return sid if _RECORDING_SID.match(sid) else ""


def current_interaction(status: str = "in-progress") -> Interaction | None:
    """The interaction of the posting call (created on first sight), or None without a CallSid."""
    sid = call_sid()
    if sid is None:
        return None
    interaction, _created = find_or_create_interaction(
        db_session(),
        services().protector,
        call_sid=sid,
        from_number=form_value("From", 64),
        direction=form_value("Direction", 32) or "inbound",
        status=status,
    )
    return interaction


def language_of(interaction: Interaction | None) -> str:
    return flow().language_or_default(interaction.inquiry.language if interaction else None)


def enter_node(
    node: Node, interaction: Interaction | None, attempt: int = 1, before: tuple[str, ...] = ()
) -> VoiceResponse:
    """The TwiML for arriving at ``node`` (say nodes run straight on into their next node)."""
    language = language_of(interaction)
    spk = speaker()
    if node.type == "menu":
        return render_menu(spk, node, language, attempt, before)
    _mark_entered(node, interaction)
    if node.type == "say":
        said = VoiceResponse()
        spk.prompts(said, language, node.prompts)
        return concat(said, enter_node(flow().nodes[node.next or ""], interaction))
    if node.type == "goodbye":
        return render_goodbye(spk, language, node.prompts)
    if node.type == "handover" and interaction is not None:
        decision = hand_over(db_session(), interaction, reason=node.name)
        if decision.action == MESSAGE_BOX:
            intro = (*node.prompts, decision.prompt)
            return render_message_box(spk, language, intro, 1, decision.callback_requested)
    # message_box (or a hand-over without a call to attach it to)
    return render_message_box(spk, language, node.prompts or ("operators_busy",), 1, False)


def _mark_entered(node: Node, interaction: Interaction | None) -> None:
    if interaction is not None:
        record_ivr_step(
            db_session(), interaction, node.name, None,
            dedupe_key=f"ivr:{interaction.provider_sid}:{node.name}:enter",
        )  # fmt: skip


@bp.post("/voice/incoming")
@twilio_webhook
def incoming() -> VoiceResponse:
    session = db_session()
    interaction = current_interaction()
    if interaction is not None:
        add_event(
            session, interaction, "IVR_ENTER", {"direction": interaction.direction},
            dedupe_key=f"enter:{interaction.provider_sid}",
        )  # fmt: skip
    response = enter_node(flow().nodes[flow().start], interaction)
    session.commit()
    _replay_journal_if_needed()
    return response


@bp.post("/voice/ivr/<node_name>")
@twilio_webhook
def menu_answer(node_name: str) -> VoiceResponse:
    """A <Gather> action (or the <Redirect> after it, when nothing was pressed or said)."""
    session = db_session()
    the_flow = flow()
    node = the_flow.node(node_name)
    interaction = current_interaction()
    if node is None or node.type != "menu":
        node = the_flow.nodes[the_flow.start]
    attempt = min(max(_int_arg("attempt", 1), 1), the_flow.max_attempts)
    language = language_of(interaction)
    digits = form_value("Digits", 16)
    speech = form_value("SpeechResult", 512)
    choice = node.choice_for_key(digits) if digits else None
    if choice is None and speech and not digits:
        choice = the_flow.match_speech(node, node.speech_language or language, speech)
    sid = interaction.provider_sid if interaction else ""
    key = f"ivr:{sid}:{node.name}:{attempt}"

    if choice is not None:
        answer = digits or "speech"
        if interaction is not None:
            record_ivr_step(
                session, interaction, node.name, answer, dedupe_key=key, choice=choice.key
            )
            _apply_choice(interaction, choice.set)
        response = enter_node(the_flow.nodes[choice.next], interaction)
    else:
        problem = "invalid" if (digits or speech) else "no_input"
        if interaction is not None:
            record_ivr_step(
                session, interaction, node.name, digits or None,
                dedupe_key=key, problem=problem, attempt=attempt,
            )  # fmt: skip
        if attempt >= the_flow.max_attempts:
            if interaction is not None:
                add_event(
                    session, interaction, "IVR_FALLTHROUGH",
                    {"node": node.name, "to": node.on_fail}, dedupe_key=f"{key}:fail",
                )  # fmt: skip
            response = enter_node(the_flow.nodes[node.on_fail or the_flow.start], interaction)
        else:
            response = enter_node(node, interaction, attempt + 1, before=(problem,))
    session.commit()
    return response


def _apply_choice(interaction: Interaction, settings: dict[str, str]) -> None:
    inquiry = interaction.inquiry
    if "language" in settings:
        inquiry.language = settings["language"]
    if "kind" in settings:
        inquiry.kind = settings["kind"]
        inquiry.priority = flow().kind_priority[settings["kind"]]
    inquiry.updated_at = utcnow()


@bp.post("/voice/message/recorded")
@twilio_webhook
def message_recorded() -> VoiceResponse:
    """<Record> action: a message was left (Twilio sends none for an empty recording)."""
    session = db_session()
    interaction = current_interaction()
    if interaction is not None:
        _store_recording(interaction, status=None)
        add_event(
            session, interaction, "MESSAGE_LEFT",
            {"recording_sid": recording_sid(),
             "duration_s": form_int("RecordingDuration"), "ended_by": form_value("Digits", 16)},
            dedupe_key=f"message:{interaction.provider_sid}:{recording_sid()}",
        )  # fmt: skip
    response = render_goodbye(speaker(), language_of(interaction), ("message_thanks", "goodbye"))
    session.commit()
    return response


@bp.post("/voice/message/retry")
@twilio_webhook
def message_retry() -> VoiceResponse:
    """After a <Record> that heard nothing: offer the message box again, a few times."""
    session = db_session()
    interaction = current_interaction()
    attempt = min(max(_int_arg("attempt", 1), 1), flow().max_attempts)
    callback = _int_arg("callback", 0) == 1
    if interaction is not None:
        add_event(
            session, interaction, "MESSAGE_EMPTY", {"attempt": attempt},
            dedupe_key=f"message-empty:{interaction.provider_sid}:{attempt}",
        )  # fmt: skip
    language = language_of(interaction)
    if attempt >= flow().max_attempts:
        response = render_goodbye(speaker(), language, ("goodbye",))
    else:
        response = render_message_box(
            speaker(), language, ("message_retry",), attempt + 1, callback
        )
    session.commit()
    return response


@bp.post("/voice/recording")
@twilio_webhook
def recording_status() -> VoiceResponse:
    """Recording status callback: keep the recording's metadata on the interaction."""
    session = db_session()
    interaction = current_interaction(status="in-progress")
    status = form_value("RecordingStatus", 16)
    if interaction is not None and status in RECORDING_STATUS_RANK and recording_sid():
        _store_recording(interaction, status=status)
        add_event(
            session, interaction, "RECORDING",
            {"recording_sid": recording_sid(), "status": status,
             "duration_s": form_int("RecordingDuration"),
             "error_code": form_value("ErrorCode", 16)},
            dedupe_key=f"recording:{recording_sid()}:{status}",
        )  # fmt: skip
    session.commit()
    return VoiceResponse()


def _store_recording(interaction: Interaction, status: str | None) -> None:
    sid = recording_sid()
    if not sid:
        return
    if interaction.recording_sid not in (None, sid):
        return  # one message per call; a second one is kept only in the event log
    interaction.recording_sid = sid
    url = form_value("RecordingUrl", 512)
    if url.startswith(("https://", "http://")):
        interaction.recording_url = url
    duration = form_int("RecordingDuration")
    if duration is not None and duration >= 0:
        interaction.recording_duration_s = duration
    current = RECORDING_STATUS_RANK.get(interaction.recording_status or "", -1)
    if status is not None and RECORDING_STATUS_RANK[status] > current:
        interaction.recording_status = status
    elif status is None and interaction.recording_status is None:
        interaction.recording_status = "completed"


@bp.post("/voice/status")
@twilio_webhook
def call_status() -> VoiceResponse:
    """Call status callback: moves a call forward only; duplicates and late ones are no-ops."""
    session = db_session()
    status = form_value("CallStatus", 32)
    interaction = current_interaction(status="ringing")
    if interaction is not None:
        duration = form_int("CallDuration")
        if apply_call_status(session, interaction, status, duration_s=duration):
            add_event(
                session, interaction, "CALL_STATUS",
                {"status": status,
                 "duration_s": duration if status in FINAL_CALL_STATUSES else None},
                dedupe_key=f"status:{interaction.provider_sid}:{status}",
            )  # fmt: skip
    session.commit()
    return VoiceResponse()


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
    """Never a 5xx to the carrier: journal what came in and give the caller the message box."""
    if isinstance(exc, HTTPException):
        return exc
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
