"""What the emulated carrier knows: numbers, calls, recordings, queues, conferences, messages."""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .clock import Mailbox
    from .phones import Phone as Device

API_VERSION = "2010-04-01"
FINAL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})


def new_sid(prefix: str) -> str:
    """A Twilio-style SID: two letters and 32 lowercase hex digits."""
    return prefix + secrets.token_hex(16)


def rfc2822(moment: datetime | None) -> str | None:
    """Dates as Twilio's 2010 API renders them: 'Tue, 31 Aug 2010 20:36:28 +0000'."""
    if moment is None:
        return None
    return format_datetime(moment).replace("-0000", "+0000")


@dataclass(frozen=True)
class Heard:
    """One thing a phone heard, in order: a Say, a Play, a pause, a beep, the other party."""

    kind: str  # say | play | pause | beep | voice | ringing | hold | error | tone
    text: str | None = None
    language: str | None = None
    voice: str | None = None
    url: str | None = None
    digits: str | None = None
    seconds: float = 0.0
    loop: int = 1
    at: float = 0.0
    source: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class Number:
    """An IncomingPhoneNumber and its webhooks."""

    sid: str
    account_sid: str
    phone_number: str
    voice_url: str | None = None
    voice_method: str = "POST"
    voice_fallback_url: str | None = None
    voice_fallback_method: str = "POST"
    status_callback: str | None = None
    status_callback_method: str = "POST"
    sms_url: str | None = None
    sms_method: str = "POST"
    sms_fallback_url: str | None = None
    sms_fallback_method: str = "POST"
    friendly_name: str = ""
    date_created: datetime | None = None
    date_updated: datetime | None = None


@dataclass
class Call:
    """One call leg as Twilio tracks it, plus the emulator's view of what is going on."""

    sid: str
    account_sid: str
    from_: str
    to: str
    direction: str  # inbound | outbound-api | outbound-dial
    mailbox: Mailbox
    device: Device | None = None
    parent_call_sid: str | None = None
    phone_number_sid: str | None = None
    status: str = "queued"
    date_created: datetime | None = None
    date_updated: datetime | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    answered_at: float | None = None  # clock seconds
    ended_at: float | None = None
    url: str | None = None
    method: str = "POST"
    twiml: str | None = None
    fallback_url: str | None = None
    fallback_method: str = "POST"
    status_callback: str | None = None
    status_callback_method: str = "POST"
    status_callback_events: frozenset[str] = frozenset({"completed"})
    timeout: int = 60
    record: bool = False
    recording_status_callback: str | None = None
    recording_status_callback_method: str = "POST"
    caller_name: str | None = None
    forwarded_from: str | None = None
    heard: list[Heard] = field(default_factory=list)
    activity: str = "starting"
    on_hold: bool = False  # in a queue or a conference: its media never "ends" by itself
    bridge: Call | None = None
    conference: Conference | None = None
    queue: Queue | None = None
    join_conference: dict | None = None  # for calls created to add a conference participant
    sequence: int = 0
    queue_time: int = 0
    gather_options: dict | None = None  # the Gather now listening, for tests to inspect
    runner: Any = None
    #: Deleted over REST (``DELETE Calls/{Sid}.json``): gone from the API, kept for the phones.
    deleted: bool = False

    @property
    def ended(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def duration(self) -> int:
        if self.answered_at is None:
            return 0
        end = self.ended_at
        if end is None:
            return 0
        return max(0, round(end - self.answered_at))


@dataclass
class Recording:
    sid: str
    account_sid: str
    call_sid: str
    source: str  # RecordVerb | DialVerb | OutboundAPI | Conference
    status: str = "in-progress"
    conference_sid: str | None = None
    duration: int = -1
    channels: int = 1
    wav: bytes | None = None
    mp3: bytes | None = None
    date_created: datetime | None = None
    start_time: datetime | None = None
    error_code: int | None = None
    deleted: bool = False


@dataclass
class QueueMember:
    call: Call
    enqueued_at: float
    date_enqueued: datetime
    dequeued_by: Call | None = None


@dataclass
class Queue:
    sid: str
    account_sid: str
    friendly_name: str
    max_size: int = 1000
    members: list[QueueMember] = field(default_factory=list)
    waiting_dialers: list[Call] = field(default_factory=list)
    wait_times: list[float] = field(default_factory=list)
    date_created: datetime | None = None
    date_updated: datetime | None = None

    def position(self, call: Call) -> int:
        for index, member in enumerate(self.members):
            if member.call is call:
                return index + 1
        return 0

    def average_wait(self) -> int:
        if not self.wait_times:
            return 0
        return round(sum(self.wait_times) / len(self.wait_times))


@dataclass
class Participant:
    call: Call
    conference: Conference
    muted: bool = False
    hold: bool = False
    coaching: bool = False
    call_sid_to_coach: str | None = None
    start_conference_on_enter: bool = True
    end_conference_on_exit: bool = False
    beep: bool = True
    label: str | None = None
    status: str = "connected"
    date_created: datetime | None = None
    date_updated: datetime | None = None


@dataclass
class Conference:
    sid: str
    account_sid: str
    friendly_name: str
    status: str = "init"  # init | in-progress | completed
    participants: list[Participant] = field(default_factory=list)
    callbacks: list[tuple[str, str, frozenset[str]]] = field(default_factory=list)
    record: bool = False
    recording_callback: str | None = None
    recording_segments: list = field(default_factory=list)
    started_at: float | None = None
    date_created: datetime | None = None
    date_updated: datetime | None = None
    reason_ended: str | None = None
    sequence: int = 0
    joined_once: bool = False  # the first participant joined (and set the status callback)

    def participant(self, call_sid: str) -> Participant | None:
        for part in self.participants:
            if part.call.sid == call_sid:
                return part
        return None


@dataclass
class Message:
    sid: str
    account_sid: str
    from_: str
    to: str
    body: str
    direction: str
    status: str = "queued"
    media_urls: list[str] = field(default_factory=list)
    status_callback: str | None = None
    date_created: datetime | None = None
    date_sent: datetime | None = None
    messaging_service_sid: str | None = None
    date_updated: datetime | None = None
    num_segments: int = 1
    content_sid: str | None = None
    error_code: int | None = None
    error_message: str | None = None
    #: Deleted over REST: gone from the API (and its media with it).
    deleted: bool = False


@dataclass
class Media:
    """A message's media item (``ME…``): bytes for inbound media, a URL for outbound."""

    sid: str
    account_sid: str
    message_sid: str
    content_type: str
    data: bytes | None
    url: str | None
    date_created: datetime | None = None
    deleted: bool = False


@dataclass
class DebugEvent:
    """One entry of the debugger log (Twilio's Console > Monitor > Errors)."""

    code: int
    message: str
    url: str | None
    call_sid: str | None
    at: float = 0.0
    level: str = "ERROR"

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Store:
    """All resources of one emulated account, guarded by the clock's lock."""

    def __init__(self, account_sid: str, lock: threading.RLock) -> None:
        self.account_sid = account_sid
        self.lock = lock
        self.numbers: dict[str, Number] = {}  # by phone number
        self.calls: dict[str, Call] = {}
        self.recordings: dict[str, Recording] = {}
        self.queues: dict[str, Queue] = {}  # by sid
        self.conferences: dict[str, Conference] = {}
        self.messages: dict[str, Message] = {}
        self.media: dict[str, Media] = {}
        self.debugger: list[DebugEvent] = []

    def number_by_sid(self, sid: str) -> Number | None:
        return next((n for n in self.numbers.values() if n.sid == sid), None)

    def queue_by_name(self, name: str) -> Queue | None:
        return next((q for q in self.queues.values() if q.friendly_name == name), None)

    def live_conference(self, name: str) -> Conference | None:
        return next(
            (
                c
                for c in self.conferences.values()
                if c.friendly_name == name and c.status != "completed"
            ),
            None,
        )
