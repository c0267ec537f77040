"""SMS and WhatsApp: outbound messages with status callbacks driven by the clock, inbound
messages from phones to the number's SMS URL, media, fault injection, WhatsApp's 24 h window."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .clock import Mailbox
from .errors import CarrierError
from .state import API_VERSION, Media, Message, new_sid

if TYPE_CHECKING:
    from .carrier import Carrier

#: Statuses after which a message no longer changes (Twilio lets you delete it then).
FINAL_MESSAGE_STATUSES = frozenset(
    {"delivered", "undelivered", "failed", "read", "received", "canceled"}
)
WHATSAPP = "whatsapp:"
WINDOW_SECONDS = 24 * 3600
ERROR_MESSAGES = {
    30003: "Unreachable destination handset",
    30005: "Unknown destination handset",
    30006: "Landline or unreachable carrier",
    30007: "Message filtered",
    30008: "Unknown error",
    63016: "Failed to send freeform message because you are outside the allowed window. "
    "If you are using WhatsApp, please use a Message Template.",
}
GSM_CHARS = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà^{}\\[~]|€"
)


def bare(address: str) -> str:
    """``whatsapp:+1555…`` -> ``+1555…``."""
    return address[len(WHATSAPP) :] if address.startswith(WHATSAPP) else address


def is_whatsapp(address: str) -> bool:
    return address.startswith(WHATSAPP)


def num_segments(body: str, whatsapp: bool) -> int:
    """How many SMS segments a body takes (GSM-7: 160/153 characters, UCS-2: 70/67)."""
    if whatsapp or not body:
        return 1
    single, multi = (160, 153) if all(ch in GSM_CHARS for ch in body) else (70, 67)
    return 1 if len(body) <= single else math.ceil(len(body) / multi)


@dataclass
class MessageFault:
    """A failure injected for the next message to an address (``Emulator.fail_next_message``)."""

    error_code: int = 30003
    status: str = "undelivered"  # undelivered (after sent) | failed (never sent)


@dataclass
class MessagingSettings:
    """How outbound messages progress (virtual or real seconds) and what chaos to add."""

    sent_after: float = 0.0
    delivered_after: float = 1.0
    read_after: float = 2.0  # WhatsApp only; 0 or less: never read
    duplicate_callbacks: bool = False
    reversed_callbacks: bool = False
    faults: dict[str, list[MessageFault]] = field(default_factory=dict)
    #: WhatsApp user number -> clock seconds of their last message (the 24 h window).
    last_inbound: dict[str, float] = field(default_factory=dict)


def send_message(
    carrier: Carrier,
    from_: str,
    to: str,
    body: str,
    media_urls: list[str] | None = None,
    status_callback: str | None = None,
    messaging_service_sid: str | None = None,
    content_sid: str | None = None,
) -> Message:
    """An outbound message: stored as queued, then moved on by the clock in its own thread."""
    now = carrier.clock.wall()
    whatsapp = is_whatsapp(to)
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
        date_updated=now,
        messaging_service_sid=messaging_service_sid,
        num_segments=num_segments(body, whatsapp),
        content_sid=content_sid,
    )
    settings = carrier.messaging
    with carrier.lock:
        carrier.store.messages[msg.sid] = msg
        for url in msg.media_urls:
            media = Media(new_sid("ME"), msg.account_sid, msg.sid, "", None, url, now)
            carrier.store.media[media.sid] = media
        queue = settings.faults.get(bare(to))
        fault = queue.pop(0) if queue else None
        if queue == []:
            settings.faults.pop(bare(to), None)
        if fault is None and whatsapp and not content_sid:
            last = settings.last_inbound.get(bare(to))
            if last is None or carrier.clock.now() - last > WINDOW_SECONDS:
                fault = MessageFault(63016, "failed")
    carrier.clock.spawn(lambda: _progress(carrier, msg, fault), name=f"msg-{msg.sid[-6:]}")
    return msg


def _progress(carrier: Carrier, msg: Message, fault: MessageFault | None) -> None:
    settings = carrier.messaging
    box = Mailbox(carrier.clock)
    held: list[dict[str, str]] = []

    def wait(seconds: float) -> None:
        if seconds > 0:
            box.get(seconds)

    def move(status: str, error_code: int | None = None) -> None:
        with carrier.lock:
            msg.status = status
            msg.date_updated = carrier.clock.wall()
            if status == "sent":
                msg.date_sent = msg.date_updated
            if error_code is not None:
                msg.error_code = error_code
                msg.error_message = ERROR_MESSAGES.get(error_code, "Message delivery failed")
        if not msg.status_callback:
            return
        params = status_params(carrier, msg)
        if settings.reversed_callbacks:
            held.append(params)
            return
        for _ in range(2 if settings.duplicate_callbacks else 1):
            carrier.post_callback(msg.sid, msg.status_callback, "POST", params)

    wait(settings.sent_after)
    if fault is not None and fault.status == "failed":
        move("failed", fault.error_code)
    else:
        move("sent")
        wait(settings.delivered_after)
        if fault is not None:
            move("undelivered", fault.error_code)
        else:
            device = carrier.device(msg.to)
            with carrier.lock:
                device.messages.append(
                    {
                        "sid": msg.sid,
                        "from": msg.from_,
                        "to": msg.to,
                        "body": msg.body,
                        "media_urls": list(msg.media_urls),
                    }
                )
                device.thread.append({"mine": False, "sid": msg.sid, "body": msg.body})
            move("delivered")
            if is_whatsapp(msg.to) and settings.read_after > 0:
                wait(settings.read_after)
                move("read")
    for params in reversed(held):
        for _ in range(2 if settings.duplicate_callbacks else 1):
            carrier.post_callback(msg.sid, msg.status_callback or "", "POST", params)


def status_params(carrier: Carrier, msg: Message) -> dict[str, str]:
    """A status callback's parameters, as Twilio sends them."""
    params = {
        "AccountSid": msg.account_sid,
        "ApiVersion": API_VERSION,
        "MessageSid": msg.sid,
        "SmsSid": msg.sid,
        "MessageStatus": msg.status,
        "SmsStatus": msg.status,
        "From": msg.from_,
        "To": msg.to,
    }
    if msg.messaging_service_sid:
        params["MessagingServiceSid"] = msg.messaging_service_sid
    if msg.status in ("failed", "undelivered"):
        params["ErrorCode"] = str(msg.error_code)
    if is_whatsapp(msg.to):
        params["ChannelPrefix"] = "whatsapp"
        params["ChannelToAddress"] = bare(msg.to)
        if msg.status == "read":
            params["EventType"] = "READ"
    elif msg.status in ("delivered", "undelivered"):
        params["RawDlrDoneDate"] = carrier.clock.wall().strftime("%y%m%d%H%M")
    return params


def inbound_message(
    carrier: Carrier,
    from_: str,
    to: str,
    body: str,
    media: list[tuple[bytes, str]] | None = None,
    *,
    profile_name: str | None = None,
    duplicate: bool = False,
) -> str:
    """A message from a phone to a number of the account (``whatsapp:`` addresses for WhatsApp):
    the signed webhook to the number's SMS URL, then any ``<Message>`` reply is sent."""
    with carrier.lock:
        number = carrier.store.numbers.get(bare(to))
    if number is None:
        raise ValueError(f"{bare(to)} is not a number of this emulated account")
    media = list(media or [])
    now = carrier.clock.wall()
    whatsapp = is_whatsapp(from_)
    sid = new_sid("MM" if media else "SM")
    device = carrier.device(from_)
    with carrier.lock:  # the handset keeps what it sent, whatever the carrier does with it
        device.thread.append({"mine": True, "sid": sid, "body": body})
    msg = Message(
        sid=sid,
        account_sid=carrier.account_sid,
        from_=from_,
        to=to,
        body=body,
        direction="inbound",
        status="received",
        date_created=now,
        date_updated=now,
        date_sent=now,
        num_segments=num_segments(body, whatsapp),
    )
    params = {
        "AccountSid": msg.account_sid,
        "ApiVersion": API_VERSION,
        "MessageSid": msg.sid,
        "SmsMessageSid": msg.sid,
        "SmsSid": msg.sid,
        "From": from_,
        "To": to,
        "Body": body,
        "NumMedia": str(len(media)),
        "NumSegments": str(msg.num_segments),
        "SmsStatus": "received",
    }
    with carrier.lock:
        carrier.store.messages[msg.sid] = msg
        if whatsapp:
            carrier.messaging.last_inbound[bare(from_)] = carrier.clock.now()
        for index, (data, content_type) in enumerate(media):
            item = Media(new_sid("ME"), msg.account_sid, msg.sid, content_type, data, None, now)
            carrier.store.media[item.sid] = item
            msg.media_urls.append(carrier.media_url(item))
            params[f"MediaUrl{index}"] = carrier.media_url(item)
            params[f"MediaContentType{index}"] = content_type
    if whatsapp:
        params["WaId"] = bare(from_).lstrip("+")
        params["ProfileName"] = profile_name or ""

    def run() -> None:
        if not number.sms_url:
            return
        for _ in range(2 if duplicate else 1):
            try:
                response = carrier.webhooks.send(number.sms_url, number.sms_method, params)
                content = response.content.strip()
                root = ET.fromstring(content) if content else None  # noqa: S314
            except (CarrierError, ET.ParseError) as exc:
                code = getattr(exc, "code", 12100)
                carrier.log_error(code, str(exc), number.sms_url, None)
                continue
            if root is None:
                continue
            for verb in root:
                if verb.tag == "Message":
                    reply(carrier, verb, msg)

    carrier.clock.spawn(run, name=f"msg-in-{msg.sid[-6:]}")
    return msg.sid


def reply(carrier: Carrier, verb: ET.Element, inbound: Message) -> None:
    """A TwiML ``<Message>`` answering an inbound message: sent back to its sender."""
    body_el = verb.find("Body")
    text = (body_el.text or "") if body_el is not None else (verb.text or "").strip()
    media = [(el.text or "").strip() for el in verb.findall("Media") if (el.text or "").strip()]
    send_message(
        carrier,
        verb.get("from") or inbound.to,
        verb.get("to") or inbound.from_,
        text,
        media,
        verb.get("statusCallback") or verb.get("action"),
    )
