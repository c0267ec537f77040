"""The handler-choice strategies and presences the routing core knows, in the hotline's words.

Handler level comes before the strategy: among the handlers who may take a caller, the lowest
level is offered first, and only then does the strategy pick within that level. A caller's own
languages are tried before the languages handlers take only as a fallback (see ``RoutingCore``).

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

"Today" is the UTC day shifted by ``stats_utc_offset_s``; the first event of a new day zeroes
every handler's calls and talk time.
"""

from __future__ import annotations

STRATEGIES: tuple[str, ...] = (
    "longest-idle",
    "round-robin",
    "fewest-calls",
    "least-talk-time",
    "ring-all",
    "random",
    "linear",
)

#: what a handler (or supervisor) may set; "offered" and "on_call" are set by the core itself
SETTABLE_PRESENCES: tuple[str, ...] = ("offline", "available", "break", "wrap_up")
PRESENCES: tuple[str, ...] = (*SETTABLE_PRESENCES, "offered", "on_call")

#: a caller's states inside the core; a caller the core does not know is ``None``
CALLER_STATES: tuple[str, ...] = ("waiting", "offered", "connected")


def check_strategy(name: str) -> str:
    """``name`` if it is a known strategy, else ``ValueError`` naming the known ones."""
    if name not in STRATEGIES:
        raise ValueError(f"unknown routing strategy {name!r}; known: {', '.join(STRATEGIES)}")
    return name
