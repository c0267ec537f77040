"""The messaging webhooks: Twilio's SMS and WhatsApp (``/messaging/incoming``, signed) and
their status callbacks (``/messaging/status``, signed). Telegram's is in ``telegram_views``.

Every update may arrive twice or out of order: a message is kept once per MessageSid, a status
only moves a message forward. The menu's replies go out through the REST API from a job
(``messaging.jobs.send_message``), so each answer here is an empty ``<Response/>``.
"""

from __future__ import annotations

import logging
import re

from flask import Blueprint, Response, current_app, request
from werkzeug.exceptions import Forbidden, HTTPException

from dataprotection import caller_address
from db import db_session
from messaging import media, service
from messaging.service import Inbound, Media
from services import services
from webhooks import EMPTY_TWIML, carrier_signed, form_int, form_value, twilio_webhook

log = logging.getLogger(__name__)
bp = Blueprint("messaging", __name__)

_MESSAGE_SID = re.compile(r"^(SM|MM)[0-9a-fA-F]{32}$")
_ERROR_CODE = re.compile(r"^[0-9]{1,8}$")
MAX_BODY_CHARS = 1600  # Twilio's limit of one inbound Body
MAX_MEDIA = 10
WHATSAPP_PREFIX = "whatsapp:"
#: A reply's record is deleted at Twilio once it reaches one of these (a later WhatsApp
#: "read" then finds no record there, and changes our row only).
DELETE_AFTER = ("delivered", "undelivered", "failed")


def message_sid() -> str | None:
    sid = form_value("MessageSid", 64)
    return sid if _MESSAGE_SID.match(sid) else None


def twilio_key(sid: str) -> str:
    """A Twilio message's carrier key: its SID (unique at Twilio over SMS and WhatsApp)."""
    return f"twilio:{sid}"


def sender(raw_from: str) -> tuple[str, str | None, str | None]:
    """(channel, identity, reply address) of a Twilio ``From``: WhatsApp's ``whatsapp:+…`` is
    the person's number (the same keyed hash as their calls), an SMS the number itself; an
    SMS from a sender id that is not a number has neither (no case joins, no reply)."""
    if raw_from.startswith(WHATSAPP_PREFIX):
        number = caller_address(raw_from[len(WHATSAPP_PREFIX) :])
        if number is None or not number.startswith("+"):
            return "whatsapp", None, None
        return "whatsapp", number, WHATSAPP_PREFIX + number
    number = caller_address(raw_from)
    if number is None or not number.startswith("+"):
        return "sms", None, None
    return "sms", number, number


def enabled(channel: str) -> bool:
    return channel in services().settings.messaging_channels


@bp.post("/messaging/incoming")
@twilio_webhook
def incoming() -> str:
    """A text (SMS or WhatsApp) comes in: kept in the person's thread, the menu answered."""
    sid = message_sid()
    channel, identity, address = sender(form_value("From", 64))
    if sid is None or not enabled(channel):
        return EMPTY_TWIML
    media = []
    for index in range(min(form_int("NumMedia", 0) or 0, MAX_MEDIA)):
        url = form_value(f"MediaUrl{index}", 512)
        if url.startswith(("https://", "http://")):
            kind = form_value(f"MediaContentType{index}", 128) or "application/octet-stream"
            media.append(Media(kind, url))
    # As written (line breaks too): it is sealed, never a column's plain text or a log's.
    text = request.form.get("Body", "")[: MAX_BODY_CHARS * 4]
    latitude, longitude = form_value("Latitude", 32), form_value("Longitude", 32)
    if latitude and longitude:
        text = (text + "\n" if text else "") + f"location: {latitude}, {longitude}"
    service.receive(
        Inbound(
            channel=channel,
            carrier_key=twilio_key(sid),
            identity=identity,
            address=address,
            text=text,
            name=form_value("ProfileName", 128) or None,
            media=media,
        )
    )
    return EMPTY_TWIML


@bp.post("/messaging/status")
@twilio_webhook
def status() -> str:
    """A reply's status callback: forward only; a repeat or a late one changes nothing. One
    that comes before the send job has noted the SID (the carrier was quicker than our commit)
    is kept as an event, which the job applies once it has."""
    sid = message_sid()
    new_status = form_value("MessageStatus", 32) or form_value("SmsStatus", 32)
    if sid is None or not new_status:
        return EMPTY_TWIML
    code = form_value("ErrorCode", 16)
    code = code if _ERROR_CODE.match(code) else ""
    threads = service.conversations()
    changed = threads.apply_status(twilio_key(sid), new_status, code)
    threads.calls.add_event(
        None, "MESSAGE_STATUS", {"sid": sid, "status": new_status, "error_code": code or None,
                                 "applied": changed},
        dedupe_key=f"message-status:{sid}:{new_status}",
    )  # fmt: skip
    db_session().commit()
    if changed and new_status in DELETE_AFTER:  # its record at Twilio may go now
        media.enqueue_deletion(twilio_key(sid))
    return EMPTY_TWIML


@bp.errorhandler(Exception)
def messaging_failed(exc: Exception):
    """A signed request that failed: logged (redacted), rolled back, 500 — Telegram delivers
    the update again; Twilio tries the fallback URL, if one is set. Anything unsigned: 403."""
    if isinstance(exc, HTTPException):
        return exc
    if not carrier_signed():
        return Forbidden()
    log.exception("messaging webhook %s failed", request.path)
    try:
        db_session().rollback()
    except Exception:
        log.warning("rollback after a failed messaging webhook also failed")
    return current_app.response_class("", status=500, mimetype="text/plain")


def empty() -> Response:
    return Response("", status=200, mimetype="text/plain")
