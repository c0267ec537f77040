"""The emulated carrier: shared state, call creation, webhook parameters and callbacks."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from .clock import Clock, Mailbox
from .errors import CarrierError
from .state import (
    API_VERSION,
    Call,
    Conference,
    DebugEvent,
    Number,
    Queue,
    Recording,
    Store,
    new_sid,
    rfc2822,
)
from .webhooks import Webhooks

if TYPE_CHECKING:
    from .phones import Phone as Device

HOLD_MUSIC_URL = "http://com.twilio.music.classical.s3.amazonaws.com/BusyStrings.mp3"


class Carrier:
    """Everything the emulated Twilio knows and does, without the HTTP server around it."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        clock: str = "virtual",
        play_seconds: float = 5.0,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.clock = Clock(clock)
        self.lock = self.clock.lock
        self.store = Store(account_sid, self.lock)
        self.webhooks = Webhooks(auth_token)
        self.devices: dict[str, Device] = {}
        self.base_url = "http://127.0.0.1"
        self.play_seconds = play_seconds
        self.media_seconds: dict[str, float] = {}
        #: Fault injection for tests: recording SID -> [failures left, HTTP status] that the
        #: next media downloads (``…/Recordings/{sid}.wav|.mp3``) answer with.
        self.media_faults: dict[str, list[int]] = {}
        #: Media downloads requested per recording SID (failed ones included).
        self.media_requests: dict[str, int] = {}
        #: Recording SIDs whose media is sent without ``Content-Length`` (chunked).
        self.media_streamed: set[str] = set()
        self._callback_queues: dict[str, deque] = {}
        #: When a queued call is redirected over REST, its Enqueue action (QueueResult
        #: ``redirected``) is requested ``before`` the new URL is fetched, or ``after`` it.
        #: Twilio documents only "right away"; tests try both (``Emulator.queue_redirect_action``).
        self.queue_redirect_action = "before"
        #: ``Emulator.dial_action_on_caller_hangup``: a <Dial><Conference> action on hang-up.
        self.dial_action_on_caller_hangup: bool | str = False
        from .messages import MessagingSettings

        #: Outbound messages' timing, callback chaos, injected faults, WhatsApp windows.
        self.messaging = MessagingSettings()
        #: The Telegram Bot API stand-in (``Emulator(telegram_token=…)``), set by the server.
        self.telegram = None

    # -- devices and logging ----------------------------------------------------------------
    def device(self, address: str) -> Device:
        """The phone (or browser client) at an address, created on first use."""
        from .phones import Phone as Device

        with self.lock:
            found = self.devices.get(address)
            if found is None:
                found = self.devices[address] = Device(self, address)
            return found

    def log_error(
        self, code: int, message: str, url: str | None, call_sid: str | None, level: str = "ERROR"
    ) -> None:
        with self.lock:
            self.store.debugger.append(
                DebugEvent(code, message, url, call_sid, self.clock.now(), level)
            )

    def media_length(self, url: str) -> float:
        """How long a Play of ``url`` lasts (settable per URL; default ``play_seconds``)."""
        return self.media_seconds.get(url.partition("#")[0], self.play_seconds)

    def media_fault(self, sid: str) -> int | None:
        """Count a media download of recording ``sid``; the HTTP status to fail it with, if a
        fault was injected (``Emulator.fail_media``) and has failures left."""
        with self.lock:
            self.media_requests[sid] = self.media_requests.get(sid, 0) + 1
            fault = self.media_faults.get(sid)
            if not fault:
                return None
            fault[0] -= 1
            if fault[0] <= 0:
                del self.media_faults[sid]
            return fault[1]

    def recording_url(self, rec: Recording) -> str:
        return f"{self.base_url}/{API_VERSION}/Accounts/{rec.account_sid}/Recordings/{rec.sid}"

    def media_url(self, media) -> str:
        """A message media item's URL (bytes; ``.json`` for its metadata)."""
        return (
            f"{self.base_url}/{API_VERSION}/Accounts/{media.account_sid}/Messages"
            f"/{media.message_sid}/Media/{media.sid}"
        )

    # -- resources --------------------------------------------------------------------------
    def add_number(self, phone_number: str, **settings: str | None) -> Number:
        now = self.clock.wall()
        with self.lock:
            number = self.store.numbers.get(phone_number)
            if number is None:
                number = Number(
                    sid=new_sid("PN"),
                    account_sid=self.account_sid,
                    phone_number=phone_number,
                    friendly_name=phone_number,
                    date_created=now,
                )
                self.store.numbers[phone_number] = number
            for key, value in settings.items():
                if not hasattr(number, key):
                    raise TypeError(f"unknown number setting {key!r}")
                setattr(number, key, value)
            number.date_updated = now
            return number

    def new_call(self, from_: str, to: str, direction: str, **fields) -> Call:
        now = self.clock.wall()
        call = Call(
            sid=new_sid("CA"),
            account_sid=self.account_sid,
            from_=from_,
            to=to,
            direction=direction,
            mailbox=Mailbox(self.clock),
            date_created=now,
            date_updated=now,
            **fields,
        )
        with self.lock:
            self.store.calls[call.sid] = call
        return call

    def queue_named(self, name: str, create: bool) -> Queue | None:
        with self.lock:
            queue = self.store.queue_by_name(name)
            if queue is None and create:
                now = self.clock.wall()
                queue = Queue(new_sid("QU"), self.account_sid, name, 1000, date_created=now)
                queue.date_updated = now
                self.store.queues[queue.sid] = queue
            return queue

    def conference_named(self, name: str) -> Conference:
        with self.lock:
            conf = self.store.live_conference(name)
            if conf is None:
                now = self.clock.wall()
                conf = Conference(new_sid("CF"), self.account_sid, name, date_created=now)
                conf.date_updated = now
                self.store.conferences[conf.sid] = conf
            return conf

    # -- starting calls ---------------------------------------------------------------------
    def start_call(self, call: Call, first: Callable[[], None] | None = None) -> None:
        """Run a call leg in its own thread."""
        from .runner import CallRunner

        runner = CallRunner(self, call)
        self.clock.spawn(first or runner.run, name=f"call-{call.sid[-6:]}")

    def inbound_call(self, from_: str, to: str, device: Device) -> Call:
        with self.lock:
            number = self.store.numbers.get(to)
        if number is None:
            raise ValueError(f"{to} is not a number of this emulated account")
        call = self.new_call(
            from_,
            to,
            "inbound",
            device=device,
            phone_number_sid=number.sid,
            url=number.voice_url,
            method=number.voice_method,
            fallback_url=number.voice_fallback_url,
            fallback_method=number.voice_fallback_method,
            status_callback=number.status_callback,
            status_callback_method=number.status_callback_method,
        )
        call.status = "ringing"
        device.legs.append(call)
        self.start_call(call)
        return call

    # -- webhook parameters -----------------------------------------------------------------
    def call_params(self, call: Call) -> dict[str, str]:
        """The parameters Twilio sends with every voice request about ``call``."""
        params = {
            "AccountSid": call.account_sid,
            "ApiVersion": API_VERSION,
            "CallSid": call.sid,
            "CallStatus": call.status,
            "Direction": call.direction,
            "From": call.from_,
            "To": call.to,
            "Caller": call.from_,
            "Called": call.to,
        }
        if call.parent_call_sid:
            params["ParentCallSid"] = call.parent_call_sid
        if call.forwarded_from:
            params["ForwardedFrom"] = call.forwarded_from
        if call.caller_name:
            params["CallerName"] = call.caller_name
        return params

    # -- callbacks (asynchronous, ordered per call) -----------------------------------------
    def post_callback(self, key: str, url: str, method: str, params: dict[str, str]) -> None:
        """Send a fire-and-forget callback; callbacks with the same key keep their order."""
        with self.lock:
            queue = self._callback_queues.get(key)
            if queue is not None:
                queue.append((url, method, params))
                return
            self._callback_queues[key] = deque([(url, method, params)])
        self.clock.spawn(lambda: self._drain(key), name=f"callback-{key[-6:]}")

    def _drain(self, key: str) -> None:
        while True:
            with self.lock:
                queue = self._callback_queues[key]
                if not queue:
                    del self._callback_queues[key]
                    return
                url, method, params = queue.popleft()
            try:
                self.webhooks.send(url, method, params)
            except CarrierError as exc:
                self.log_error(15003, exc.message, url, params.get("CallSid"), level="WARNING")

    def status_callback(self, call: Call, event: str) -> None:
        """A call-progress event, sent if the call subscribed to it."""
        if not call.status_callback or event not in call.status_callback_events:
            return
        with self.lock:
            call.sequence += 1
            sequence = call.sequence - 1
        params = self.call_params(call)
        if event == "initiated":
            params["CallStatus"] = "initiated"
        params.update(
            {
                "CallbackSource": "call-progress-events",
                "SequenceNumber": str(sequence),
                "Timestamp": rfc2822(self.clock.wall()) or "",
            }
        )
        if event == "completed":
            params["CallDuration"] = str(call.duration)
            params["Duration"] = str((call.duration + 59) // 60)
        self.post_callback(call.sid, call.status_callback, call.status_callback_method, params)

    def recording_callback(
        self, rec: Recording, url: str | None, method: str, events: frozenset[str], status: str
    ) -> None:
        if not url or status not in events:
            return
        params = {
            "AccountSid": rec.account_sid,
            "CallSid": rec.call_sid,
            "RecordingSid": rec.sid,
            "RecordingUrl": self.recording_url(rec),
            "RecordingStatus": status,
            "RecordingDuration": str(max(rec.duration, 0)),
            "RecordingChannels": str(rec.channels),
            "RecordingSource": rec.source,
            "RecordingStartTime": rfc2822(rec.start_time) or "",
            "ErrorCode": str(rec.error_code or 0),
        }
        if rec.conference_sid:
            params["ConferenceSid"] = rec.conference_sid
        self.post_callback(rec.sid, url, method, params)
