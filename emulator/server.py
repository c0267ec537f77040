"""``Emulator``: the carrier plus its HTTP server (REST API, phones API, softphone)."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from flask import Flask, g, request
from werkzeug.serving import BaseWSGIServer, make_server

# The verbs' modules are imported by call threads on first use; load them up front instead.
from . import calls_api, conferences, dialing, gather, messages, queues, recording  # noqa: F401
from .carrier import Carrier
from .clock import SettleTimeout
from .messaging_phones import SmsPhone, WhatsAppPhone
from .phones import Phone, PhoneCall
from .phones_http import RequestHandler
from .state import Number, Recording

if TYPE_CHECKING:
    from .telegram import TelegramUser


def create_app(carrier: Carrier) -> Flask:
    """The emulator's WSGI app: Twilio's REST API, the phones' HTTP API and the softphone."""
    from . import phones_http, rest, telegram

    app = Flask("emulator")
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.register_blueprint(rest.make_blueprint(carrier))
    app.register_blueprint(phones_http.make_blueprint(carrier))
    app.register_blueprint(telegram.make_blueprint(carrier))
    return app


class Emulator:
    """A local Twilio: ``start()`` it, point twilio-python's ``client.api.base_url`` at
    ``base_url``, add numbers with webhook URLs, and place calls with ``dial()``."""

    def __init__(
        self,
        account_sid: str | None = None,
        auth_token: str | None = None,
        clock: str = "virtual",
        host: str = "127.0.0.1",
        port: int = 0,
        play_seconds: float = 5.0,
        *,
        dial_action_on_caller_hangup: bool | str = False,
        telegram_token: str | None = None,
    ) -> None:
        from .telegram import TelegramBot, new_token

        self.account_sid = account_sid or "AC" + secrets.token_hex(16)
        self.auth_token = auth_token or secrets.token_hex(16)
        self.carrier = Carrier(self.account_sid, self.auth_token, clock, play_seconds)
        self.telegram_token = telegram_token or new_token()
        self.telegram = self.carrier.telegram = TelegramBot(self.carrier, self.telegram_token)
        self.dial_action_on_caller_hangup = dial_action_on_caller_hangup
        self.host, self.port = host, port
        self.app = create_app(self.carrier)
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    # -- serving ----------------------------------------------------------------------------
    def start(self) -> Emulator:
        """Serve HTTP on ``host`` (a free port unless one was given); returns self."""
        self._server = make_server(
            self.host, self.port, self.app, threaded=True, request_handler=RequestHandler
        )
        self.port = self._server.server_port
        self.carrier.base_url = self.base_url
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="emulator-http",
            daemon=True,
        )
        self._thread.start()
        return self

    @property
    def base_url(self) -> str:
        """Where the emulator listens, e.g. http://127.0.0.1:40123 (twilio's api.base_url)."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host  # noqa: S104
        return f"http://{host}:{self.port}"

    @property
    def softphone_url(self) -> str:
        return self.base_url + "/softphone/"

    def stop(self, timeout: float = 15.0) -> None:
        """End live calls, stop serving and release sockets and threads."""
        carrier = self.carrier
        with carrier.lock:
            live = [c for c in carrier.store.calls.values() if not c.ended]
        for call in live:
            call.mailbox.post(("end", "completed" if call.answered_at is not None else "canceled"))
        try:
            carrier.clock.settle(timeout)
        except SettleTimeout:
            pass  # a webhook still hangs; its daemon thread ends with the process
        finally:
            if self._server is not None:
                self._server.shutdown()
                self._server.server_close()
                self._server = None
            if self._thread is not None:
                self._thread.join(timeout)
                self._thread = None
            carrier.webhooks.close()
            carrier.clock.close()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- configuration ----------------------------------------------------------------------
    def add_number(
        self,
        number: str,
        voice_url: str | None = None,
        voice_fallback_url: str | None = None,
        status_callback: str | None = None,
        sms_url: str | None = None,
        voice_method: str = "POST",
        voice_fallback_method: str = "POST",
        status_callback_method: str = "POST",
        sms_method: str = "POST",
    ) -> Number:
        """Own a phone number (an IncomingPhoneNumber) with its webhook URLs."""
        return self.carrier.add_number(
            number,
            voice_url=voice_url,
            voice_fallback_url=voice_fallback_url,
            status_callback=status_callback,
            sms_url=sms_url,
            voice_method=voice_method.upper(),
            voice_fallback_method=voice_fallback_method.upper(),
            status_callback_method=status_callback_method.upper(),
            sms_method=sms_method.upper(),
        )

    @property
    def dial_action_on_caller_hangup(self) -> bool | str:
        """Whether a caller who hangs up inside a ``<Dial><Conference>`` makes the emulator
        request that ``<Dial>``'s action (response ignored), which Twilio's documentation does
        not settle: ``False`` (default) no; ``True`` or ``"before-status"`` yes, sent before
        the call's ``completed`` status callback; ``"after-status"`` yes, sent after it."""
        return self.carrier.dial_action_on_caller_hangup

    @dial_action_on_caller_hangup.setter
    def dial_action_on_caller_hangup(self, value: bool | str) -> None:
        from .dialing import CALLER_HANGUP_ACTIONS

        if value not in CALLER_HANGUP_ACTIONS:
            raise ValueError(f"dial_action_on_caller_hangup: one of {CALLER_HANGUP_ACTIONS}")
        self.carrier.dial_action_on_caller_hangup = value

    def set_media_length(self, url: str, seconds: float) -> None:
        """How long a <Play> of ``url`` lasts (default: ``play_seconds``)."""
        self.carrier.media_seconds[url] = seconds

    # -- phones -----------------------------------------------------------------------------
    def observe(
        self,
        *,
        webhook_answer: Callable[[str, dict[str, str], Any], None] | None = None,
        rest_request: Callable[..., None] | None = None,
    ) -> None:
        """Watch the traffic (benchmarks). ``webhook_answer(url, params, reply)``: after each
        webhook the app answered with a 2xx (``reply.content``: the TwiML).
        ``rest_request(arrived, method, path, form, status, body)``: after each REST request
        was answered; ``arrived`` is ``time.monotonic()`` when it reached the emulator, ``body``
        the JSON answer (or None). Called on the emulator's threads: keep them short."""
        if webhook_answer is not None:
            self.carrier.webhooks.observers.append(webhook_answer)
        if rest_request is None:
            return

        def arrived() -> None:
            g.observed_arrival = time.monotonic()

        def answered(response: Any) -> Any:
            rest_request(
                g.pop("observed_arrival", time.monotonic()), request.method, request.path,
                request.form.to_dict(), response.status_code, response.get_json(silent=True),
            )  # fmt: skip
            return response

        self.app.before_request(arrived)
        self.app.after_request(answered)

    def phone(self, number: str) -> Phone:
        """The phone at a number (a caller, or a handler's mobile)."""
        return self.carrier.device(number)

    def client(self, identity: str) -> Phone:
        """A browser client (``<Dial><Client>identity</Client>``)."""
        return self.carrier.device(
            identity if identity.startswith("client:") else "client:" + identity
        )

    def dial(self, from_: str, to: str, *, listen: bool = True) -> PhoneCall:
        """Place a call from a phone to a number of this account."""
        return self.phone(from_).dial(to, listen=listen)

    def call(self, sid: str) -> PhoneCall:
        """A handle on any call leg by its SID."""
        found = self.carrier.store.calls[sid]
        device = found.device or self.phone(found.to)
        return PhoneCall(device, found)

    # -- messaging --------------------------------------------------------------------------
    def sms_phone(self, number: str) -> SmsPhone:
        """A person who texts (SMS) from ``number``: ``.send(text, media=[(bytes, type)])``,
        ``.received()``."""
        return SmsPhone(self.carrier, number)

    def whatsapp_phone(self, number: str, profile_name: str | None = None) -> WhatsAppPhone:
        """A WhatsApp user at ``number`` (``From=whatsapp:+…``, ``WaId``, ``ProfileName``)."""
        return WhatsAppPhone(self.carrier, number, profile_name)

    def telegram_user(
        self,
        user_id: int,
        first_name: str = "Test",
        *,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = None,
    ) -> TelegramUser:
        """A Telegram user in a private chat with the bot (the same object for the same id)."""
        from .telegram import Chat, TelegramUser

        bot = self.telegram
        with self.carrier.lock:
            chat = bot.chats.get(user_id)
            if chat is None:
                user = TelegramUser(bot, user_id, first_name, last_name, username, language_code)
                chat = bot.chats[user_id] = Chat(user)
            return chat.user

    def fail_next_message(
        self, to: str, error_code: int = 30003, status: str = "undelivered"
    ) -> None:
        """The next outbound message to ``to`` (``+…`` or ``whatsapp:+…``) fails: ``undelivered``
        after ``sent`` (default), or ``failed`` without being sent, with ``ErrorCode``."""
        from .messages import MessageFault, bare

        if status not in ("undelivered", "failed"):
            raise ValueError("status is 'undelivered' or 'failed'")
        with self.carrier.lock:
            faults = self.carrier.messaging.faults.setdefault(bare(to), [])
            faults.append(MessageFault(error_code, status))

    def message_timing(
        self,
        sent_after: float | None = None,
        delivered_after: float | None = None,
        read_after: float | None = None,
    ) -> None:
        """Seconds (clock time) from queued to sent, sent to delivered, delivered to read
        (WhatsApp; 0 = never read). Defaults 0, 1, 2."""
        settings = self.carrier.messaging
        if sent_after is not None:
            settings.sent_after = sent_after
        if delivered_after is not None:
            settings.delivered_after = delivered_after
        if read_after is not None:
            settings.read_after = read_after

    def status_callback_chaos(self, *, duplicate: bool = False, reverse: bool = False) -> None:
        """As a real carrier may: every message status callback sent twice (``duplicate``),
        and/or a message's callbacks held until it is final and then sent newest first."""
        self.carrier.messaging.duplicate_callbacks = duplicate
        self.carrier.messaging.reversed_callbacks = reverse

    def whatsapp_window_opened(self, number: str, seconds_ago: float = 0.0) -> None:
        """Pretend the WhatsApp user at ``number`` last wrote ``seconds_ago`` (the 24 h window)."""
        from .messages import bare

        with self.carrier.lock:
            self.carrier.messaging.last_inbound[bare(number)] = self.now() - seconds_ago

    def hold_updates(self) -> None:
        """Telegram: keep new updates back until ``release_updates``."""
        self.telegram.hold()

    def release_updates(self, *, reverse: bool = False, duplicate: bool = False) -> None:
        """Telegram: queue the held updates for the webhook, reversed and/or each twice."""
        self.telegram.release(reverse=reverse, duplicate=duplicate)

    def duplicate_updates(self, on: bool = True) -> None:
        """Telegram: deliver every new update twice."""
        self.telegram.duplicate_updates = on

    # -- time -------------------------------------------------------------------------------
    def wait(self, seconds: float) -> None:
        """Let time pass for every call (virtual clock: instantly)."""
        self.carrier.clock.advance(seconds)

    def settle(self, timeout: float = 60.0) -> None:
        """Wait until every call waits for input or time (quiescence)."""
        self.carrier.clock.settle(timeout)

    def now(self) -> float:
        return self.carrier.clock.now()

    # -- what happened ----------------------------------------------------------------------
    @property
    def debugger(self) -> list[dict]:
        """Errors and warnings, as Twilio's debugger shows them (code, message, url, call_sid)."""
        with self.carrier.lock:
            return [e.as_dict() for e in self.carrier.store.debugger]

    def recordings(self) -> list[Recording]:
        with self.carrier.lock:
            return list(self.carrier.store.recordings.values())

    # -- fault injection (tests) --------------------------------------------------------------
    def fail_media(self, sid: str, times: int = 1, status: int = 500) -> None:
        """The next ``times`` downloads of recording ``sid``'s media answer HTTP ``status``
        (Twilio's JSON error body) instead of the audio; later ones succeed again."""
        with self.carrier.lock:
            if times > 0:
                self.carrier.media_faults[sid] = [times, status]
            else:
                self.carrier.media_faults.pop(sid, None)

    def stream_media(self, sid: str, streamed: bool = True) -> None:
        """Send recording ``sid``'s media in chunks without ``Content-Length`` (chunked transfer
        encoding, as a proxy in front of the carrier may): its size is known only once read."""
        with self.carrier.lock:
            if streamed:
                self.carrier.media_streamed.add(sid)
            else:
                self.carrier.media_streamed.discard(sid)

    def media_requests(self, sid: str) -> int:
        """How many times recording ``sid``'s media was requested (failed requests included)."""
        with self.carrier.lock:
            return self.carrier.media_requests.get(sid, 0)

    # -- orders Twilio does not document (tests try each) ------------------------------------
    @property
    def queue_redirect_action(self) -> str:
        """When a queued call is taken out of its queue over REST (``Members`` update or a
        ``Calls`` redirect), Twilio requests the ``<Enqueue action>`` "right away" with
        ``QueueResult=redirected`` and ignores its answer; whether that comes before or after
        the new URL is fetched is not documented. ``"before"`` (the default): the action is
        requested and answered first; ``"after"``: the new URL is fetched first and the action
        follows, asynchronously, as the call runs the new document."""
        return self.carrier.queue_redirect_action

    @queue_redirect_action.setter
    def queue_redirect_action(self, order: str) -> None:
        if order not in ("before", "after"):
            raise ValueError("queue_redirect_action is 'before' or 'after'")
        self.carrier.queue_redirect_action = order
