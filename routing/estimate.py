"""The wait announced to a caller in the queue: from their place, the handlers on duty who can
take them, where each handler is in their current call, and how long calls take lately.

Each handler on duty for the caller (their language and topic) comes free at a time we can
estimate from the database: a free handler now; one in wrap-up when it ends (the call's end
plus their ``wrap_up_s``); one in a conversation when the recent mean talk time is over (at
least a little more), plus their wrap-up; one being offered a call after a whole call. After
that, each handler takes the next caller for a whole *handling time*: ring, talk, wrap-up
(means of the last calls). The caller at place ``p`` is connected when the ``p``-th handler
comes free in that order, plus the ring. Not Asterisk's average of recent waits, which says
"about one minute" to the fifth caller and to the five-hundredth alike in a surge.
"""

from __future__ import annotations

import datetime as dt
import heapq
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from inquiries.models import QUEUE_EVENT_TERM, CallEvent
from routing.handover import handlers_on_duty
from routing.models import Offer, QueueEntry

#: How many recent calls the handling time is averaged over.
HANDLING_SAMPLES = 20
#: A conversation already longer than the mean is taken to last this share of it more.
OVERRUN_SHARE = 0.25

_event = CallEvent.__table__
_entry = QueueEntry.__table__
_offer = Offer.__table__


@dataclass(frozen=True)
class Handling:
    """Means over the last calls handled, in seconds."""

    ring_s: float
    talk_s: float
    wrap_up_s: float

    @property
    def total_s(self) -> float:
        return self.ring_s + self.talk_s + self.wrap_up_s


def expected_wait_s(position: int, free_in_s: Sequence[float], handling: Handling) -> float | None:
    """Seconds until the caller at ``position`` (1-based) is connected, given when each handler
    on duty for them comes free; None when nobody can take them."""
    if position <= 0 or not free_in_s:
        return None
    heap = [max(0.0, t) for t in free_in_s]
    heapq.heapify(heap)
    free_at = 0.0
    for _ in range(position):  # the callers ahead take the first handlers to come free
        free_at = heapq.heappop(heap)
        heapq.heappush(heap, free_at + handling.total_s)
    return free_at + handling.ring_s


def recent_handling(conn: Session) -> Handling | None:
    """Ring, talk and wrap-up means of the last calls handled; None before the first (nothing
    honest to announce yet)."""
    completed = conn.execute(
        select(_event.c.data)
        .where(_event.c.event.in_(("COMPLETECALLER", "COMPLETEAGENT")), QUEUE_EVENT_TERM)
        .order_by(_event.c.time.desc(), _event.c.id.desc())
        .limit(HANDLING_SAMPLES)
    ).all()
    if not completed:
        return None
    connected = conn.execute(
        select(_event.c.data)
        .where(_event.c.event == "CONNECT", QUEUE_EVENT_TERM)
        .order_by(_event.c.time.desc(), _event.c.id.desc())
        .limit(HANDLING_SAMPLES)
    ).all()
    rings = [_seconds(d, "ringtime_s") for (d,) in connected]
    return Handling(
        ring_s=sum(rings) / len(rings) if rings else 0.0,
        talk_s=sum(_seconds(d, "calltime_s") for (d,) in completed) / len(completed),
        wrap_up_s=sum(_seconds(d, "wrapup_s") for (d,) in completed) / len(completed),
    )


def handlers_free_in_s(
    conn: Session, language: str, kind: str, handling: Handling, now: dt.datetime
) -> list[float]:
    """For each active handler on duty who takes ``language`` (own or fallback) and ``kind``:
    the seconds until they are free for the next caller."""
    wrap_up = {row.id: float(row.wrap_up_s or 0) for row in handlers_on_duty(conn, language, kind)}
    if not wrap_up:
        return []
    free_in = dict.fromkeys(wrap_up, 0.0)
    ids = list(wrap_up)
    busy = conn.execute(
        select(_entry.c.handler_id, _entry.c.state, _entry.c.connected_at, _entry.c.ended_at).where(
            _entry.c.handler_id.in_(ids),
            _entry.c.state.in_(("connected", "done")),
            (_entry.c.state != "done") | (_entry.c.ended_at >= now - dt.timedelta(hours=1)),
        )
    ).all()
    offered = conn.execute(
        select(_offer.c.handler_id).where(
            _offer.c.handler_id.in_(ids), _offer.c.state.in_(("placing", "ringing"))
        )
    ).all()
    for (handler_id,) in offered:  # a call is about to start: a whole one
        free_in[handler_id] = max(free_in[handler_id], handling.total_s + wrap_up[handler_id]
                                  - handling.wrap_up_s)  # fmt: skip
    for handler_id, state, connected_at, ended_at in busy:
        wrap = wrap_up[handler_id]
        if state == "connected" and connected_at is not None:
            talked = (now - _aware(connected_at)).total_seconds()
            left = max(handling.talk_s - talked, OVERRUN_SHARE * handling.talk_s) + wrap
        elif state == "done" and ended_at is not None:
            left = (_aware(ended_at) - now).total_seconds() + wrap
        else:
            continue
        free_in[handler_id] = max(free_in[handler_id], left)
    return list(free_in.values())


def estimated_wait_s(conn: Session, position: int, language: str, kind: str) -> float | None:
    """The wait to announce to the caller at ``position`` (see the module)."""
    handling = recent_handling(conn)
    if handling is None:
        return None
    now = dt.datetime.now(dt.UTC)
    return expected_wait_s(position, handlers_free_in_s(conn, language, kind, handling, now),
                           handling)  # fmt: skip


def announcement(seconds: float | None) -> tuple[str, dict[str, int]] | None:
    """The prompt key and its field: under a minute in seconds rounded to 5 (at least 5), under
    95 s rounded to 10; otherwise in whole minutes (at least 2). None: nothing to announce."""
    if seconds is None:
        return None
    if seconds < 57.5:
        return "queue_estimate_seconds", {"seconds": max(5, round(seconds / 5.0) * 5)}
    if seconds < 95:
        return "queue_estimate_seconds", {"seconds": round(seconds / 10.0) * 10}
    return "queue_estimate", {"minutes": max(2, int(seconds / 60 + 0.5))}


def _seconds(data: dict | None, key: str) -> float:
    value = (data or {}).get(key)
    return float(value) if isinstance(value, int | float) and value >= 0 else 0.0


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
