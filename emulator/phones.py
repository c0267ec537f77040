"""Phones for tests and benchmarks: dial, press, say, hear, answer, reject, hang up.

Every action returns at quiescence: the emulator has processed it, every webhook it caused
has been answered, and every call is waiting again (for input, for time, or ended). With
``listen=True`` (the default) an action on a virtual clock also lets the acted-on call's own
prompts play out: virtual time advances until that call waits for the caller (a Gather
listening, a Record, a queue, a bridge, ringing) or ends. Pass ``listen=False`` to act in the
middle of a prompt (barge-in).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import audio
from .runner import MEDIA_ACTIVITIES
from .state import Call, Heard

if TYPE_CHECKING:
    from .carrier import Carrier

LISTEN_LIMIT = 600.0


class PhoneCall:
    """One call as seen from a phone: the caller's leg, or an incoming leg at a handler."""

    def __init__(self, phone: Phone, call: Call) -> None:
        self.phone = phone
        self._call = call
        self._carrier = phone.carrier

    def __repr__(self) -> str:
        return f"<PhoneCall {self.sid} {self.from_}->{self.to} {self.status}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PhoneCall) and other._call is self._call

    def __hash__(self) -> int:
        return hash(self._call.sid)

    # -- what the call is -------------------------------------------------------------------
    @property
    def sid(self) -> str:
        return self._call.sid

    @property
    def status(self) -> str:
        return self._call.status

    @property
    def direction(self) -> str:
        return self._call.direction

    @property
    def from_(self) -> str:
        return self._call.from_

    @property
    def to(self) -> str:
        return self._call.to

    @property
    def parent_call_sid(self) -> str | None:
        return self._call.parent_call_sid

    @property
    def activity(self) -> str:
        """What the leg is doing: media, gather, record, ringing, dial, bridged, queue, ..."""
        return self._call.activity

    @property
    def ended(self) -> bool:
        return self._call.ended

    @property
    def gather_options(self) -> dict | None:
        """The attributes of the Gather now listening on this call (None when not gathering)."""
        return self._call.gather_options

    @property
    def heard(self) -> list[Heard]:
        """Everything this phone heard so far, in order."""
        with self._carrier.lock:
            return list(self._call.heard)

    def said_texts(self) -> list[str]:
        """The text of every <Say> heard, in order."""
        return [h.text for h in self.heard if h.kind == "say" and h.text is not None]

    def played_urls(self) -> list[str]:
        return [h.url for h in self.heard if h.kind == "play" and h.url]

    def voices_heard(self) -> list[str]:
        """What the other party (bridge or conference) said to this phone."""
        return [h.text for h in self.heard if h.kind == "voice" and h.text is not None]

    # -- actions ----------------------------------------------------------------------------
    def _act(self, event: tuple | None, listen: bool) -> PhoneCall:
        if event is not None:
            self._call.mailbox.post(event)
        self._carrier.clock.settle_since()
        if listen:
            self.listen()
        return self

    def listen(self, max_seconds: float = LISTEN_LIMIT) -> PhoneCall:
        """Virtual clock: advance until this call waits for the caller (or has ended)."""
        call = self._call
        clock = self._carrier.clock
        if clock.virtual:
            clock.advance_until(
                lambda: call.ended or call.on_hold or call.activity not in MEDIA_ACTIVITIES,
                max_seconds,
            )
        return self

    def press(self, digits: str, *, listen: bool = True) -> PhoneCall:
        """Press keys (DTMF)."""
        return self._act(("digits", str(digits)), listen)

    def say(
        self,
        text: str,
        *,
        language: str | None = None,
        confidence: float = 0.92,
        listen: bool = True,
    ) -> PhoneCall:
        """Speak: a Gather gets SpeechResult/Confidence, a Record gets real audio of it."""
        spoken = audio.speech(text, language)
        seconds = audio.seconds_of(spoken)
        return self._act(("speech", text, seconds, spoken, confidence, language), listen)

    def speak_for(self, seconds: float, *, listen: bool = True) -> PhoneCall:
        """Make unintelligible sound for ``seconds`` (recorded as noise)."""
        noise = audio.noise(seconds)
        return self._act(("speech", "", seconds, noise, 0.0, None), listen)

    def wait(self, seconds: float) -> PhoneCall:
        """Let time pass (virtual clock: instantly, firing due timeouts in order)."""
        self._carrier.clock.advance(seconds)
        return self

    def hang_up(self) -> PhoneCall:
        if self._call.ended:
            return self
        ringing_here = self._call.direction != "inbound" and self._call.activity == "ringing"
        return self._act(("reject",) if ringing_here else ("hangup",), listen=False)

    def answer(self, *, listen: bool = True) -> PhoneCall:
        """Answer this incoming (ringing) call."""
        return self._act(("answer",), listen)

    def reject(self) -> PhoneCall:
        """Decline this incoming call (the dialer sees busy)."""
        return self._act(("reject",), listen=False)

    def wait_until_finished(self, max_seconds: float = 3600.0) -> str:
        """Advance time until the call ends (or ``max_seconds`` pass); its status."""
        clock = self._carrier.clock
        call = self._call
        if clock.virtual:
            if not clock.advance_until(lambda: call.ended, max_seconds):
                clock.advance(0)
        else:
            clock.advance_until(lambda: call.ended, max_seconds)
        return call.status


class Phone:
    """A phone number or browser client (``client:alice``) that places and takes calls."""

    def __init__(self, carrier: Carrier, address: str) -> None:
        self.carrier = carrier
        self.address = address
        self.legs: list[Call] = []
        self.messages: list[dict] = []
        #: The handset's own copy of its text thread, sent and received, in order: what its
        #: screen shows even after the carrier's copy is redacted or deleted.
        self.thread: list[dict] = []

    def __repr__(self) -> str:
        return f"<Phone {self.address}>"

    def dial(self, to: str, *, listen: bool = True) -> PhoneCall:
        """Call a number of the emulated account (its voice URL answers)."""
        call = self.carrier.inbound_call(self.address, to, self)
        return PhoneCall(self, call)._act(None, listen)

    def calls(self) -> list[PhoneCall]:
        with self.carrier.lock:
            return [PhoneCall(self, leg) for leg in self.legs]

    def ringing(self) -> list[PhoneCall]:
        """Incoming calls ringing at this phone now."""
        with self.carrier.lock:
            return [
                PhoneCall(self, leg)
                for leg in self.legs
                if leg.direction != "inbound" and leg.activity == "ringing" and not leg.ended
            ]

    def wait_for_ring(self, max_seconds: float = 120.0) -> PhoneCall:
        """Advance time until a call rings here; that call (AssertionError if none comes)."""
        self.carrier.clock.settle()
        self.carrier.clock.advance_until(lambda: bool(self.ringing()), max_seconds)
        found = self.ringing()
        if not found:
            raise AssertionError(f"no call rang at {self.address} within {max_seconds}s")
        return found[0]

    def _pick(self, call: PhoneCall | None) -> PhoneCall:
        if call is not None:
            return call
        found = self.ringing()
        if not found:
            raise AssertionError(f"nothing is ringing at {self.address}")
        return found[0]

    def answer(self, call: PhoneCall | None = None, *, listen: bool = True) -> PhoneCall:
        """Answer the given (or the first) ringing call."""
        return self._pick(call).answer(listen=listen)

    def reject(self, call: PhoneCall | None = None) -> PhoneCall:
        return self._pick(call).reject()

    def send_sms(self, to: str, body: str) -> str:
        """Text a number of the emulated account; its SMS URL gets the webhook. The MessageSid."""
        from .messages import inbound_message

        sid = inbound_message(self.carrier, self.address, to, body)
        self.carrier.clock.settle()
        return sid
