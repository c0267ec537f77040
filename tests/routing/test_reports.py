"""The supervisor's board and the dashboard's series, from known rows."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from inquiries.models import Caller, CallEvent, Inquiry, Interaction
from routing.models import Handler, QueueEntry
from routing.reports import board, dashboard, day_start
from routing.service import routing_core

NOW = dt.datetime(2026, 11, 20, 15, 0, tzinfo=dt.UTC)


def seed(svc) -> dict[str, int]:
    with svc.session_factory() as session:
        anna = Handler(display_name="Anna", languages=["ru"], skills=["other"],
                       client_identity="anna", presence="available")  # fmt: skip
        boris = Handler(display_name="Boris", languages=["uk"], skills=["other"],
                        client_identity="boris", presence="break", presence_reason="lunch")  # fmt: skip
        caller = Caller(number_hash="c" * 64)
        session.add_all([anna, boris, caller])
        session.flush()
        cases = [Inquiry(caller_id=caller.id, kind=k, language=lang)
                 for k, lang in (("family", "ru"), ("surrender", "uk"), ("family", "ru"))]  # fmt: skip
        session.add_all(cases)
        session.flush()
        calls = []
        for i, (case, minutes_ago) in enumerate(zip(cases, (3, 1, 30), strict=True)):
            call = Interaction(inquiry_id=case.id, provider_sid=f"CA{i:032x}",
                               started_at=NOW - dt.timedelta(minutes=minutes_ago))  # fmt: skip
            session.add(call)
            calls.append(call)
        session.flush()
        session.add_all([
            QueueEntry(interaction_id=calls[0].id, state="waiting", language="ru", kind="family",
                       enqueued_at=NOW - dt.timedelta(minutes=3)),
            QueueEntry(interaction_id=calls[1].id, state="waiting", language="uk",
                       kind="surrender", enqueued_at=NOW - dt.timedelta(minutes=1),
                       callback_requested_at=NOW),
            QueueEntry(interaction_id=calls[2].id, state="connected", language="ru",
                       kind="family", enqueued_at=NOW - dt.timedelta(minutes=30),
                       connected_at=NOW - dt.timedelta(minutes=20), handler_id=anna.id),
        ])  # fmt: skip
        day = NOW.replace(hour=0)
        for hold, callback in ((5, False), (25, False), (400, False), (900, True)):
            session.add(CallEvent(time=day + dt.timedelta(hours=1), event="CONNECT",
                                  data={"holdtime_s": hold, "callback": callback}))  # fmt: skip
        session.add(CallEvent(time=day + dt.timedelta(hours=2), event="ABANDON",
                              data={"waittime_s": 30}))  # fmt: skip
        session.commit()
        return {"anna": anna.id, "boris": boris.id}


def test_the_board_groups_waiting_callers_and_shows_each_handler(svc):
    ids = seed(svc)
    with svc.engine.connect() as conn:
        b = board(conn, None, now=NOW)
    assert b.waiting_total == 2 and b.longest_wait_s == 180
    assert [(g.language, g.kind, g.count, g.callbacks) for g in b.waiting] == [
        ("ru", "family", 1, 0), ("uk", "surrender", 1, 1),
    ]  # fmt: skip
    lines = {h.handler_id: h for h in b.handlers}
    assert lines[ids["anna"]].on_call_s == 20 * 60
    assert (lines[ids["boris"]].presence, lines[ids["boris"]].reason) == ("break", "lunch")
    assert b.today.answered == 3 and b.today.service_level == 1 / 3  # 5 s within 20 s
    assert b.today.callbacks_connected == 1


def test_the_board_reads_presence_from_redis_when_it_answers(svc):
    ids = seed(svc)
    core = routing_core(svc.settings, svc.redis)  # nobody told the core: all unknown there
    with svc.engine.connect() as conn:
        b = board(conn, core, now=NOW)
    assert {h.handler_id: h.presence for h in b.handlers} == {
        ids["anna"]: "offline", ids["boris"]: "offline",
    }  # fmt: skip


def test_the_dashboard_counts_days_and_buckets_waits(svc):
    ids = seed(svc)
    with svc.engine.connect() as conn:
        d = dashboard(conn, NOW.date() - dt.timedelta(days=1), NOW.date())
    assert [day.calls for day in d.days] == [0, 3]
    today = d.days[-1]
    assert today.by_kind == {"family": 2, "surrender": 1} and today.by_language == {
        "ru": 2,
        "uk": 1,
    }
    assert today.service_level == pytest.approx(1 / 3) and today.abandonment_rate == 1 / 4
    buckets = dict(d.wait_buckets)
    assert buckets["< 10 s"] == 1 and buckets["< 30 s"] == 1 and buckets["≥ 300 s"] == 1
    assert sum(buckets.values()) == 3  # the call-back is not a wait
    assert d.handler_names[ids["anna"]] == "Anna"


def test_days_are_the_hotlines_days_not_utcs(svc):
    """At 15:00 UTC it is already 05:00 the next day at UTC+14: the calls count on that day,
    and the board's "today" starts at that zone's midnight."""
    seed(svc)
    zone = ZoneInfo("Pacific/Kiritimati")  # UTC+14
    with svc.engine.connect() as conn:
        d = dashboard(conn, NOW.date(), NOW.date() + dt.timedelta(days=1), zone)
        assert [(day.day.day, day.calls) for day in d.days] == [(20, 0), (21, 3)]
        late = dashboard(conn, NOW.date() - dt.timedelta(days=1), NOW.date(), zone)
        assert [day.calls for day in late.days] == [0, 0]
    assert day_start(NOW, zone) == dt.datetime(2026, 11, 21, 0, 0, tzinfo=zone)
    assert day_start(NOW, zone).astimezone(dt.UTC) == dt.datetime(2026, 11, 20, 10, 0,
                                                                  tzinfo=dt.UTC)  # fmt: skip
