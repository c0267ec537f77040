"""Queue metrics over the call-event log (definitions: docs/ACD, Asterisk queue_log style).

Pure functions over ``CallEvent`` rows for a time range ``[start, end)``; each figure whose
denominator is zero is ``None`` (shown as "n/a"). The wait announced to callers is
``routing.estimate``'s.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from inquiries.models import QUEUE_EVENT_TERM, CallEvent
from routing.models import QueueEntry

_event = CallEvent.__table__
_entry = QueueEntry.__table__

#: Abandons shorter than this are left out of the abandonment figures (Flex's default).
SHORT_ABANDON_S = 5
OFFER_OUTCOMES = {
    "CONNECT": "accepted",
    "REJECT": "rejected",
    "RINGNOANSWER": "missed",
    "RINGCANCELED": "cancelled",
}


@dataclass
class HandlerOffers:
    offered: int = 0
    accepted: int = 0
    rejected: int = 0
    missed: int = 0
    cancelled: int = 0

    @property
    def miss_rate(self) -> float | None:
        return _ratio(self.missed, self.offered)


@dataclass
class QueueMetrics:
    start: dt.datetime
    end: dt.datetime
    threshold_s: int
    offered: int = 0
    answered: int = 0
    abandoned: int = 0  # short abandons excluded
    short_abandoned: int = 0
    answered_within: int = 0
    abandoned_within: int = 0
    service_level: float | None = None
    sl2: float | None = None
    asa_s: float | None = None
    abandonment_rate: float | None = None
    handled: int = 0
    aht_s: float | None = None
    longest_wait_s: float | None = None
    #: Call-backs asked for while waiting, and those connected (apart from the figures above:
    #: their wait includes the time the caller chose to be off the line).
    callbacks_requested: int = 0
    callbacks_connected: int = 0
    offers: HandlerOffers = field(default_factory=HandlerOffers)
    per_handler: dict[int, HandlerOffers] = field(default_factory=dict)
    #: handler id → handling time ÷ (handling time + available idle time), None if not staffed.
    occupancy: dict[int, float | None] = field(default_factory=dict)


def _num(data: Any, key: str) -> float | None:
    value = data.get(key) if isinstance(data, dict) else None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def compute(
    events: Iterable[tuple[str, dict[str, Any]]],
    *,
    start: dt.datetime,
    end: dt.datetime,
    threshold_s: int = 20,
    oldest_waiting: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> QueueMetrics:
    """The figures from ``(event, data)`` pairs already limited to ``[start, end)``."""
    m = QueueMetrics(start=start, end=end, threshold_s=threshold_s)
    hold_total = 0.0
    handle_total = 0.0
    for name, data in events:
        if name == "ENTERQUEUE":
            m.offered += 1
        elif name == "CONNECT" and data.get("callback"):
            m.callbacks_connected += 1
        elif name == "CALLBACK_REQUESTED" and data.get("reason") == "queue-callback":
            m.callbacks_requested += 1
        elif name == "CONNECT":
            m.answered += 1
            hold = _num(data, "holdtime_s") or 0.0
            hold_total += hold
            if hold <= threshold_s:
                m.answered_within += 1
        elif name == "ABANDON":
            wait = _num(data, "waittime_s") or 0.0
            if wait < SHORT_ABANDON_S:
                m.short_abandoned += 1
                continue
            m.abandoned += 1
            if wait <= threshold_s:
                m.abandoned_within += 1
        elif name in ("COMPLETECALLER", "COMPLETEAGENT"):
            talk = _num(data, "calltime_s")
            if talk is not None:
                m.handled += 1
                handle_total += talk + (_num(data, "wrapup_s") or 0.0)
        if name == "OFFER" or name in OFFER_OUTCOMES:
            handler_id = data.get("handler_id") if isinstance(data, dict) else None
            targets = [m.offers]
            if isinstance(handler_id, int):
                targets.append(m.per_handler.setdefault(handler_id, HandlerOffers()))
            for target in targets:
                if name == "OFFER":
                    target.offered += 1
                else:
                    outcome = OFFER_OUTCOMES[name]
                    setattr(target, outcome, getattr(target, outcome) + 1)
    m.service_level = _ratio(m.answered_within, m.answered)
    m.sl2 = _ratio(m.answered_within + m.abandoned_within, m.answered + m.abandoned)
    m.asa_s = _ratio(hold_total, m.answered)
    m.abandonment_rate = _ratio(m.abandoned, m.answered + m.abandoned)
    m.aht_s = _ratio(handle_total, m.handled)
    if oldest_waiting is not None:
        m.longest_wait_s = max(
            0.0, ((now or dt.datetime.now(dt.UTC)) - _aware(oldest_waiting)).total_seconds()
        )
    return m


#: Events that set a handler's presence by hand (or a break after missed offers).
PRESENCE_EVENTS = ("HANDLER_PRESENCE", "HANDLER_PAUSED")


def occupancy(
    presence_changes: Iterable[tuple[dt.datetime, dict[str, Any]]],
    completes: Iterable[dict[str, Any]],
    *,
    start: dt.datetime,
    end: dt.datetime,
    initial: dict[int, str] | None = None,
) -> dict[int, float | None]:
    """Per handler: handling time (talk + wrap-up of the calls completed in the range) ÷ the
    time they were staffed as available (which holds the handling, the idle time and the
    ringing). ``initial``: each handler's presence at ``start``; ``presence_changes`` in time
    order. None when a handler was never available in the range; capped at 1."""
    state = dict(initial or {})
    since = {hid: start for hid in state}
    available_s: dict[int, float] = {}

    def close(hid: int, until: dt.datetime) -> None:
        if state.get(hid) == "available":
            begun = since.get(hid, start)
            available_s[hid] = available_s.get(hid, 0.0) + (until - begun).total_seconds()

    for when, data in presence_changes:
        hid = data.get("handler_id")
        if not isinstance(hid, int):
            continue
        when = min(max(_aware(when), start), end)
        if hid not in state and data.get("from"):  # no earlier change known: "from" held
            state[hid], since[hid] = str(data["from"]), start
        close(hid, when)
        state[hid], since[hid] = str(data.get("to")), when
    for hid in state:
        close(hid, end)
    handling: dict[int, float] = {}
    for data in completes:
        hid = data.get("handler_id")
        if isinstance(hid, int):
            work = (_num(data, "calltime_s") or 0.0) + (_num(data, "wrapup_s") or 0.0)
            handling[hid] = handling.get(hid, 0.0) + work
    result: dict[int, float | None] = {}
    for hid in sorted(set(available_s) | set(handling)):
        staffed = available_s.get(hid, 0.0)
        result[hid] = min(1.0, handling.get(hid, 0.0) / staffed) if staffed > 0 else None
    return result


def _presence_at(conn: Session, when: dt.datetime) -> dict[int, str]:
    """Each handler's presence at ``when``: the last hand-set change before it."""
    rows = conn.execute(
        select(_event.c.data)
        .where(_event.c.event.in_(PRESENCE_EVENTS), _event.c.time < when, QUEUE_EVENT_TERM)
        .order_by(_event.c.time, _event.c.id)
    ).all()
    state: dict[int, str] = {}
    for (data,) in rows:
        if isinstance(data, dict) and isinstance(data.get("handler_id"), int):
            state[data["handler_id"]] = str(data.get("to"))
    return state


def queue_metrics(
    conn: Session,
    start: dt.datetime,
    end: dt.datetime,
    *,
    threshold_s: int = 20,
    now: dt.datetime | None = None,
) -> QueueMetrics:
    """Read the events of ``[start, end)`` and the oldest waiting caller; compute."""
    oldest = conn.execute(
        select(_entry.c.enqueued_at)
        .where(_entry.c.state.in_(("waiting", "offered")))
        .order_by(_entry.c.enqueued_at)
        .limit(1)
    ).scalar()
    rows = conn.execute(
        select(_event.c.time, _event.c.event, _event.c.data)
        .where(_event.c.time >= start, _event.c.time < end, QUEUE_EVENT_TERM)
        .order_by(_event.c.time, _event.c.id)
    ).all()
    m = compute(
        ((name, data or {}) for _, name, data in rows), start=start, end=end,
        threshold_s=threshold_s, oldest_waiting=oldest, now=now,
    )  # fmt: skip
    m.occupancy = occupancy(
        [(when, data or {}) for when, name, data in rows if name in PRESENCE_EVENTS],
        [data or {} for _, name, data in rows if name in ("COMPLETECALLER", "COMPLETEAGENT")],
        start=start, end=min(end, now or dt.datetime.now(dt.UTC)),
        initial=_presence_at(conn, start),
    )  # fmt: skip
    return m


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


def _secs(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} s"


def render(m: QueueMetrics) -> list[str]:
    """Readable lines for the CLI."""
    o = m.offers
    lines = [
        f"range: {m.start.isoformat()} – {m.end.isoformat()}  (threshold {m.threshold_s} s)",
        f"callers offered: {m.offered}  answered: {m.answered}  abandoned: {m.abandoned}"
        f"  short abandons (< {SHORT_ABANDON_S} s, excluded): {m.short_abandoned}",
        f"service level: {_pct(m.service_level)}  SL2: {_pct(m.sl2)}",
        f"ASA: {_secs(m.asa_s)}  abandonment rate: {_pct(m.abandonment_rate)}",
        f"AHT: {_secs(m.aht_s)} over {m.handled} handled calls",
        f"longest current wait: {_secs(m.longest_wait_s)}",
        f"call-backs: {m.callbacks_requested} requested while waiting, "
        f"{m.callbacks_connected} connected (not in the figures above)",
        f"offers: {o.offered} offered, {o.accepted} accepted, {o.rejected} rejected, "
        f"{o.missed} missed, {o.cancelled} cancelled; miss rate {_pct(o.miss_rate)}",
    ]
    for handler_id in sorted(m.per_handler):
        h = m.per_handler[handler_id]
        lines.append(
            f"  handler {handler_id}: {h.offered} offered, {h.accepted} accepted, "
            f"{h.rejected} rejected, {h.missed} missed, {h.cancelled} cancelled; "
            f"miss rate {_pct(h.miss_rate)}"
        )
    for handler_id in sorted(m.occupancy):
        lines.append(f"  handler {handler_id}: occupancy {_pct(m.occupancy[handler_id])}")
    return lines
