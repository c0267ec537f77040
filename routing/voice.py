"""What the routing webhooks share: the blueprint, TwiML helpers, the conference, and the error
answer. The views live in ``routing.views`` (the waiting caller), ``routing.offer_views`` (the
offer calls to handlers) and ``routing.callbacks`` (call-backs asked for while waiting).

All signed (``twilio_webhook``); ids only in every URL. Caller-side views find the call by its
CallSid; offer views by ``?offer=<id>``; call-back views by ``?caller=<interaction id>``.
"""

from __future__ import annotations

import logging
import re

from flask import Blueprint, Response, request
from twilio.twiml.voice_response import Dial, Gather, VoiceResponse
from werkzeug.exceptions import Forbidden, HTTPException

from db import db_session
from inquiries.service import CallLog, CallState
from routing import offers
from routing.speech import prompts, voice_language
from services import services
from webhooks import carrier_signed, form_value

log = logging.getLogger(__name__)
bp = Blueprint("routing", __name__)

_SID = re.compile(r"^CA[0-9a-fA-F]{32}$")


def conference_name(interaction_id: int) -> str:
    return f"case-{interaction_id}"


def calls() -> CallLog:
    return CallLog(db_session(), services().protector)


def caller() -> CallState | None:
    """The caller's call this webhook is about (by its CallSid)."""
    sid = form_value("CallSid", 64)
    return calls().find(sid) if _SID.match(sid) else None


def arg_int(name: str) -> int | None:
    value = request.args.get(name, "")
    return int(value) if value.isdigit() and len(value) < 12 else None


def say(target: VoiceResponse | Gather, language: str, key: str, **fields: object) -> None:
    """Say a prompt of the IVR catalogs in ``language``."""
    flow = prompts()
    language = flow.language_or_default(language)
    voice = flow.voices[language]
    text = flow.text(language, key)
    target.say(text.format(**fields) if fields else text, language=voice.say_language,
               voice=voice.voice)  # fmt: skip


def say_text(target: VoiceResponse | Gather, language: str, text: str) -> None:
    flow = prompts()
    voice = flow.voices[flow.language_or_default(language)]
    target.say(text, language=voice.say_language, voice=voice.voice)


def call_language(call: CallState | None) -> str:
    return voice_language(call.language if call else None)


def join_conference(interaction_id: int, *, record: bool) -> VoiceResponse:
    """Into the case's conference: the handler's leg (``record``: it records the conversation)
    or the caller's (its Dial action tells us when the caller's leg left)."""
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


@bp.errorhandler(Exception)
def routing_webhook_failed(exc: Exception):
    """Never a 5xx to the carrier: log (ids only), roll back, answer with empty TwiML (a waiting
    caller hears the hold again; an offer call ends and counts as missed). Only for a request
    whose signature was verified: anything else is a plain 403."""
    if isinstance(exc, HTTPException):
        return exc
    if not carrier_signed():
        log.warning("routing webhook %s failed before its signature was verified", request.path)
        return Forbidden()
    log.exception("routing webhook %s failed", request.path)
    try:
        db_session().rollback()
    except Exception:  # the database may be the thing that failed
        log.warning("rollback after a failed routing webhook also failed")
    return Response(str(VoiceResponse()), mimetype="text/xml")
