"""The call engine: one thread per call leg fetches TwiML and carries out its verbs."""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import urljoin

from . import twiml
from .audio import estimate_speech_seconds
from .control import (
    ConferenceLeft,
    ConferenceStarted,
    Dequeued,
    Hangup,
    LeaveQueue,
    Request,
    Transfer,
)
from .errors import GENERIC_ERROR_TEXT, CarrierError
from .state import Call, Heard
from .twiml import attr_bool, attr_int, attr_method, text_of
from .webhooks import split_fragment

if TYPE_CHECKING:
    from .carrier import Carrier

log = logging.getLogger(__name__)
MEDIA_ACTIVITIES = frozenset({"media", "listening", "starting"})
LOOP_FOREVER = 1000
MAX_DOCUMENTS_WITHOUT_WAITING = 200


class CallRunner:
    """Runs one call leg: its TwiML, its media, its waits for input."""

    def __init__(self, carrier: Carrier, call: Call) -> None:
        self.carrier = carrier
        self.call = call
        self.clock = carrier.clock
        self.doc_url: str | None = None
        self.context: str | None = None  # None | queue | conference-wait | whisper | dequeue-url
        self.churn = 0
        self.capture: list | None = None  # speech (offset, audio) while a recording runs
        self.capture_start = 0.0
        call.runner = self

    # -- lifecycle --------------------------------------------------------------------------
    def run(self) -> None:
        call = self.call
        try:
            if call.direction == "outbound-api":
                self.ring_outbound()
                if call.join_conference is not None:
                    from .conferences import join

                    join(self, None, call.join_conference)
                    raise Hangup("completed")
            self.run_flow(Request(call.url, call.method, twiml=call.twiml))
        except Hangup as done:
            self.finish(done.status)
        except Exception as exc:  # an emulator bug must not leave the call hanging
            log.exception("call %s crashed", call.sid)
            self.carrier.log_error(0, f"emulator error: {exc!r}", None, call.sid)
            self.finish("failed" if call.answered_at is None else "completed")
        else:
            self.finish("completed")

    def ring_outbound(self) -> None:
        call = self.call
        self.carrier.status_callback(call, "initiated")
        with self.carrier.lock:
            call.status = "ringing"
            call.activity = "ringing"
        self.carrier.status_callback(call, "ringing")
        deadline = self.clock.now() + call.timeout
        while True:
            event = self.next_event(deadline - self.clock.now())
            if event is None:
                raise Hangup("no-answer")
            if event[0] == "answer":
                break
            if event[0] == "reject":
                raise Hangup("busy")
        self.answer()

    def answer(self) -> None:
        call = self.call
        with self.carrier.lock:
            if call.answered_at is not None or call.ended:
                return
            call.status = "in-progress"
            call.answered_at = self.clock.now()
            call.start_time = self.clock.wall()
            call.date_updated = call.start_time
        if call.record and self.capture is None:
            self.capture, self.capture_start = [], self.clock.now()
        self.carrier.status_callback(call, "answered")

    def finish(self, status: str) -> None:
        call = self.call
        with self.carrier.lock:
            if call.ended:
                return
            call.status = status
            call.ended_at = self.clock.now()
            call.end_time = self.clock.wall()
            call.date_updated = call.end_time
            call.activity = "ended"
            call.gather_options = None
            peer, call.bridge = call.bridge, None
        if peer is not None:
            peer.mailbox.post(("bridge_end", call))
        if call.record:
            from .recording import finish_call_recording

            finish_call_recording(self)
        self.carrier.status_callback(call, "completed")

    # -- documents --------------------------------------------------------------------------
    def run_flow(self, request: Request, end_hangs_up: bool = True) -> None:
        """Fetch and execute documents until one ends (then hang up, unless told otherwise)."""
        while True:
            try:
                self.execute(self._load_then_notify(request))
            except Transfer as moved:
                request = moved.request
                continue
            if end_hangs_up:
                raise Hangup("completed")
            return

    def _load_then_notify(self, request: Request) -> ET.Element:
        """``load``; then the callback the request carries, if any (fetched or failed)."""
        try:
            return self.load(request)
        finally:
            if request.then is not None:
                self.carrier.post_callback(*request.then)

    def resolve(self, url: str | None) -> str | None:
        if not url:
            return None
        url = url.strip()
        return urljoin(self.doc_url, url) if self.doc_url else url

    def fetch(self, url: str, method: str, params: dict[str, str]) -> ET.Element:
        response = self.carrier.webhooks.send(url, method, params)
        try:
            return twiml.parse(response.content)
        except CarrierError as exc:
            exc.url = url
            raise

    def load(self, request: Request) -> ET.Element:
        """The next document; on failure the fallback URL, else the generic error message."""
        call = self.call
        self.churn += 1
        if self.churn > MAX_DOCUMENTS_WITHOUT_WAITING:
            self.carrier.log_error(
                12400, "too many documents without any wait (redirect loop)", request.url, call.sid
            )
            self.generic_error()
        if request.twiml is not None:
            try:
                return twiml.parse(request.twiml)
            except CarrierError as exc:
                self.carrier.log_error(exc.code, exc.message, None, call.sid)
                self.generic_error()
        if not request.url:
            self.carrier.log_error(11200, "HTTP retrieval failure: no URL", None, call.sid)
            self.generic_error()
        params = self.carrier.call_params(call)
        params.update(request.extra)
        try:
            doc = self.fetch(request.url, request.method, params)
            self.doc_url = split_fragment(request.url)[0]
            return doc
        except CarrierError as exc:
            self.carrier.log_error(exc.code, exc.message, request.url, call.sid)
            if request.fallback and call.fallback_url:
                params["ErrorCode"] = str(exc.code)
                params["ErrorUrl"] = split_fragment(request.url)[0]
                try:
                    doc = self.fetch(call.fallback_url, call.fallback_method, params)
                    self.doc_url = split_fragment(call.fallback_url)[0]
                    return doc
                except CarrierError as again:
                    self.carrier.log_error(again.code, again.message, call.fallback_url, call.sid)
            self.generic_error()
        raise AssertionError("unreachable")

    def generic_error(self) -> None:
        """What a caller hears when the app fails: Twilio's apology, then the call ends."""
        self.answer()
        seconds = estimate_speech_seconds(GENERIC_ERROR_TEXT)
        heard = Heard(
            "say", GENERIC_ERROR_TEXT, "en-US", "woman", seconds=seconds, source="carrier"
        )
        self.play_media(heard, seconds)
        raise Hangup("completed")

    def execute(self, root: ET.Element) -> None:
        for verb in root:
            self.run_verb(verb)

    def run_verb(self, verb: ET.Element) -> None:
        tag = verb.tag
        allowed = ALLOWED_IN.get(self.context or "")
        if allowed is not None and tag not in allowed:
            self.carrier.log_error(
                12200, f"<{tag}> is not allowed here ({self.context})", self.doc_url, self.call.sid
            )
            return
        if tag in twiml.IGNORED_VERBS:
            self.carrier.log_error(
                0, f"emulator ignores <{tag}>", self.doc_url, self.call.sid, "WARNING"
            )
            return
        if tag != "Reject" and not (tag == "Dial" and attr_bool(verb, "answerOnBridge", False)):
            self.answer()
        handler = getattr(self, "verb_" + tag.lower())
        handler(verb)

    # -- waiting and events -----------------------------------------------------------------
    def next_event(self, timeout: float | None) -> tuple | None:
        """Wait for the next event; hang-ups and REST redirects are raised, not returned."""
        event = self.call.mailbox.get(timeout)
        if timeout is None or timeout > 0:
            self.churn = 0
        if event is None:
            return None
        kind = event[0]
        if kind == "hangup":
            raise Hangup("completed" if self.call.answered_at is not None else "canceled", "caller")
        if kind == "end":
            raise Hangup(event[1], "api")
        if kind == "redirect":
            raise Transfer(Request(event[1], event[2], twiml=event[3]), from_rest=True)
        return event

    def handle_event(self, event: tuple) -> None:
        """An event the current verb does not consume."""
        kind = event[0]
        if kind == "speech":
            self.relay_speech(event)
        elif kind == "dequeue" and self.call.queue is not None:
            raise Dequeued(event[1], event[2], event[3])
        elif kind == "conf_started" and self.context == "conference-wait":
            raise ConferenceStarted()
        elif kind in ("conf_end", "kick") and self.call.conference is not None:
            raise ConferenceLeft(kind)

    def relay_speech(self, event: tuple) -> None:
        """The caller talks outside Gather/Record: the other party hears it, recordings keep it."""
        call = self.call
        text, audio = event[1], event[3]
        source = call.device.address if call.device else call.from_
        if self.capture is not None:
            self.capture.append((self.clock.now() - self.capture_start, audio))
        peer = call.bridge
        if peer is not None:
            self.hear_on(peer, Heard("voice", text, source=source, seconds=event[2]))
            peer_runner = getattr(peer, "runner", None)
            if peer_runner is not None and peer_runner.capture is not None:
                offset = self.clock.now() - peer_runner.capture_start
                peer_runner.capture.append((offset, audio))
        if call.conference is not None:
            from .conferences import relay

            relay(self, event)

    def hear(self, heard: Heard) -> None:
        self.hear_on(self.call, heard)

    def hear_on(self, call: Call, heard: Heard) -> None:
        with self.carrier.lock:
            call.heard.append(_stamp(heard, self.clock.now()))

    def wait_media(
        self, seconds: float, stop_on: Callable[[tuple], bool] | None = None
    ) -> tuple | None:
        """Let ``seconds`` of media play; return an input event that interrupts it, if any."""
        end = self.clock.now() + seconds
        while True:
            remaining = end - self.clock.now()
            if remaining <= 1e-9:
                return None
            event = self.next_event(remaining)
            if event is None:
                continue
            if stop_on is not None and stop_on(event):
                return event
            self.handle_event(event)

    def play_media(
        self, heard: Heard, seconds: float, stop_on: Callable[[tuple], bool] | None = None
    ) -> tuple | None:
        previous = self.call.activity
        if not self.call.on_hold:  # in a queue or conference the call stays "queue"/"conference"
            self.call.activity = "media"
        self.hear(heard)
        try:
            return self.wait_media(seconds, stop_on)
        finally:
            if self.call.activity == "media":
                self.call.activity = previous

    # -- simple verbs -----------------------------------------------------------------------
    def verb_say(self, el: ET.Element, stop_on=None) -> tuple | None:
        text = text_of(el)
        loop = attr_int(el, "loop", 1)
        seconds = estimate_speech_seconds(text) * (loop if loop > 0 else LOOP_FOREVER)
        heard = Heard(
            "say",
            text,
            el.get("language", "en-US"),
            el.get("voice", "man"),
            loop=loop,
            seconds=seconds,
        )
        return self.play_media(heard, seconds, stop_on)

    def verb_play(self, el: ET.Element, stop_on=None) -> tuple | None:
        loop = attr_int(el, "loop", 1)
        digits = el.get("digits")
        if digits:
            seconds = 0.5 * len(digits)
            return self.play_media(Heard("play", digits=digits, seconds=seconds), seconds, stop_on)
        url = self.resolve(text_of(el)) or ""
        seconds = self.carrier.media_length(url) * (loop if loop > 0 else LOOP_FOREVER)
        return self.play_media(Heard("play", url=url, loop=loop, seconds=seconds), seconds, stop_on)

    def verb_pause(self, el: ET.Element, stop_on=None) -> tuple | None:
        seconds = float(attr_int(el, "length", 1))
        return self.play_media(Heard("pause", seconds=seconds), seconds, stop_on)

    def verb_redirect(self, el: ET.Element) -> None:
        url = self.resolve(text_of(el)) or self.doc_url
        raise Transfer(Request(url, attr_method(el)))

    def verb_hangup(self, el: ET.Element) -> None:
        raise Hangup("completed")

    def verb_reject(self, el: ET.Element) -> None:
        reason = el.get("reason", "rejected")
        self.hear(Heard("tone", text="busy" if reason == "busy" else "rejected"))
        if self.call.answered_at is not None:
            raise Hangup("completed")
        raise Hangup("busy" if reason == "busy" else "no-answer")

    def verb_leave(self, el: ET.Element) -> None:
        if self.context == "queue":
            raise LeaveQueue()

    def verb_gather(self, el: ET.Element) -> None:
        from .gather import gather

        gather(self, el)

    def verb_record(self, el: ET.Element) -> None:
        from .recording import record

        record(self, el)

    def verb_enqueue(self, el: ET.Element) -> None:
        from .queues import enqueue

        enqueue(self, el)

    def verb_dial(self, el: ET.Element) -> None:
        from .dialing import dial

        dial(self, el)


ALLOWED_IN = {
    "queue": {"Play", "Say", "Pause", "Hangup", "Redirect", "Leave", "Gather"},
    "conference-wait": {"Play", "Say", "Pause", "Redirect"},
    "dequeue-url": {"Play", "Say", "Pause", "Redirect"},
    "whisper": {"Play", "Say", "Pause", "Gather", "Hangup", "Redirect"},
}


def _stamp(heard: Heard, at: float) -> Heard:
    values = dict(heard.__dict__)
    values["at"] = round(at, 3)
    return Heard(**values)
