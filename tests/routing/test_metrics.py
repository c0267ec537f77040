"""Queue metrics from CallEvent rows with known times: every figure exactly, n/a on zero."""

from __future__ import annotations

import datetime as dt

import pytest

from inquiries.models import Caller, CallEvent, Inquiry, Interaction
from routing.metrics import (
    compute,
    queue_metrics,
    render,
)
from routing.models import QueueEntry

T0 = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def insert(svc, rows: list[tuple[float, str, dict]]) -> None:
    with svc.session_factory() as session:
        for seconds, name, data in rows:
            session.add(CallEvent(time=at(seconds), event=name, data=data, interaction_id=None))
        session.commit()


EVENTS = [
    (-10, "ENTERQUEUE", {"position": 1}),  # before the range: not counted
    (-5, "CONNECT", {"handler_id": 1, "holdtime_s": 1}),
    (0, "ENTERQUEUE", {"position": 1}),
    (1, "ENTERQUEUE", {"position": 2}),
    (2, "ENTERQUEUE", {"position": 3}),
    (3, "ENTERQUEUE", {"position": 4}),
    (4, "ENTERQUEUE", {"position": 5}),
    (5, "OFFER", {"handler_id": 1, "offer_id": 1}),
    (6, "RINGNOANSWER", {"handler_id": 1, "offer_id": 1, "ringtime_ms": 15000}),
    (7, "OFFER", {"handler_id": 2, "offer_id": 2}),
    (8, "CONNECT", {"handler_id": 2, "offer_id": 2, "holdtime_s": 10, "ringtime_s": 3}),
    (9, "OFFER", {"handler_id": 1, "offer_id": 3}),
    (10, "OFFER", {"handler_id": 2, "offer_id": 4}),
    (11, "REJECT", {"handler_id": 1, "offer_id": 3}),
    (12, "CONNECT", {"handler_id": 2, "offer_id": 4, "holdtime_s": 40, "ringtime_s": 2}),
    (13, "OFFER", {"handler_id": 1, "offer_id": 5}),
    (14, "RINGCANCELED", {"handler_id": 1, "offer_id": 5}),
    (15, "ABANDON", {"waittime_s": 3}),  # short: apart
    (16, "ABANDON", {"waittime_s": 15}),  # within 20 s
    (17, "ABANDON", {"waittime_s": 60}),
    (18, "COMPLETECALLER", {"handler_id": 2, "holdtime_s": 10, "calltime_s": 100}),
    (19, "COMPLETEAGENT", {"handler_id": 2, "holdtime_s": 40, "calltime_s": 200}),
    (100, "ENTERQUEUE", {"position": 1}),  # at the end: excluded
]


def test_every_figure_exactly(svc):
    insert(svc, EVENTS)
    with svc.session_factory() as session:
        m = queue_metrics(session.connection(), at(0), at(100), threshold_s=20)
    assert (m.offered, m.answered, m.abandoned, m.short_abandoned) == (5, 2, 2, 1)
    assert (m.answered_within, m.abandoned_within) == (1, 1)
    assert m.service_level == 1 / 2
    assert m.sl2 == (1 + 1) / (2 + 2)
    assert m.asa_s == (10 + 40) / 2
    assert m.abandonment_rate == 2 / 4
    assert (m.handled, m.aht_s) == (2, 150.0)
    assert m.longest_wait_s is None  # nobody waiting
    o = m.offers
    assert (o.offered, o.accepted, o.rejected, o.missed, o.cancelled) == (5, 2, 1, 1, 1)
    assert o.miss_rate == 1 / 5
    h1, h2 = m.per_handler[1], m.per_handler[2]
    assert (h1.offered, h1.accepted, h1.rejected, h1.missed, h1.cancelled) == (3, 0, 1, 1, 1)
    assert h1.miss_rate == 1 / 3
    assert (h2.offered, h2.accepted, h2.missed, h2.miss_rate) == (2, 2, 0, 0.0)
    text = "\n".join(render(m))
    assert "service level: 50.0%" in text and "ASA: 25.0 s" in text
    assert "handler 1: 3 offered" in text


def test_the_threshold_moves_the_service_level(svc):
    insert(svc, EVENTS)
    with svc.session_factory() as session:
        m = queue_metrics(session.connection(), at(0), at(100), threshold_s=40)
    assert m.service_level == 1.0 and m.sl2 == 3 / 4
    with svc.session_factory() as session:
        m = queue_metrics(session.connection(), at(0), at(100), threshold_s=5)
    assert m.service_level == 0.0 and m.sl2 == 0.0


def test_nothing_in_the_range_is_n_a():
    m = compute([], start=at(0), end=at(1))
    assert m.offered == m.answered == m.abandoned == 0
    for value in (m.service_level, m.sl2, m.asa_s, m.abandonment_rate, m.aht_s,
                  m.offers.miss_rate, m.longest_wait_s):  # fmt: skip
        assert value is None
    text = "\n".join(render(m))
    assert "service level: n/a" in text and "ASA: n/a" in text and "miss rate n/a" in text


def test_only_short_abandons_leave_the_rates_n_a():
    m = compute([("ABANDON", {"waittime_s": 4})], start=at(0), end=at(1))
    assert (m.abandoned, m.short_abandoned, m.abandonment_rate, m.sl2) == (0, 1, None, None)


def test_longest_current_wait_is_the_oldest_waiting_caller(svc):
    with svc.session_factory() as session:
        caller = Caller(number_hash="h" * 64)
        inquiry = Inquiry(caller=caller)
        for n, (state, enqueued) in enumerate(
            [("waiting", at(-30)), ("offered", at(-90)), ("done", at(-500))]
        ):
            interaction = Interaction(inquiry=inquiry, provider_sid=f"CA{n:032x}")
            session.add(interaction)
            session.flush()
            session.add(QueueEntry(interaction_id=interaction.id, state=state, language="ru",
                                   kind="other", enqueued_at=enqueued))  # fmt: skip
        session.commit()
        m = queue_metrics(session.connection(), at(-100), at(1), now=at(0))
    assert m.longest_wait_s == 90.0


def test_the_cli_prints_the_metrics(app, svc):
    insert(svc, EVENTS)
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["routing", "metrics", "--since", at(0).isoformat(), "--until",
              at(100).isoformat(), "--threshold", "20"]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "callers offered: 5  answered: 2  abandoned: 2" in result.output
    assert "SL2: 50.0%" in result.output and "abandonment rate: 50.0%" in result.output
    bad = runner.invoke(args=["routing", "metrics", "--since", "yesterday"])
    assert bad.exit_code != 0


def test_aht_counts_wrap_up_and_callbacks_stay_out_of_the_service_level(svc):
    insert(svc, [
        (0, "ENTERQUEUE", {"position": 1}),
        (1, "CALLBACK_REQUESTED", {"reason": "queue-callback"}),
        (2, "CALLBACK_REQUESTED", {"reason": "queue"}),  # a message left: not a call-back
        (300, "CONNECT", {"handler_id": 1, "holdtime_s": 300, "callback": True, "attempt": 1}),
        (400, "COMPLETECALLER", {"handler_id": 1, "calltime_s": 100, "wrapup_s": 30}),
    ])  # fmt: skip
    with svc.session_factory() as session:
        m = queue_metrics(session.connection(), at(0), at(500), threshold_s=20, now=at(500))
    assert (m.callbacks_requested, m.callbacks_connected) == (1, 1)
    assert m.answered == 0 and m.service_level is None and m.asa_s is None
    assert (m.handled, m.aht_s) == (1, 130.0)
    assert "call-backs: 1 requested while waiting, 1 connected" in "\n".join(render(m))


def test_occupancy_is_handling_over_available_time(svc):
    insert(svc, [
        (-50, "HANDLER_PRESENCE", {"handler_id": 1, "from": "offline", "to": "available"}),
        (100, "COMPLETEAGENT", {"handler_id": 1, "calltime_s": 60, "wrapup_s": 30}),
        (200, "HANDLER_PAUSED", {"handler_id": 1, "from": "available", "to": "break"}),
        (300, "HANDLER_PRESENCE", {"handler_id": 1, "from": "break", "to": "available"}),
        (0, "HANDLER_PRESENCE", {"handler_id": 2, "from": "offline", "to": "available"}),
        (50, "COMPLETECALLER", {"handler_id": 2, "calltime_s": 400, "wrapup_s": 0}),
        (60, "HANDLER_PRESENCE", {"handler_id": 2, "from": "available", "to": "offline"}),
        (10, "HANDLER_PRESENCE", {"handler_id": 3, "from": "available", "to": "offline"}),
    ])  # fmt: skip
    with svc.session_factory() as session:
        m = queue_metrics(session.connection(), at(0), at(400), now=at(400))
    # handler 1: available 0–200 and 300–400 = 300 s, handling 90 s
    assert m.occupancy[1] == pytest.approx(90 / 300)
    assert m.occupancy[2] == 1.0  # 400 s of handling in 60 s staffed: capped
    assert m.occupancy[3] == 0.0  # available 0–10 s ("from" of its first change), no calls
    assert "handler 1: occupancy 30.0%" in "\n".join(render(m))
