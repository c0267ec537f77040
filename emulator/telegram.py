"""A Telegram Bot API subset for one bot: ``/bot<token>/<method>`` and ``/file/bot<token>/…``,
its webhook (secret header, retries, pending updates) and the users who write to it."""

from __future__ import annotations

import contextlib
import json
import re
import secrets
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, jsonify, request

from .clock import Mailbox
from .httpclient import HttpError

if TYPE_CHECKING:
    from .carrier import Carrier

TOKEN_SHAPE = re.compile(r"[0-9]{1,20}:[A-Za-z0-9_-]{30,50}")
SECRET_SHAPE = re.compile(r"[A-Za-z0-9_-]{1,256}")
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 (a header name)
DEFAULT_UPDATES = frozenset(
    {
        "message",
        "edited_message",
        "channel_post",
        "edited_channel_post",
        "business_connection",
        "business_message",
        "edited_business_message",
        "deleted_business_messages",
        "inline_query",
        "chosen_inline_result",
        "callback_query",
        "shipping_query",
        "pre_checkout_query",
        "purchased_paid_media",
        "poll",
        "poll_answer",
        "my_chat_member",
        "chat_join_request",
        "chat_boost",
        "removed_chat_boost",
    }
)
DELETE_WINDOW = 48 * 3600
UPDATE_LIFETIME = 24 * 3600
RETRY_SECONDS = (1, 2, 4, 8, 16, 32, 60)
MAX_FILE = 20 * 1024 * 1024


def new_token() -> str:
    return f"{secrets.randbelow(9 * 10**9) + 10**9}:AA{secrets.token_urlsafe(26)[:33]}"


class BotApiError(Exception):
    """An error answer: ``{"ok": false, "error_code": …, "description": …}``."""

    def __init__(self, code: int, description: str, parameters: dict | None = None) -> None:
        super().__init__(description)
        self.code, self.description, self.parameters = code, description, parameters

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ok": False, "error_code": self.code}
        out["description"] = self.description
        if self.parameters:
            out["parameters"] = self.parameters
        return out


def bad_request(what: str) -> BotApiError:
    return BotApiError(400, "Bad Request: " + what)


@dataclass
class ChatMessage:
    """A message in a private chat (the user's or the bot's)."""

    message_id: int
    from_bot: bool
    date: int
    at: float  # clock seconds
    payload: dict[str, Any]
    deleted: bool = False


@dataclass
class Chat:
    user: TelegramUser
    messages: list[ChatMessage] = field(default_factory=list)
    next_id: int = 1


class TelegramBot:
    """The bot's side at the emulated Telegram: webhook, pending updates, chats, files."""

    def __init__(self, carrier: Carrier, token: str) -> None:
        self.carrier = carrier
        self.token = token
        self.bot_id = int(token.split(":", 1)[0]) if ":" in token else 1
        self.username = "hotline_emulated_bot"
        self.webhook_url = ""
        self.secret: str | None = None
        self.allowed_updates: list[str] | None = None
        self.max_connections = 40
        self.pending: deque[tuple[float, dict]] = deque()
        self.last_error_date: int | None = None
        self.last_error_message: str | None = None
        self.next_update_id = secrets.randbelow(10**8) + 10**8
        self.chats: dict[int, Chat] = {}
        self.files: dict[str, tuple[str, bytes, str]] = {}  # file_id -> (path, data, unique)
        self.queries: dict[str, tuple[float, int, list]] = {}  # id -> (at, chat, answers)
        self.pushing = False
        self.held: list[dict] | None = None
        self.duplicate_updates = False
        self.box = Mailbox(carrier.clock)
        self.lock = carrier.lock

    # -- users and their updates ------------------------------------------------------------
    def bot_user(self) -> dict[str, Any]:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": "Hotline",
            "username": self.username,
        }

    def unix(self) -> int:
        return int(self.carrier.clock.wall().timestamp())

    def chat_of(self, chat_id: int) -> Chat:
        chat = self.chats.get(chat_id)
        if chat is None:
            raise bad_request("chat not found")
        return chat

    def add_message(self, chat: Chat, from_bot: bool, content: dict[str, Any]) -> dict:
        with self.lock:
            user = chat.user
            message = {
                "message_id": chat.next_id,
                "from": self.bot_user() if from_bot else user.as_user(),
                "chat": user.as_chat(),
                "date": self.unix(),
                **content,
            }
            now = self.carrier.clock.now()
            chat.messages.append(ChatMessage(chat.next_id, from_bot, message["date"], now, message))
            chat.next_id += 1
            return message

    def store_file(self, data: bytes, suffix: str) -> tuple[str, str]:
        file_id = "AgAC" + secrets.token_urlsafe(40)
        unique = "AQAD" + secrets.token_urlsafe(10)
        path = f"{'photos' if suffix == 'jpg' else 'documents'}/file_{len(self.files)}.{suffix}"
        with self.lock:
            self.files[file_id] = (path, data, unique)
        return file_id, unique

    def push_update(self, kind: str, payload: dict[str, Any]) -> int:
        """Queue an update for the webhook (in ``update_id`` order) and start delivering."""
        with self.lock:
            update = {"update_id": self.next_update_id, kind: payload}
            self.next_update_id += 1
            if self.held is not None:
                self.held.append(update)
            else:
                self._enqueue([update])
            return update["update_id"]

    def _enqueue(self, updates: list[dict]) -> None:
        now = self.carrier.clock.now()
        for update in updates:
            for _ in range(2 if self.duplicate_updates else 1):
                self.pending.append((now, update))
        self.kick()

    def hold(self) -> None:
        with self.lock:
            if self.held is None:
                self.held = []

    def release(self, reverse: bool = False, duplicate: bool = False) -> None:
        with self.lock:
            held, self.held = self.held or [], None
            if reverse:
                held.reverse()
            if duplicate:
                held = [u for update in held for u in (update, update)]
            self._enqueue(held)
        self.carrier.clock.settle()

    def kick(self) -> None:
        with self.lock:
            if not self.pending or not self.webhook_url:
                return
            if self.pushing:
                self.box.post(("retry-now",))  # a new webhook: no need to wait for the backoff
                return
            self.pushing = True
        self.carrier.clock.spawn(self._push, name="telegram-webhook")

    def _push(self) -> None:
        """Deliver pending updates one at a time, in order; a failing one is retried."""
        failures = 0
        while True:
            with self.lock:
                now = self.carrier.clock.now()
                while self.pending and now - self.pending[0][0] > UPDATE_LIFETIME:
                    self.pending.popleft()  # kept at most 24 hours
                if not self.pending or not self.webhook_url:
                    self.pushing = False
                    return
                _, update = self.pending[0]
                url, secret, allowed = self.webhook_url, self.secret, self.allowed_updates
            kind = next(k for k in update if k != "update_id")
            if kind not in (set(allowed) if allowed else DEFAULT_UPDATES):
                with self.lock:
                    if self.pending and self.pending[0][1] is update:
                        self.pending.popleft()
                continue
            error = self._post(url, secret, update)
            with self.lock:
                if error is None:
                    if self.pending and self.pending[0][1] is update:
                        self.pending.popleft()
                    failures = 0
                    continue
                self.last_error_date = self.unix()
                self.last_error_message = error
            self.box.get(RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)])
            failures += 1

    def _post(self, url: str, secret: str | None, update: dict) -> str | None:
        headers = {
            "User-Agent": "TelegramBot (like TwitterBot)",
            "Content-Type": "application/json",
            "Accept-Encoding": "gzip, deflate",
        }
        if secret:
            headers[SECRET_HEADER] = secret
        body = json.dumps(update, ensure_ascii=False).encode("utf-8")
        try:
            reply = self.carrier.webhooks.http.request("POST", url, body, headers, (5.0, 60.0))
        except HttpError as exc:
            return f"Connection failed: {exc}"
        if not 200 <= reply.status_code < 300:
            return f"Wrong response from the webhook: {reply.status_code}"
        try:
            answer = json.loads(reply.content or b"null")
        except ValueError:
            return None
        if isinstance(answer, dict) and isinstance(answer.get("method"), str):
            params = {k: v for k, v in answer.items() if k != "method"}
            # the result of a method in a webhook reply is unknowable to the bot
            with contextlib.suppress(BotApiError):
                call_method(self, answer["method"], params)
        return None

    def webhook_info(self) -> dict[str, Any]:
        with self.lock:
            info: dict[str, Any] = {
                "url": self.webhook_url,
                "has_custom_certificate": False,
                "pending_update_count": len(self.pending),
            }
            if self.webhook_url:
                info["max_connections"] = self.max_connections
                info["ip_address"] = "127.0.0.1"
            if self.last_error_date is not None:
                info["last_error_date"] = self.last_error_date
                info["last_error_message"] = self.last_error_message
            if self.allowed_updates is not None:
                info["allowed_updates"] = list(self.allowed_updates)
            return info


class TelegramUser:
    """A Telegram user in a private chat with the bot: writes, sends photos, presses buttons."""

    def __init__(
        self,
        bot: TelegramBot,
        user_id: int,
        first_name: str,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = None,
    ) -> None:
        self.bot = bot
        self.id = user_id
        self.first_name, self.last_name = first_name, last_name
        self.username, self.language_code = username, language_code
        self.callback_answers: list[dict[str, Any]] = []

    def __repr__(self) -> str:
        return f"<TelegramUser {self.id}>"

    @property
    def chat(self) -> Chat:
        return self.bot.chats[self.id]

    def as_user(self) -> dict[str, Any]:
        user: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        for key in ("last_name", "username", "language_code"):
            if getattr(self, key):
                user[key] = getattr(self, key)
        return user

    def as_chat(self) -> dict[str, Any]:
        chat: dict[str, Any] = {"id": self.id, "first_name": self.first_name, "type": "private"}
        if self.last_name:
            chat["last_name"] = self.last_name
        if self.username:
            chat["username"] = self.username
        return chat

    def _send(self, content: dict[str, Any], duplicate: bool) -> dict[str, Any]:
        message = self.bot.add_message(self.chat, False, content)
        update_id = self.bot.push_update("message", message)
        if duplicate:
            with self.bot.lock:
                self.bot._enqueue([{"update_id": update_id, "message": message}])
        self.bot.carrier.clock.settle()
        return message

    def write(self, text: str, *, duplicate: bool = False) -> dict[str, Any]:
        """A text message to the bot; the Message as the bot receives it."""
        return self._send({"text": text}, duplicate)

    def send_photo(
        self, data: bytes, caption: str | None = None, *, duplicate: bool = False
    ) -> dict[str, Any]:
        """A photo (one size) to the bot; its ``file_id`` is fetched with ``getFile``."""
        file_id, unique = self.bot.store_file(data, "jpg")
        content: dict[str, Any] = {
            "photo": [
                {
                    "file_id": file_id,
                    "file_unique_id": unique,
                    "file_size": len(data),
                    "width": 640,
                    "height": 480,
                }
            ]
        }
        if caption:
            content["caption"] = caption
        return self._send(content, duplicate)

    def send_document(
        self, data: bytes, file_name: str, mime_type: str, *, duplicate: bool = False
    ) -> dict[str, Any]:
        file_id, unique = self.bot.store_file(data, file_name.rpartition(".")[2] or "bin")
        document = {
            "file_id": file_id,
            "file_unique_id": unique,
            "file_name": file_name,
            "mime_type": mime_type,
            "file_size": len(data),
        }
        return self._send({"document": document}, duplicate)

    def press(self, callback_data: str, *, duplicate: bool = False) -> str:
        """Press the inline button with this ``callback_data`` on the bot's latest message that
        has one: a ``callback_query`` update. Its id."""
        bot = self.bot
        with bot.lock:
            for held in reversed(self.chat.messages):
                if not held.from_bot or held.deleted:
                    continue
                rows = held.payload.get("reply_markup", {}).get("inline_keyboard", [])
                if any(b.get("callback_data") == callback_data for row in rows for b in row):
                    break
            else:
                raise AssertionError(f"no message of the bot has a button {callback_data!r}")
            query_id = str(secrets.randbelow(10**18))
            bot.queries[query_id] = (bot.carrier.clock.now(), self.id, self.callback_answers)
            query = {
                "id": query_id,
                "from": self.as_user(),
                "message": held.payload,
                "chat_instance": str(self.id * 7919),
                "data": callback_data,
            }
            update_id = bot.push_update("callback_query", query)
            if duplicate:
                bot._enqueue([{"update_id": update_id, "callback_query": query}])
        bot.carrier.clock.settle()
        return query_id

    def received(self) -> list[dict[str, Any]]:
        """The bot's messages in this chat, oldest first (deleted ones left out):
        ``{"message_id", "text", "buttons": [[(text, callback_data), …], …]}``."""
        with self.bot.lock:
            out = []
            for held in self.chat.messages:
                if not held.from_bot or held.deleted:
                    continue
                rows = held.payload.get("reply_markup", {}).get("inline_keyboard", [])
                buttons = [[(b.get("text"), b.get("callback_data")) for b in row] for row in rows]
                out.append(
                    {
                        "message_id": held.message_id,
                        "text": held.payload.get("text"),
                        "buttons": buttons,
                    }
                )
            return out

    def received_texts(self) -> list[str]:
        return [m["text"] for m in self.received()]

    def deleted(self) -> list[int]:
        """The ids of this chat's messages deleted by the bot."""
        with self.bot.lock:
            return [m.message_id for m in self.chat.messages if m.deleted]


# -- the methods ----------------------------------------------------------------------------
def _json_field(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError as exc:
            raise bad_request("can't parse JSON field") from exc
    return value


def _int(params: dict, name: str) -> int:
    value = params.get(name)
    if value is None or value == "":
        raise bad_request(f"{name} is empty" if name != "chat_id" else "chat_id is empty")
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise bad_request(f"invalid {name} specified") from exc


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).lower() in ("true", "1")


def call_method(bot: TelegramBot, method: str, params: dict[str, Any]) -> Any:
    """Run a Bot API method; its ``result`` (BotApiError for an error answer)."""
    handler = METHODS.get(method.lower())
    if handler is None:
        raise BotApiError(404, "Not Found")
    return handler(bot, params)


def set_webhook(bot: TelegramBot, params: dict[str, Any]) -> bool:
    url = str(params.get("url") or "")
    secret = params.get("secret_token")
    if secret is not None and secret != "" and not SECRET_SHAPE.fullmatch(str(secret)):
        raise bad_request("secret token contains unallowed characters")
    allowed = params.get("allowed_updates")
    max_connections = params.get("max_connections")
    with bot.lock:
        if url and not url.startswith(("http://", "https://")):
            raise bad_request("invalid webhook URL specified")
        bot.webhook_url = url
        bot.secret = str(secret) if secret else None
        if allowed is not None:
            parsed = _json_field(allowed)
            bot.allowed_updates = list(parsed) if parsed else None
        if max_connections is not None:
            bot.max_connections = max(1, min(100, int(max_connections)))
        if _bool(params.get("drop_pending_updates", False)):
            bot.pending.clear()
    bot.kick()
    return True


def delete_webhook(bot: TelegramBot, params: dict[str, Any]) -> bool:
    with bot.lock:
        bot.webhook_url = ""
        bot.secret = None
        if _bool(params.get("drop_pending_updates", False)):
            bot.pending.clear()
    return True


def get_webhook_info(bot: TelegramBot, params: dict[str, Any]) -> dict[str, Any]:
    return bot.webhook_info()


def get_me(bot: TelegramBot, params: dict[str, Any]) -> dict[str, Any]:
    return {**bot.bot_user(), "can_join_groups": False, "supports_inline_queries": False}


def send_message(bot: TelegramBot, params: dict[str, Any]) -> dict[str, Any]:
    chat = bot.chat_of(_int(params, "chat_id"))
    text = params.get("text")
    if text is None or str(text).strip() == "":
        raise bad_request("message text is empty")
    text = str(text)
    if len(text) > 4096:
        raise bad_request("message is too long")
    content: dict[str, Any] = {"text": text}
    markup = params.get("reply_markup")
    if markup is not None:
        markup = _json_field(markup)
        rows = markup.get("inline_keyboard") if isinstance(markup, dict) else None
        if rows is not None:
            for row in rows:
                for button in row:
                    if not button.get("text"):
                        raise bad_request("text buttons are unallowed in the inline keyboard")
                    data = button.get("callback_data")
                    if data is not None and not 1 <= len(str(data).encode("utf-8")) <= 64:
                        raise bad_request("BUTTON_DATA_INVALID")
            content["reply_markup"] = {"inline_keyboard": rows}
    return bot.add_message(chat, True, content)


def delete_message(bot: TelegramBot, params: dict[str, Any]) -> bool:
    chat = bot.chat_of(_int(params, "chat_id"))
    message_id = _int(params, "message_id")
    with bot.lock:
        found = next((m for m in chat.messages if m.message_id == message_id), None)
        if found is None or found.deleted:
            raise bad_request("message to delete not found")
        if bot.carrier.clock.now() - found.at > DELETE_WINDOW:
            raise bad_request("message can't be deleted for everyone")
        found.deleted = True
    return True


def get_file(bot: TelegramBot, params: dict[str, Any]) -> dict[str, Any]:
    file_id = str(params.get("file_id") or "")
    with bot.lock:
        found = bot.files.get(file_id)
    if found is None:
        raise bad_request("invalid file_id")
    path, data, unique = found
    if len(data) > MAX_FILE:
        raise bad_request("file is too big")
    return {"file_id": file_id, "file_unique_id": unique, "file_size": len(data), "file_path": path}


def answer_callback_query(bot: TelegramBot, params: dict[str, Any]) -> bool:
    query_id = str(params.get("callback_query_id") or "")
    text = params.get("text")
    with bot.lock:
        found = bot.queries.get(query_id)
        if found is None or bot.carrier.clock.now() - found[0] > 15 * 60:
            raise bad_request(
                "query is too old and response timeout expired or query ID is invalid"
            )
        if text is not None and len(str(text)) > 200:
            raise bad_request("MESSAGE_TOO_LONG")
        alert = _bool(params.get("show_alert", False))
        found[2].append({"callback_query_id": query_id, "text": text, "show_alert": alert})
    return True


METHODS = {
    "setwebhook": set_webhook,
    "deletewebhook": delete_webhook,
    "getwebhookinfo": get_webhook_info,
    "getme": get_me,
    "sendmessage": send_message,
    "deletemessage": delete_message,
    "getfile": get_file,
    "answercallbackquery": answer_callback_query,
}


def request_params() -> dict[str, Any]:
    """Query string, urlencoded or multipart form, or a JSON body: Telegram takes any."""
    params: dict[str, Any] = dict(request.args.items())
    if request.is_json:
        body = request.get_json(silent=True)
        if isinstance(body, dict):
            params.update(body)
    else:
        params.update(request.form.items())
        for name, upload in request.files.items():
            params[name] = upload.read().decode("utf-8", "replace")
    return params


def make_blueprint(carrier: Carrier) -> Blueprint:
    bp = Blueprint("telegram", __name__)

    def bot_for(token: str) -> TelegramBot:
        bot = carrier.telegram
        if bot is not None and secrets.compare_digest(token.encode(), bot.token.encode()):
            return bot
        if TOKEN_SHAPE.fullmatch(token):
            raise BotApiError(401, "Unauthorized")
        raise BotApiError(404, "Not Found")

    @bp.before_request
    def enter() -> None:
        carrier.clock.enter()

    @bp.teardown_request
    def leave(_exc: BaseException | None) -> None:
        carrier.clock.leave()

    @bp.errorhandler(BotApiError)
    def api_error(error: BotApiError):
        return jsonify(error.body()), error.code

    @bp.route("/bot<token>/<method>", methods=["GET", "POST"])
    def method(token: str, method: str):
        bot = bot_for(token)
        result = call_method(bot, method, request_params())
        answer: dict[str, Any] = {"ok": True, "result": result}
        if method.lower() == "setwebhook":
            answer["description"] = "Webhook was set" if bot.webhook_url else "Webhook was deleted"
        elif method.lower() == "deletewebhook":
            answer["description"] = "Webhook was deleted"
        return jsonify(answer)

    @bp.get("/file/bot<token>/<path:file_path>")
    def download(token: str, file_path: str):
        bot = bot_for(token)
        with bot.lock:
            found = next((f for f in bot.files.values() if f[0] == file_path), None)
        if found is None:
            raise BotApiError(404, "Not Found")
        return Response(found[1], mimetype="application/octet-stream")

    return bp
