"""Control flow between verbs: the next document, a hang-up, queue and conference exits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .state import Call


@dataclass
class Request:
    """A TwiML document to run next: a URL to fetch, or inline TwiML."""

    url: str | None
    method: str = "POST"
    extra: dict[str, str] = field(default_factory=dict)
    twiml: str | None = None
    fallback: bool = True
    #: A callback ``(key, url, method, params)`` posted once this document was fetched: the
    #: Enqueue action of a call redirected out of its queue, when the emulator is told to
    #: request it after the new URL (``Emulator.queue_redirect_action = "after"``).
    then: tuple[str, str, str, dict[str, str]] | None = None


class Hangup(Exception):
    """The call leg is over, with this final status."""

    def __init__(self, status: str = "completed", by: str = "twiml") -> None:
        super().__init__(status)
        self.status = status
        self.by = by


class Transfer(Exception):
    """Control moves to another document (an action, a Redirect, or a REST update)."""

    def __init__(self, request: Request, from_rest: bool = False) -> None:
        super().__init__(request.url)
        self.request = request
        self.from_rest = from_rest


class LeaveQueue(Exception):
    """<Leave> ran while the call waited in a queue."""


class Dequeued(Exception):
    """Another call's <Dial><Queue> picked this queued call."""

    def __init__(self, agent: Call, url: str | None, method: str) -> None:
        super().__init__(agent.sid)
        self.agent, self.url, self.method = agent, url, method


class ConferenceStarted(Exception):
    """The conference this call waits in has started."""


class ConferenceLeft(Exception):
    """The conference ended, or the participant was removed."""
