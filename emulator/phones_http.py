"""The phones over HTTP (JSON, no auth, local only): what the softphone and the terminal use."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from flask import Blueprint, jsonify, redirect, request, send_from_directory
from werkzeug.serving import WSGIRequestHandler

from .phones import PhoneCall

if TYPE_CHECKING:
    from .carrier import Carrier

SOFTPHONE_DIR = Path(__file__).with_name("softphone")
#: What the softphone and the terminal phone poll: a call's state (every 500 ms per call shown),
#: a handler phone's ringing calls (every 700 ms) and a messaging conversation (every second).
POLLING_PATH = re.compile(r"/phones/(?:calls/[^/]+|[^/]+/ringing|messaging/conversation)")


def is_polling(method: str, target: str) -> bool:
    """A phone's polling request (GET of a call's state or of a phone's ringing calls)."""
    return method == "GET" and POLLING_PATH.fullmatch(urlsplit(target).path) is not None


class RequestHandler(WSGIRequestHandler):
    """werkzeug's request handler, without the access-log line of a phone's successful polling:
    a softphone left open would otherwise write two lines a second into the run command's
    output. Every other request, and a polling request that fails, is logged as before."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        target = getattr(self, "path", "")  # unset when the request line was malformed
        if is_polling(getattr(self, "command", ""), target) and str(code)[:1] in ("2", "3"):
            return
        super().log_request(code, size)


def call_state(handle: PhoneCall, since: int = 0) -> dict[str, Any]:
    heard = handle.heard
    return {
        "sid": handle.sid,
        "status": handle.status,
        "activity": handle.activity,
        "direction": handle.direction,
        "from": handle.from_,
        "to": handle.to,
        "ended": handle.ended,
        "heard_count": len(heard),
        "heard": [h.as_dict() for h in heard[since:]],
    }


def make_blueprint(carrier: Carrier) -> Blueprint:
    bp = Blueprint("phones", __name__)

    def body() -> dict[str, Any]:
        data = request.get_json(silent=True)
        if isinstance(data, dict):
            return data
        return request.values.to_dict()

    def handle(sid: str) -> PhoneCall:
        call = carrier.store.calls.get(sid)
        if call is None or call.device is None:
            raise LookupError(sid)
        return PhoneCall(call.device, call)

    @bp.errorhandler(LookupError)
    def missing(error: LookupError):
        return jsonify({"error": f"no such call {error}"}), 404

    @bp.errorhandler(ValueError)
    def invalid(error: ValueError):
        return jsonify({"error": str(error)}), 400

    @bp.get("/")
    def home():
        return redirect("/softphone/")

    @bp.get("/softphone")
    @bp.get("/softphone/")
    def softphone():
        return send_from_directory(SOFTPHONE_DIR, "index.html")

    @bp.get("/softphone/<path:name>")
    def softphone_file(name: str):
        return send_from_directory(SOFTPHONE_DIR, name)

    @bp.get("/debugger")
    def debugger():
        with carrier.lock:
            return jsonify([e.as_dict() for e in carrier.store.debugger])

    @bp.get("/phones/numbers")
    def numbers():
        with carrier.lock:
            return jsonify(
                [
                    {"phone_number": n.phone_number, "voice_url": n.voice_url}
                    for n in carrier.store.numbers.values()
                ]
            )

    @bp.post("/phones/dial")
    def dial():
        data = body()
        source, target = data.get("from"), data.get("to")
        if not source or not target:
            raise ValueError("'from' and 'to' are required")
        placed = carrier.device(source).dial(target)
        return jsonify(call_state(placed)), 201

    @bp.get("/phones/calls/<sid>")
    def state(sid: str):
        return jsonify(call_state(handle(sid), int(request.args.get("since", 0))))

    @bp.post("/phones/calls/<sid>/press")
    def press(sid: str):
        return jsonify(call_state(handle(sid).press(str(body().get("digits", "")))))

    @bp.post("/phones/calls/<sid>/say")
    def say(sid: str):
        data = body()
        spoken = handle(sid).say(str(data.get("text", "")), language=data.get("language"))
        return jsonify(call_state(spoken))

    @bp.post("/phones/calls/<sid>/wait")
    def wait(sid: str):
        return jsonify(call_state(handle(sid).wait(float(body().get("seconds", 1)))))

    @bp.post("/phones/calls/<sid>/hangup")
    def hangup(sid: str):
        return jsonify(call_state(handle(sid).hang_up()))

    @bp.post("/phones/calls/<sid>/answer")
    def answer(sid: str):
        return jsonify(call_state(handle(sid).answer()))

    @bp.post("/phones/calls/<sid>/reject")
    def reject(sid: str):
        return jsonify(call_state(handle(sid).reject()))

    @bp.get("/phones/<address>/ringing")
    def ringing(address: str):
        return jsonify([call_state(c) for c in carrier.device(address).ringing()])

    @bp.get("/phones/<address>/messages")
    def messages(address: str):
        with carrier.lock:
            return jsonify(list(carrier.device(address).messages))

    # -- messaging (the softphone's messaging panel) ------------------------------------------
    def messaging_person(data: dict[str, Any], create: bool = True):
        from .messaging_phones import SmsPhone, WhatsAppPhone

        channel = str(data.get("channel") or "sms")
        who = str(data.get("from") or "").strip()
        if not who:
            raise ValueError("'from' is required")
        if channel == "telegram":
            if not who.lstrip("-").isdigit():
                raise ValueError("a Telegram user is a number (its user id)")
            bot = carrier.telegram
            with carrier.lock:
                chat = bot.chats.get(int(who))
            if chat is None and not create:
                return None
            if chat is None:
                from .telegram import Chat, TelegramUser

                name = str(data.get("name") or "Softphone user")
                user = TelegramUser(bot, int(who), name, language_code=data.get("language"))
                with carrier.lock:
                    chat = bot.chats.setdefault(int(who), Chat(user))
            return chat.user
        if channel not in ("sms", "whatsapp"):
            raise ValueError("channel is sms, whatsapp or telegram")
        if not who.startswith("+"):
            raise ValueError("a phone number starts with +")
        if channel == "whatsapp":
            return WhatsAppPhone(carrier, who, str(data.get("name") or "") or None)
        return SmsPhone(carrier, who)

    def conversation(person) -> list[dict[str, Any]]:
        from .messaging_phones import MessagingPhone

        if not isinstance(person, MessagingPhone):
            with carrier.lock:
                return [
                    {
                        "mine": not m.from_bot,
                        "text": m.payload.get("text") or m.payload.get("caption") or "",
                        "buttons": m.payload.get("reply_markup", {}).get("inline_keyboard", []),
                    }
                    for m in person.chat.messages
                    if not m.deleted
                ]
        # the handset's thread: the hotline redacts and deletes its messages at the carrier
        # once stored, and a phone still shows what it sent and received
        device = carrier.device(person.address)
        with carrier.lock:
            return [{"mine": m["mine"], "text": m["body"], "buttons": []} for m in device.thread]

    @bp.post("/phones/messaging/send")
    def messaging_send():
        data = body()
        person = messaging_person(data)
        text = str(data.get("text") or "")
        if not text.strip():
            raise ValueError("write something")
        if hasattr(person, "write"):
            person.write(text)
        else:
            person.send(text, to=str(data.get("to") or "") or None)
        return jsonify({"messages": conversation(person)}), 201

    @bp.post("/phones/messaging/press")
    def messaging_press():
        data = body()
        person = messaging_person({**data, "channel": "telegram"})
        try:
            person.press(str(data.get("data") or ""))
        except AssertionError as exc:
            raise ValueError(str(exc)) from exc
        return jsonify({"messages": conversation(person)})

    @bp.get("/phones/messaging/conversation")
    def messaging_conversation():
        person = messaging_person(request.args.to_dict(), create=False)
        return jsonify({"messages": conversation(person) if person is not None else []})

    @bp.post("/phones/<address>/sms")
    def sms(address: str):
        data = body()
        sid = carrier.device(address).send_sms(str(data.get("to", "")), str(data.get("body", "")))
        return jsonify({"sid": sid}), 201

    return bp
