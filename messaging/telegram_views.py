"""Telegram's webhook: ``POST /messaging/telegram``.

Telegram proves an update is its own with the secret given to ``setWebhook``, sent back in
``X-Telegram-Bot-Api-Secret-Token``. It is compared in constant time with
``TELEGRAM_WEBHOOK_SECRET`` before anything else is read: missing, empty, repeated, non-ASCII,
oversized or wrong → 403, nothing read, written, enqueued or journalled. One message per
``update_id``; a button (``callback_query``) is answered once per update, and always answered
at Telegram (``answerCallbackQuery``), or the person's client keeps spinning.
"""

from __future__ import annotations

import functools
import hmac
import logging
from collections.abc import Callable
from typing import Any

from flask import abort, g, request

from db import db_session
from jobs import enqueue
from messaging import service
from messaging.service import Inbound, Media
from messaging.views import bp, empty, enabled
from services import services

log = logging.getLogger(__name__)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name
MAX_SECRET_CHARS = 256  # setWebhook's limit
MAX_UPDATE_BYTES = 256 * 1024  # a message is at most 4096 characters; more is not Telegram
CHANNEL = "telegram"
#: What each kind of attachment is kept as (Telegram names a type for some only).
MEDIA_FIELDS = {
    "voice": "audio/ogg",
    "audio": "audio/mpeg",
    "document": "application/octet-stream",
    "video": "video/mp4",
    "video_note": "video/mp4",
    "animation": "video/mp4",
    "sticker": "image/webp",
}


def secret_is_valid() -> bool:
    """Whether the request carries our webhook secret, exactly once. Anything malformed is
    simply invalid: no exception leaves this function."""
    try:
        expected = services().settings.telegram_webhook_secret
        values = request.headers.getlist(SECRET_HEADER)
        if not expected or len(values) != 1:
            return False
        value = values[0]
        if not value or len(value) > MAX_SECRET_CHARS or not value.isascii():
            return False
        return hmac.compare_digest(value.encode("ascii"), expected.encode("ascii"))
    except Exception:
        return False


def telegram_webhook(view: Callable[..., Any]) -> Callable[..., Any]:
    """Refuse a request without our secret (403) before the view; marked as a carrier webhook
    (``carrier_webhook``, ``secret_header``) so the security tests walk it."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not secret_is_valid():
            log.warning("rejected a Telegram request with a missing or invalid secret token")
            abort(403)
        if request.content_length is not None and request.content_length > MAX_UPDATE_BYTES:
            abort(413)
        g.carrier_signed = True  # the blueprint's error handler may answer as to the carrier
        return view(*args, **kwargs)

    wrapper.carrier_webhook = True  # type: ignore[attr-defined]
    wrapper.secret_header = SECRET_HEADER  # type: ignore[attr-defined]
    return wrapper


@bp.post("/messaging/telegram")
@telegram_webhook
def telegram():
    """One Telegram update: a message, a button, a block or unblock. Anything else: 200."""
    if not enabled(CHANNEL):
        abort(404)
    update = request.get_json(silent=True)
    if not isinstance(update, dict) or not _is_int(update.get("update_id")):
        return empty()
    update_key = f"telegram:update:{update['update_id']}"
    if isinstance(update.get("message"), dict):
        _message(update["message"], update_key)
    elif isinstance(update.get("callback_query"), dict):
        _button(update["callback_query"], update_key)
    elif isinstance(update.get("my_chat_member"), dict):
        _membership(update["my_chat_member"], update_key)
    return empty()


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**53


def _person(message: dict[str, Any]) -> tuple[int, int] | None:
    """(user id, chat id) of a private chat with a person; None for groups, bots, garbage."""
    user, chat = message.get("from"), message.get("chat")
    if not isinstance(user, dict) or not isinstance(chat, dict) or user.get("is_bot"):
        return None
    if chat.get("type") != "private" or not _is_int(user.get("id")):
        return None
    if not isinstance(chat.get("id"), int) or isinstance(chat.get("id"), bool):
        return None
    return user["id"], chat["id"]


def _name(user: dict[str, Any]) -> str | None:
    parts = [str(user.get(k, ""))[:64] for k in ("first_name", "last_name") if user.get(k)]
    if user.get("username"):
        parts.append("@" + str(user["username"])[:64])
    return " ".join(parts) or None


def _message(message: dict[str, Any], update_key: str) -> None:
    person = _person(message)
    if person is None:
        return
    user_id, chat_id = person
    text = message.get("text") or message.get("caption") or ""
    text = text[:4096] if isinstance(text, str) else ""
    location = message.get("location")
    if isinstance(location, dict):
        text += f"\nlocation: {location.get('latitude')}, {location.get('longitude')}"
    media = []
    photos = message.get("photo")
    if isinstance(photos, list) and photos and isinstance(photos[-1], dict):
        media.append(Media("image/jpeg", str(photos[-1].get("file_id", ""))[:256]))
    for field, default_type in MEDIA_FIELDS.items():
        item = message.get(field)
        if isinstance(item, dict) and item.get("file_id"):
            kind = str(item.get("mime_type") or default_type)[:128]
            media.append(Media(kind, str(item["file_id"])[:256]))
    chat_message_id = message.get("message_id")
    service.receive(
        Inbound(
            channel=CHANNEL,
            carrier_key=update_key,
            identity=f"telegram:{user_id}",
            address=str(chat_id),
            text=text.strip(),
            name=_name(message["from"]),
            media=[item for item in media if item.source],
            chat_message_id=chat_message_id if _is_int(chat_message_id) else None,
        )
    )


def _button(query: dict[str, Any], update_key: str) -> None:
    query_id, user = query.get("id"), query.get("from")
    if not isinstance(query_id, str) or not query_id.isascii() or len(query_id) > 64:
        return
    if isinstance(user, dict) and _is_int(user.get("id")) and not user.get("is_bot"):
        data = query.get("data")
        service.press(CHANNEL, f"telegram:{user['id']}", update_key,
                      data if isinstance(data, str) else "")  # fmt: skip
    else:
        db_session().rollback()
    # Always answered, even for a stale button (else the person's client keeps spinning).
    enqueue(service.ANSWER_CALLBACK_JOB, query_id, job_id=f"telegram-answer-{query_id}")


def _membership(change: dict[str, Any], update_key: str) -> None:
    """The person blocked (``kicked``) or unblocked (``member``) the bot: noted on their open
    thread (replies to a blocked bot fail with 403 anyway)."""
    user, chat = change.get("from"), change.get("chat")
    new = change.get("new_chat_member")
    if not isinstance(user, dict) or not _is_int(user.get("id")) or not isinstance(new, dict):
        return
    if not isinstance(chat, dict) or chat.get("type") != "private":
        return
    status = new.get("status")
    if status not in ("kicked", "member"):
        return
    service.membership(CHANNEL, f"telegram:{user['id']}", update_key, blocked=status == "kicked")
