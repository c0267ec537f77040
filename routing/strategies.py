"""The routing vocabulary: strategies, presences, and the values the routing core takes and gives.

Handler level comes before the strategy: among the handlers who may take a caller, the lowest
level is offered first, and only then does the strategy pick within that level. A caller's own
languages are tried before the languages handlers take only as a fallback.

==================  ==============================================================================
longest-idle        the handler idle longest: their last call's end (or the last offer they let
                    go), else the time they became available; ties by id
round-robin         the next handler by ``order`` after the one offered last (remembered across
                    dispatches, shared by all workers), cycling back to the top
fewest-calls        fewest calls completed today, then longest idle
least-talk-time     least talk time today (whole seconds), then longest idle
ring-all            every eligible available handler of the best level at once (at most
                    ``ring_all_max``, by ``order``); the first accept wins, the others are released
random              uniform among the best level, from a seed the client passes (Redis < 7 scripts
                    must be deterministic)
linear              by ``order``, from the top every time
==================  ==============================================================================

"Today" is the UTC day shifted by ``stats_utc_offset_s``.
"""

from __future__ import annotations

from dataclasses import dataclass

from settings import MAX_CHAT_CAPACITY  # noqa: F401 (the core checks its capacities against it)
from settings import ROUTING_STRATEGIES as STRATEGIES  # one list: settings validates against it

#: what a handler (or supervisor) may set; "offered" and "on_call" are set by the core itself
SETTABLE_PRESENCES: tuple[str, ...] = ("offline", "available", "break", "wrap_up")
PRESENCES: tuple[str, ...] = (*SETTABLE_PRESENCES, "offered", "on_call")

#: a caller's states inside the core; a caller the core does not know is ``None``
CALLER_STATES: tuple[str, ...] = ("waiting", "offered", "connected")

#: what waits in the core: calls, and conversations (SMS, WhatsApp, Telegram)
CHANNELS: tuple[str, ...] = ("voice", "chat")


def check_strategy(name: str) -> str:
    """``name`` if it is a known strategy, else ``ValueError`` naming the known ones."""
    if name not in STRATEGIES:
        raise ValueError(f"unknown routing strategy {name!r}; known: {', '.join(STRATEGIES)}")
    return name


class QueueFull(Exception):
    """``max_queue`` callers already wait: send this one to the overflow (message box)."""


class UnknownHandler(KeyError):
    """No profile for this handler id: ``upsert_handler`` it first."""


@dataclass(frozen=True)
class HandlerProfile:
    """Who a handler is for routing. ``level``: lower is offered first (0-99); ``order``: for
    linear, round-robin and ring-all (0 to 10**9); ``fallback_languages``: taken only from
    callers who waited ``language_fallback_after_s``."""

    handler_id: str
    languages: tuple[str, ...]
    skills: tuple[str, ...]  # inquiry kinds: surrender, family, pow_info, other
    level: int = 1
    order: int = 0
    fallback_languages: tuple[str, ...] = ()


@dataclass(frozen=True)
class Offer:
    """``channel`` "voice": place offer calls for ``caller_id`` to ``handler_ids`` (several only
    under ring-all). ``channel`` "chat": conversation ``caller_id`` is offered to
    ``handler_ids`` in the console (``RoutingCore.chat_load``), answered by ``accept_chat`` /
    ``decline_chat``; no call is placed."""

    caller_id: str
    handler_ids: tuple[str, ...]
    language_fallback: bool
    waited_s: float
    channel: str = "voice"


@dataclass(frozen=True)
class AcceptResult:
    """``won``: this handler has the caller. ``released``: cancel their offer calls."""

    won: bool
    released: tuple[str, ...] = ()
    waited_s: float | None = None
    offers: tuple[Offer, ...] = ()


@dataclass(frozen=True)
class DeclineResult:
    """``applied`` False: no such pending offer (nothing changed)."""

    applied: bool
    handler_presence: str | None = None  # "available", or "break" after max_misses
    caller_state: str | None = None  # "waiting" again, or still "offered" to others
    offers: tuple[Offer, ...] = ()
    #: conversations whose offers to this handler a break took back (``decline_chat``)
    withdrawn_chats: tuple[str, ...] = ()


@dataclass(frozen=True)
class RemovedCaller:
    """``previous`` state; ``handler_ids``: cancel their offer calls (they are available again).

    A connected caller is not removed (``removed`` False, ``handler_ids`` = the handler on the
    call): end that call with ``complete``.
    """

    previous: str | None
    handler_ids: tuple[str, ...] = ()
    removed: bool = False
    offers: tuple[Offer, ...] = ()


@dataclass(frozen=True)
class Requeued:
    """Truthy when the caller waits again; ``released``: handlers whose offer calls to cancel."""

    requeued: bool
    released: tuple[str, ...] = ()
    offers: tuple[Offer, ...] = ()

    def __bool__(self) -> bool:
        return self.requeued


@dataclass(frozen=True)
class Completed:
    """Truthy when the call was counted; ``presence``: the handler's presence now."""

    done: bool
    presence: str | None = None
    offers: tuple[Offer, ...] = ()

    def __bool__(self) -> bool:
        return self.done


@dataclass(frozen=True)
class PresenceChange:
    """``withdrawn``: the caller whose offer to this handler was withdrawn (cancel that call).
    ``deferred``: the handler is on a call; offline/break applies when their wrap-up ends."""

    previous: str | None
    current: str | None
    withdrawn: str | None = None
    deferred: bool = False
    offers: tuple[Offer, ...] = ()
    #: conversations whose pending offers to this handler were taken back (break, offline,
    #: wrap_up); their open conversations stay theirs
    withdrawn_chats: tuple[str, ...] = ()


@dataclass(frozen=True)
class ChatLoad:
    """A handler's conversations: ``open`` (accepted, theirs until ``end_chat``) and
    ``offered`` (waiting for their accept in the console); both count towards the capacity."""

    open: tuple[str, ...] = ()
    offered: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.open) + len(self.offered)


#: ``end_chat``'s answer: truthy when the conversation was closed (the same shape as a call's).
ChatEnded = Completed


@dataclass(frozen=True)
class ExpiredChats:
    """``expired``: (conversation, handler) offers counted as missed; ``breaks``: the handlers
    these misses sent to a break (their row must follow); ``withdrawn_chats``: the other
    conversations whose offers such a break took back."""

    expired: tuple[tuple[str, str], ...] = ()
    breaks: tuple[str, ...] = ()
    withdrawn_chats: tuple[str, ...] = ()
    offers: tuple[Offer, ...] = ()
