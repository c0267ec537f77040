"""The wait announced to a caller in the queue: from their place, the handlers on duty who can
take them, and how long a handler recently spent per call.

A handler on duty is busy with one caller after another; each call costs them, on average, the
recent *handling time*: the offer ringing until they accept, the conversation, their wrap-up.
With ``n`` such handlers all busy, the first to come free does so after about ``h / (n + 1)``
(the expected smallest of ``n`` remaining times spread evenly over ``h``), the ``k``-th after
``k·h / (n + 1)``; a caller further back than ``n`` waits a whole round ``h`` per ``n`` callers
ahead. So the caller at place ``p`` (1-based) waits about::

    (p - 1) // n · h  +  ((p - 1) % n + 1) · h / (n + 1)

Not Asterisk's average of recent waits, which says "about one minute" to the fifth caller and to
the five-hundredth alike in a surge.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from inquiries.models import QUEUE_EVENT_TERM, CallEvent
from routing.models import Handler

#: How many recent calls the handling time is averaged over.
HANDLING_SAMPLES = 20
ON_DUTY = ("available", "offered", "on_call", "wrap_up")

_event = CallEvent.__table__
_handler = Handler.__table__


def expected_wait_s(position: int, handlers: int, handling_s: float) -> float | None:
    """Seconds until the caller at ``position`` (1-based) is connected; None when nobody can
    take them (no handler on duty)."""
    if handlers <= 0 or position <= 0:
        return None
    rounds, place = divmod(position - 1, handlers)
    return rounds * handling_s + (place + 1) * handling_s / (handlers + 1)


def handlers_on_duty(conn: Session, language: str, kind: str) -> int:
    """Active handlers on duty who take ``language`` (own or fallback) and ``kind``."""
    rows = conn.execute(
        select(_handler.c.languages, _handler.c.fallback_languages, _handler.c.skills).where(
            _handler.c.active.is_(True), _handler.c.presence.in_(ON_DUTY)
        )
    ).all()
    return sum(
        1
        for languages, fallback, skills in rows
        if kind in (skills or ()) and language in (*(languages or ()), *(fallback or ()))
    )


def recent_handling_s(conn: Session) -> float | None:
    """The mean handling time (ring + talk + wrap-up) of the last calls handled; None before
    the first (nothing honest to announce yet)."""
    completed = conn.execute(
        select(_event.c.data)
        .where(_event.c.event.in_(("COMPLETECALLER", "COMPLETEAGENT")), QUEUE_EVENT_TERM)
        .order_by(_event.c.time.desc(), _event.c.id.desc())
        .limit(HANDLING_SAMPLES)
    ).all()
    connected = conn.execute(
        select(_event.c.data)
        .where(_event.c.event == "CONNECT", QUEUE_EVENT_TERM)
        .order_by(_event.c.time.desc(), _event.c.id.desc())
        .limit(HANDLING_SAMPLES)
    ).all()
    talks = [_seconds(d, "calltime_s") + _seconds(d, "wrapup_s") for (d,) in completed]
    rings = [_seconds(d, "ringtime_s") for (d,) in connected]
    if not talks:
        return None
    ring = sum(rings) / len(rings) if rings else 0.0
    return sum(talks) / len(talks) + ring


def estimated_wait_s(conn: Session, position: int, language: str, kind: str) -> float | None:
    """The wait to announce to the caller at ``position`` (see the module)."""
    handling_s = recent_handling_s(conn)
    if handling_s is None:
        return None
    return expected_wait_s(position, handlers_on_duty(conn, language, kind), handling_s)


def announcement(seconds: float | None) -> tuple[str, dict[str, int]] | None:
    """The prompt key and its field: under 95 s in seconds, rounded to 10 (at least 10);
    otherwise in whole minutes (at least 2). None: nothing to announce."""
    if seconds is None:
        return None
    if seconds < 95:
        return "queue_estimate_seconds", {"seconds": max(10, round(seconds / 10.0) * 10)}
    return "queue_estimate", {"minutes": max(2, int(seconds / 60 + 0.5))}


def _seconds(data: dict | None, key: str) -> float:
    value = (data or {}).get(key)
    return float(value) if isinstance(value, int | float) and value >= 0 else 0.0
