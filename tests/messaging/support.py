"""Posting messaging webhooks as the carriers do, and reading what the app kept."""

from __future__ import annotations

import itertools
import secrets
from typing import Any

from sqlalchemy import select

from dataprotection import Sealed
from inquiries import message_models as m
from inquiries.models import Caller, CallEvent, Inquiry, Interaction
from tests.conftest import ACCOUNT_SID, HOTLINE_NUMBER, Carrier
from tests.support import handles

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
_update_ids = itertools.count(700_000_000)
_message_ids = itertools.count(1)


def new_message_sid() -> str:
    return "SM" + secrets.token_hex(16)


def sms_params(sid: str, from_: str, body: str, **extra: str) -> dict[str, str]:
    params = {
        "MessageSid": sid,
        "SmsSid": sid,
        "SmsMessageSid": sid,
        "AccountSid": ACCOUNT_SID,
        "From": from_,
        "To": ("whatsapp:" if from_.startswith("whatsapp:") else "") + HOTLINE_NUMBER,
        "Body": body,
        "NumMedia": "0",
        "NumSegments": "1",
        "ApiVersion": "2010-04-01",
    }
    params.update(extra)
    return params


class Texter:
    """A person writing SMS (or WhatsApp, with ``whatsapp:+…``) to the hotline."""

    def __init__(self, carrier: Carrier, from_: str = "+79161230101"):
        self.carrier = carrier
        self.from_ = from_

    def send(self, body: str, sid: str | None = None, **extra: str):
        params = sms_params(sid or new_message_sid(), self.from_, body, **extra)
        response = self.carrier.post("/messaging/incoming", params)
        assert response.status_code == 200, response.data
        assert b"<Response" in response.data
        return params["MessageSid"]


def telegram_message(user_id: int, text: str, **extra: Any) -> dict[str, Any]:
    update_id = next(_update_ids)
    return {
        "update_id": update_id,
        "message": {
            "message_id": next(_message_ids),
            "from": {"id": user_id, "is_bot": False, "first_name": "Zebedäus",
                     "username": "zebedaeus_writes", "language_code": "ru"},
            "chat": {"id": user_id, "type": "private", "first_name": "Zebedäus"},
            "date": 1_765_000_000,
            "text": text,
            **extra,
        },
    }  # fmt: skip


def telegram_button(user_id: int, data: str) -> dict[str, Any]:
    return {
        "update_id": next(_update_ids),
        "callback_query": {
            "id": str(4_000_000_000 + next(_message_ids)),
            "from": {"id": user_id, "is_bot": False, "first_name": "Zebedäus"},
            "message": {"message_id": 1, "chat": {"id": user_id, "type": "private"},
                        "date": 1_765_000_000, "text": "…"},
            "chat_instance": "123",
            "data": data,
        },
    }  # fmt: skip


def post_telegram(client, app, update: dict[str, Any], secret: str | None = None):
    token = handles(app).settings.telegram_webhook_secret if secret is None else secret
    return client.post("/messaging/telegram", json=update, headers={SECRET_HEADER: token})


# -- reading what was kept -------------------------------------------------------------------


def rows(app, model) -> list[Any]:
    with handles(app).session_factory() as session:
        return list(session.scalars(select(model).order_by(model.id)))


def messages(app, direction: str | None = None) -> list[m.Message]:
    found = rows(app, m.Message)
    return [r for r in found if direction is None or r.direction == direction]


def text_of(app, message: m.Message) -> str:
    protector = handles(app).protector
    sealed = Sealed(message.text_key_id, message.text_ciphertext)
    return protector.open_text(sealed, associated=m.text_associated_data(message.interaction_id))


def address_of(app, conversation: m.Conversation) -> str:
    protector = handles(app).protector
    sealed = Sealed(conversation.address_key_id, conversation.address_ciphertext)
    associated = m.address_associated_data(conversation.interaction_id)
    return protector.open_text(sealed, associated=associated)


def interactions(app) -> list[Interaction]:
    return rows(app, Interaction)


def inquiries(app) -> list[Inquiry]:
    return rows(app, Inquiry)


def callers(app) -> list[Caller]:
    return rows(app, Caller)


def events(app, name: str) -> list[CallEvent]:
    return [e for e in rows(app, CallEvent) if e.event == name]


def queued_job_ids(app) -> list[str]:
    return list(handles(app).queue.job_ids)
