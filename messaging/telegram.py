"""A small typed client of the Telegram Bot API, on ``requests``.

Why not python-telegram-bot or aiogram: both are asyncio-only (their Bot methods are
coroutines; neither has a synchronous layer), and this app is synchronous Flask with RQ jobs.
Each call would need an event loop of its own inside a job, for the five methods the hotline
uses. Plain HTTP is a few lines, runs in the job as it is, and points at the emulator with
``TELEGRAM_API_BASE_URL``.

The bot token is part of every URL (``/bot<token>/<method>``): no URL and no exception that
could hold one leaves this module — errors are re-raised as ``TelegramError`` with the
method's name, Telegram's code and description only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests

TIMEOUT_S = (5, 30)
#: The longest ``retry_after`` waited for inside a job; longer ones re-schedule the job.
MAX_INLINE_WAIT_S = 5


class TelegramError(RuntimeError):
    """A Bot API call that failed: ``code`` (HTTP-like, 0 for no answer), ``retry_after``."""

    def __init__(self, method: str, code: int, description: str, retry_after: int | None = None):
        super().__init__(f"Telegram {method}: {code} {description[:200]}")
        self.method = method
        self.code = code
        self.description = description[:200]
        self.retry_after = retry_after

    @property
    def permanent(self) -> bool:
        """A request Telegram refuses for good (bad request, blocked by the person, not
        found): retrying cannot help. 429 and 5xx (and no answer) can."""
        return self.code in (400, 403, 404)


@dataclass(frozen=True)
class SentMessage:
    message_id: int
    chat_id: int


class TelegramClient:
    def __init__(self, base_url: str, token: str, session: requests.Session | None = None):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.session = session or requests.Session()

    def call(self, method: str, payload: dict[str, Any] | None = None) -> Any:
        """POST a method as JSON; its ``result``, or ``TelegramError``."""
        if not self.token:
            raise TelegramError(method, 401, "no TELEGRAM_BOT_TOKEN is set")
        url = f"{self.base_url}/bot{self.token}/{method}"
        try:
            response = self.session.post(url, json=payload or {}, timeout=TIMEOUT_S)
        except requests.RequestException as exc:  # its message holds the URL, so the token
            raise TelegramError(method, 0, type(exc).__name__) from None
        try:
            body = response.json()
        except ValueError:
            raise TelegramError(method, response.status_code, "not JSON") from None
        if not isinstance(body, dict):
            raise TelegramError(method, response.status_code, "not an object")
        if body.get("ok") is True:
            return body.get("result")
        parameters = body.get("parameters") if isinstance(body.get("parameters"), dict) else {}
        retry_after = parameters.get("retry_after")
        raise TelegramError(
            method,
            int(body.get("error_code") or response.status_code),
            str(body.get("description") or ""),
            retry_after if isinstance(retry_after, int) else None,
        )

    def send_message(
        self, chat_id: int | str, text: str, buttons: list[list[dict[str, str]]] | None = None
    ) -> SentMessage:
        payload: dict[str, Any] = {"chat_id": chat_id, "text": text[:4096]}
        if buttons:
            payload["reply_markup"] = {"inline_keyboard": buttons}
        result = self.call("sendMessage", payload)
        if not isinstance(result, dict) or not isinstance(result.get("message_id"), int):
            raise TelegramError("sendMessage", 0, "no message_id in the result")
        chat = result.get("chat") if isinstance(result.get("chat"), dict) else {}
        return SentMessage(result["message_id"], int(chat.get("id") or 0))

    def answer_callback_query(self, query_id: str, text: str = "") -> None:
        payload: dict[str, Any] = {"callback_query_id": query_id}
        if text:
            payload["text"] = text[:200]
        self.call("answerCallbackQuery", payload)

    def set_webhook(self, url: str, secret: str, allowed_updates: list[str]) -> None:
        self.call(
            "setWebhook",
            {"url": url, "secret_token": secret, "allowed_updates": allowed_updates},
        )

    def get_webhook_info(self) -> dict[str, Any]:
        result = self.call("getWebhookInfo")
        return result if isinstance(result, dict) else {}

    def get_file(self, file_id: str) -> str:
        """The file's path for ``download`` (valid at least an hour)."""
        result = self.call("getFile", {"file_id": file_id})
        if not isinstance(result, dict) or not isinstance(result.get("file_path"), str):
            raise TelegramError("getFile", 0, "no file_path in the result")
        return result["file_path"]

    def download(self, file_path: str, max_bytes: int) -> bytes:
        """A file's bytes (``/file/bot<token>/<path>``), at most ``max_bytes``."""
        url = f"{self.base_url}/file/bot{self.token}/{file_path}"
        try:
            with self.session.get(url, timeout=TIMEOUT_S, stream=True) as response:
                if response.status_code != 200:
                    raise TelegramError("download", response.status_code, "not downloaded")
                chunks, size = [], 0
                for chunk in response.iter_content(64 * 1024):
                    size += len(chunk)
                    if size > max_bytes:
                        raise TelegramError("download", 413, "larger than allowed")
                    chunks.append(chunk)
                return b"".join(chunks)
        except requests.RequestException as exc:
            raise TelegramError("download", 0, type(exc).__name__) from None
