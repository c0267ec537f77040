"""Sending a message through its carrier: Twilio's Messages API for SMS and WhatsApp (with our
status callback), the Bot API's ``sendMessage`` for Telegram (with the menu's buttons).

``send(message_id)`` runs in a job: it re-reads the row and does nothing unless it is still
``pending`` without a carrier key, commits before any call to the carrier (no transaction open
during a REST call), and notes the carrier's id with a conditional UPDATE (a second run changes
nothing). A refusal that retrying cannot mend (an invalid number, a blocked bot, WhatsApp's
24-hour window) marks the message ``failed`` with the carrier's code; anything else raises, so
RQ retries. Telegram's 429 waits its ``retry_after`` (briefly in the job, else re-scheduled).

Known limit: a worker killed between the carrier's acceptance and our commit sends the
message again on retry (neither API takes an idempotency key).
"""

from __future__ import annotations

import logging
import time

from flask import current_app
from sqlalchemy import select
from twilio.base.exceptions import TwilioRestException

from dataprotection import Sealed
from db import db_session
from inquiries import message_models as m
from inquiries.conversations import Conversations
from inquiries.models import Inquiry, Interaction
from inquiries.service import CallLog
from jobs import enqueue_in
from messaging.telegram import MAX_INLINE_WAIT_S, TelegramClient, TelegramError
from services import services
from webhooks import public_url

log = logging.getLogger(__name__)
_message = m.Message.__table__
_conversation = m.Conversation.__table__
_interaction = Interaction.__table__
_inquiry = Inquiry.__table__
_TO_SEND = select(
    _message.c.id,
    _message.c.interaction_id,
    _message.c.channel,
    _message.c.status,
    _message.c.carrier_key,
    _message.c.text_ciphertext,
    _message.c.text_key_id,
    _message.c.menu_node,
    _conversation.c.address_ciphertext,
    _conversation.c.address_key_id,
    _inquiry.c.language,
).select_from(
    _message.join(_conversation, _conversation.c.interaction_id == _message.c.interaction_id)
    .join(_interaction, _interaction.c.id == _message.c.interaction_id)
    .join(_inquiry, _inquiry.c.id == _interaction.c.inquiry_id)
)
#: Twilio's HTTP statuses that retrying will not mend (bad number, window closed, forbidden).
TWILIO_PERMANENT = (400, 403, 404)
SEND_JOB = "messaging.jobs.send_message"


def telegram_client() -> TelegramClient:
    settings = services().settings
    return TelegramClient(settings.telegram_api_base_url, settings.telegram_bot_token)


def send(message_id: int) -> str:
    """Send one pending message; what happened (``sent``, ``failed``, ``skipped``, ``later``)."""
    session = db_session()
    threads = Conversations(CallLog(session, services().protector))
    row = session.execute(_TO_SEND.where(_message.c.id == message_id)).first()
    if row is None or row.status != "pending" or row.carrier_key is not None:
        session.rollback()
        return "skipped"
    protector = services().protector
    text = ""
    if row.text_ciphertext is not None and row.text_key_id is not None:
        sealed = Sealed(row.text_key_id, row.text_ciphertext)
        text = protector.open_text(sealed, associated=m.text_associated_data(row.interaction_id))
    address = threads.address(row)
    threads.count_attempt(message_id)
    if address is None or not text:
        threads.mark_failed(message_id, "no-address" if address is None else "empty")
        session.commit()
        return "failed"
    session.commit()  # nothing open while the carrier is called
    if row.channel == "telegram":
        outcome = _send_telegram(threads, row, address, text)
    else:
        outcome = _send_twilio(threads, row, address, text)
    session.commit()
    return outcome


def _send_telegram(threads: Conversations, row, address: str, text: str) -> str:
    menu = current_app.extensions["messaging_menu"]
    buttons = menu.buttons(row.menu_node, row.language) if row.menu_node else None
    client = telegram_client()
    for attempt in range(2):
        try:
            sent = client.send_message(int(address), text, buttons)
            break
        except TelegramError as exc:
            wait = exc.retry_after or 1
            if exc.code == 429 and attempt == 0 and wait <= MAX_INLINE_WAIT_S:
                time.sleep(wait)
                continue
            if exc.code == 429:  # a longer wait: again once it is over, this job done
                enqueue_in(wait, SEND_JOB, row.id, job_id=f"message-send-{row.id}-later")
                return "later"
            if exc.permanent:
                threads.mark_failed(row.id, f"tg-{exc.code}")
                return "failed"
            raise
    key = f"telegram:out:{row.interaction_id}:{sent.message_id}"
    threads.mark_sent(row.id, key, "sent", sent.message_id)
    return "sent"


def _send_twilio(threads: Conversations, row, address: str, text: str) -> str:
    settings = services().settings
    sender = settings.whatsapp_number if row.channel == "whatsapp" else settings.hotline_number
    try:
        created = services().twilio.messages.create(
            to=address, from_=sender, body=text, status_callback=public_url("/messaging/status")
        )
    except TwilioRestException as exc:
        if exc.status in TWILIO_PERMANENT:
            threads.mark_failed(row.id, str(exc.code or exc.status))
            return "failed"
        raise
    sid = str(created.sid)
    threads.mark_sent(row.id, f"twilio:{sid}", str(created.status or "queued"))
    # Status callbacks that beat this commit were kept as events: apply them now.
    for data in threads.status_events(f"message-status:{sid}:"):
        threads.apply_status(f"twilio:{sid}", str(data.get("status")), data.get("error_code"))
    return "sent"


def answer_callback(query_id: str) -> None:
    """Stop the spinner on a pressed button (once per query; a stale query's 400 is fine)."""
    try:
        telegram_client().answer_callback_query(query_id)
    except TelegramError as exc:
        if not exc.permanent:
            raise
