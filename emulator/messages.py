"""SMS: messages sent over REST reach a phone's inbox; texts from phones reach the SMS URL."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING

from .errors import CarrierError
from .state import API_VERSION, Message, new_sid

if TYPE_CHECKING:
    from .carrier import Carrier


def send_message(
    carrier: Carrier,
    from_: str,
    to: str,
    body: str,
    media_urls: list[str] | None = None,
    status_callback: str | None = None,
    messaging_service_sid: str | None = None,
) -> Message:
    """An outbound message: stored as queued, then delivered to the phone at ``to``."""
    now = carrier.clock.wall()
    msg = Message(
        sid=new_sid("SM" if not media_urls else "MM"),
        account_sid=carrier.account_sid,
        from_=from_,
        to=to,
        body=body,
        direction="outbound-api",
        media_urls=list(media_urls or []),
        status_callback=status_callback,
        date_created=now,
        messaging_service_sid=messaging_service_sid,
    )
    with carrier.lock:
        carrier.store.messages[msg.sid] = msg
    carrier.clock.spawn(lambda: _deliver(carrier, msg), name=f"sms-{msg.sid[-6:]}")
    return msg


def _deliver(carrier: Carrier, msg: Message) -> None:
    phone = carrier.device(msg.to)
    with carrier.lock:
        phone.messages.append(
            {
                "sid": msg.sid,
                "from": msg.from_,
                "to": msg.to,
                "body": msg.body,
                "media_urls": list(msg.media_urls),
            }
        )
    for status in ("sent", "delivered"):
        with carrier.lock:
            msg.status = status
            if status == "sent":
                msg.date_sent = carrier.clock.wall()
        if msg.status_callback:
            params = {
                "AccountSid": msg.account_sid,
                "ApiVersion": API_VERSION,
                "MessageSid": msg.sid,
                "SmsSid": msg.sid,
                "MessageStatus": status,
                "SmsStatus": status,
                "From": msg.from_,
                "To": msg.to,
            }
            carrier.post_callback(msg.sid, msg.status_callback, "POST", params)


def inbound_message(carrier: Carrier, from_: str, to: str, body: str) -> str:
    """A text from a phone to a number of the account: the SMS webhook, then any reply."""
    with carrier.lock:
        number = carrier.store.numbers.get(to)
    if number is None:
        raise ValueError(f"{to} is not a number of this emulated account")
    msg = Message(
        sid=new_sid("SM"),
        account_sid=carrier.account_sid,
        from_=from_,
        to=to,
        body=body,
        direction="inbound",
        status="received",
        date_created=carrier.clock.wall(),
    )
    with carrier.lock:
        carrier.store.messages[msg.sid] = msg

    def run() -> None:
        params = {
            "AccountSid": msg.account_sid,
            "ApiVersion": API_VERSION,
            "MessageSid": msg.sid,
            "SmsMessageSid": msg.sid,
            "SmsSid": msg.sid,
            "From": from_,
            "To": to,
            "Body": body,
            "NumMedia": "0",
            "NumSegments": "1",
            "SmsStatus": "received",
        }
        if not number.sms_url:
            return
        try:
            response = carrier.webhooks.send(number.sms_url, number.sms_method, params)
            root = ET.fromstring(response.content) if response.content.strip() else None  # noqa: S314
        except (CarrierError, ET.ParseError) as exc:
            code = getattr(exc, "code", 12100)
            carrier.log_error(code, str(exc), number.sms_url, None)
            return
        if root is None:
            return
        for verb in root:
            if verb.tag == "Message":
                body_el = verb.find("Body")
                text = body_el.text if body_el is not None else verb.text
                send_message(carrier, verb.get("from") or to, verb.get("to") or from_, text or "")

    carrier.clock.spawn(run, name=f"sms-in-{msg.sid[-6:]}")
    return msg.sid
