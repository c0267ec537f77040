"""What supervisors look at: the live queue board and the dashboard's series. Read-only; the
console renders them (and checks who may look). Ids, counts and times only.

"Today" and "per day" are days in the hotline's time zone (``zone``: the console passes
``HOTLINE_TIME_ZONE``; UTC when not given): a call at 01:00 in Kyiv is on that day, not the day
before.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from inquiries.models import QUEUE_EVENT_TERM, CallEvent, Inquiry, Interaction
from routing.core import RoutingCore
from routing.metrics import QueueMetrics, queue_metrics
from routing.models import Handler, QueueEntry

_entry = QueueEntry.__table__
_handler = Handler.__table__
_interaction = Interaction.__table__
_inquiry = Inquiry.__table__

#: Upper bounds (seconds) of the wait-time distribution's buckets; the last is open.
WAIT_BUCKETS = (10, 20, 30, 60, 120, 300)


@dataclass
class WaitingGroup:
    language: str
    kind: str
    count: int
    longest_wait_s: float
    callbacks: int


@dataclass
class HandlerLine:
    handler_id: int
    name: str
    languages: list[str]
    presence: str
    reason: str | None
    on_call_s: float | None  # seconds into the current call


@dataclass
class Board:
    now: dt.datetime
    waiting: list[WaitingGroup]
    waiting_total: int
    longest_wait_s: float
    handlers: list[HandlerLine]
    today: QueueMetrics


def day_start(when: dt.datetime, zone: dt.tzinfo = dt.UTC) -> dt.datetime:
    """Midnight of ``when``'s day in ``zone`` (as an aware time)."""
    return when.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)


def midnight(day: dt.date, zone: dt.tzinfo = dt.UTC) -> dt.datetime:
    """The start of ``day`` in ``zone``."""
    return dt.datetime.combine(day, dt.time(), tzinfo=zone)


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def board(
    conn: Session,
    core: RoutingCore | None,
    now: dt.datetime | None = None,
    zone: dt.tzinfo = dt.UTC,
) -> Board:
    """Waiting callers by language and kind, each handler's presence and call time, today's
    figures. ``core`` None (Redis down): presences from the database, marked as such."""
    now = now or dt.datetime.now(dt.UTC)
    groups: dict[tuple[str, str], WaitingGroup] = {}
    rows = conn.execute(
        select(_entry.c.language, _entry.c.kind, _entry.c.enqueued_at,
               _entry.c.callback_requested_at)
        .where(_entry.c.state.in_(("waiting", "offered", "calling_back")))
    ).all()  # fmt: skip
    for row in rows:
        group = groups.setdefault(
            (row.language, row.kind), WaitingGroup(row.language, row.kind, 0, 0.0, 0)
        )
        group.count += 1
        group.callbacks += row.callback_requested_at is not None
        waited = (now - _aware(row.enqueued_at)).total_seconds()
        group.longest_wait_s = max(group.longest_wait_s, waited)
    connected = {
        row.handler_id: row.connected_at
        for row in conn.execute(
            select(_entry.c.handler_id, _entry.c.connected_at).where(_entry.c.state == "connected")
        )
    }
    handlers = []
    for row in conn.execute(
        select(_handler).where(_handler.c.active.is_(True)).order_by(_handler.c.display_name)
    ):
        presence, reason = (row.presence, row.presence_reason)
        if core is not None:
            presence, reason = core.presence(str(row.id))
        started = connected.get(row.id)
        on_call = (now - _aware(started)).total_seconds() if started is not None else None
        line = HandlerLine(row.id, row.display_name, list(row.languages or []), presence, reason,
                           on_call)  # fmt: skip
        handlers.append(line)
    waiting = sorted(groups.values(), key=lambda g: -g.longest_wait_s)
    return Board(
        now=now,
        waiting=waiting,
        waiting_total=sum(g.count for g in waiting),
        longest_wait_s=max((g.longest_wait_s for g in waiting), default=0.0),
        handlers=handlers,
        today=queue_metrics(conn, day_start(now, zone), now + dt.timedelta(seconds=1), now=now),
    )


@dataclass
class DayFigures:
    day: dt.date
    calls: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    by_language: dict[str, int] = field(default_factory=dict)
    service_level: float | None = None
    asa_s: float | None = None
    abandonment_rate: float | None = None


@dataclass
class Dashboard:
    days: list[DayFigures]
    wait_buckets: list[tuple[str, int]]
    occupancy: dict[int, float | None]
    handler_names: dict[int, str]


def dashboard(conn: Session, since: dt.date, until: dt.date, zone: dt.tzinfo = dt.UTC) -> Dashboard:
    """Per day in [since, until] (days in ``zone``): calls (by kind, by language), service
    level, ASA, abandonment; over the whole range: the wait-time distribution and handler
    occupancy."""
    start = midnight(since, zone)
    end = midnight(until + dt.timedelta(days=1), zone)
    days = {
        since + dt.timedelta(days=i): DayFigures(since + dt.timedelta(days=i))
        for i in range((until - since).days + 1)
    }
    rows = conn.execute(
        select(_interaction.c.started_at, _inquiry.c.kind, _inquiry.c.language)
        .join(_inquiry, _inquiry.c.id == _interaction.c.inquiry_id)
        .where(_interaction.c.started_at >= start, _interaction.c.started_at < end)
    )
    for started, kind, language in rows:
        figures = days.get(_aware(started).astimezone(zone).date())
        if figures is None:
            continue
        figures.calls += 1
        figures.by_kind[kind] = figures.by_kind.get(kind, 0) + 1
        lang = language or "?"
        figures.by_language[lang] = figures.by_language.get(lang, 0) + 1
    for day, figures in days.items():
        m = queue_metrics(conn, midnight(day, zone), midnight(day + dt.timedelta(days=1), zone))
        figures.service_level, figures.asa_s = m.service_level, m.asa_s
        figures.abandonment_rate = m.abandonment_rate
    whole = queue_metrics(conn, start, min(end, dt.datetime.now(dt.UTC)))
    names = {row.id: row.display_name for row in conn.execute(select(_handler))}
    return Dashboard(
        days=list(days.values()),
        wait_buckets=_wait_buckets(conn, start, end),
        occupancy=whole.occupancy,
        handler_names=names,
    )


def _wait_buckets(conn: Session, start: dt.datetime, end: dt.datetime) -> list[tuple[str, int]]:
    """How long answered callers waited (CONNECT hold times, call-backs apart)."""
    event = CallEvent.__table__
    counts = [0] * (len(WAIT_BUCKETS) + 1)
    for (data,) in conn.execute(
        select(event.c.data).where(
            event.c.event == "CONNECT",
            event.c.time >= start,
            event.c.time < end,
            QUEUE_EVENT_TERM,
        )
    ):
        data: Any = data or {}
        if data.get("callback"):
            continue
        hold = data.get("holdtime_s")
        if not isinstance(hold, (int, float)):
            continue
        index = next((i for i, bound in enumerate(WAIT_BUCKETS) if hold < bound), len(WAIT_BUCKETS))
        counts[index] += 1
    labels = [f"< {b} s" for b in WAIT_BUCKETS] + [f"≥ {WAIT_BUCKETS[-1]} s"]
    return list(zip(labels, counts, strict=True))
