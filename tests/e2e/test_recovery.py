"""Nobody is lost: a worker killed in the middle of a dispatch, Redis flushed while callers wait
and talk, a call-back's retry job lost. The periodic tick (``routing.jobs.tick``, enqueued by the
workers' timers) must bring every caller to a handler (or the message box) afterwards."""

from __future__ import annotations

import datetime as dt
import time

from sqlalchemy import select, update

from db import db_session
from routing.jobs import tick
from routing.models import Offer, QueueEntry
from routing.service import routing_core, set_presence
from tests.e2e.test_callbacks import ask_for_callback
from tests.e2e.test_routing_calls import (
    HANDLER_A,
    HANDLER_B,
    add_handler,
    drain,
    entry,
    queued_caller,
)
from tests.e2e.workers import WriteLock, kill, start_worker
from tests.support import handles


def core_of(hotline):
    svc = handles(hotline.app)
    return routing_core(svc.settings, svc.redis)


def run_tick(hotline) -> dict[str, int]:
    with hotline.app.app_context():
        return tick()


def connect(hotline, number: str, call) -> None:
    phone = hotline.emulator.phone(number)
    leg = phone.answer(phone.wait_for_ring(max_seconds=5))
    leg.press("1")
    hotline.emulator.settle()
    assert call.activity == "conference" and leg.activity == "conference"


def test_redis_flushed_mid_queue_nobody_is_lost(hotline):
    a = add_handler(hotline, HANDLER_A, "Anna")
    first = queued_caller(hotline)
    drain(hotline)
    connect(hotline, HANDLER_A, first)  # the first caller talks to Anna
    second = hotline.dial("+79160000002")
    second.press("1")
    second.press("0")
    third = hotline.dial("+79160000003")
    third.press("1")
    third.press("0")
    assert entry(hotline, second.sid).state == entry(hotline, third.sid).state == "waiting"
    core = core_of(hotline)
    waiting = [str(entry(hotline, c.sid).interaction_id) for c in (second, third)]
    assert core.waiting() == waiting

    handles(hotline.app).redis.flushdb()  # routing state and RQ's jobs: gone
    assert core.waiting() == []
    second.wait(30)  # the hold goes on without Redis' state
    assert not second.ended

    counts = run_tick(hotline)
    assert counts["rebuilt"] == 1 and counts["calls"] == 1 and counts["requeued"] == 2
    assert core.waiting() == waiting  # the same order as before the flush
    assert core.presence(str(a))[0] == "on_call"  # not offered a second caller mid-call
    assert not hotline.emulator.phone(HANDLER_A).ringing()
    assert run_tick(hotline)["rebuilt"] == 0  # rebuilt once, then only the light checks

    b = add_handler(hotline, HANDLER_B, "Boris")  # a second handler comes on duty
    run_tick(hotline)
    connect(hotline, HANDLER_B, second)  # the longest waiter first
    first.hang_up()  # Anna's call ends; wrap-up 0 s
    hotline.emulator.settle()
    drain(hotline)
    connect(hotline, HANDLER_A, third)
    for call in (first, second, third):
        assert entry(hotline, call.sid).state in ("connected", "done")
    assert core.presence(str(b))[0] == "on_call"


def test_a_worker_killed_mid_dispatch_delays_the_caller_but_loses_nobody(hotline):
    a = add_handler(hotline, HANDLER_A, "Anna")
    call = queued_caller(hotline)  # its dispatch job waits in RQ
    core = core_of(hotline)
    with WriteLock(hotline.settings.database_url, "routing_offer"):
        worker = start_worker(hotline)
        try:
            deadline = time.monotonic() + 60
            while core.presence(str(a))[0] != "offered":  # the core assigned, the row waits
                assert worker.poll() is None, "the worker ended before it was killed"
                assert time.monotonic() < deadline, "the worker never reached the dispatch"
                time.sleep(0.05)
        finally:
            kill(worker)
    with hotline.app.app_context():
        assert db_session().scalars(select(Offer)).all() == []  # its transaction died with it
    assert not hotline.emulator.phone(HANDLER_A).ringing()
    assert entry(hotline, call.sid).state == "waiting"

    svc = handles(hotline.app)
    svc.settings = svc.settings.replace(routing_offer_timeout_s=1, routing_offer_grace_s=0)
    time.sleep(1.1)  # the orphaned assignment outlives its ring time
    counts = run_tick(hotline)
    assert counts["expired"] == 1 and counts["offers"] == 1
    svc.settings = svc.settings.replace(routing_offer_timeout_s=20)
    connect(hotline, HANDLER_A, call)
    assert entry(hotline, call.sid).state == "connected"
    call.hang_up()


def test_a_lost_callback_retry_is_requeued_by_the_tick_when_due(hotline):
    svc = handles(hotline.app)
    svc.settings = svc.settings.replace(routing_callback_retry_s=120)
    add_handler(hotline, HANDLER_A, "Anna")
    first = ask_for_callback(hotline)
    drain(hotline)
    handler = hotline.emulator.phone(HANDLER_A)
    leg = handler.answer(handler.wait_for_ring())
    leg.press("1")
    hotline.emulator.settle()
    hotline.emulator.phone("+79161234567").wait_for_ring(max_seconds=5)
    hotline.emulator.wait(40)  # no answer: attempt 1 failed, retry in 120 s
    hotline.emulator.settle()
    row = entry(hotline, first.sid)
    assert row.state == "waiting" and row.callback_due_at is not None
    core = core_of(hotline)
    assert core.caller_state(str(row.interaction_id)) is None  # out until due
    svc.redis.delete(*svc.redis.keys("rq:*"))  # the scheduled retry job is lost

    counts = run_tick(hotline)
    assert counts["callbacks_later"] == 1 and counts["offers"] == 0
    with hotline.app.app_context():
        session = db_session()
        session.execute(  # two minutes pass
            update(QueueEntry)
            .where(QueueEntry.id == row.id)
            .values(callback_due_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
        )
        session.commit()
    counts = run_tick(hotline)
    assert counts["requeued"] == 1 and counts["offers"] == 1
    assert handler.wait_for_ring(max_seconds=5) is not None


def test_a_flush_keeps_what_handlers_chose(hotline):
    """Presence chosen by people (a break with its reason) is the database's: rebuilt as is."""
    a = add_handler(hotline, HANDLER_A, "Anna")
    b = add_handler(hotline, HANDLER_B, "Boris")
    with hotline.app.app_context():
        set_presence(db_session(), core_of(hotline), a, "break", "lunch")
    handles(hotline.app).redis.flushdb()
    assert core_of(hotline).presence(str(a)) == ("offline", None)
    run_tick(hotline)
    assert core_of(hotline).presence(str(a)) == ("break", "lunch")
    assert core_of(hotline).presence(str(b)) == ("available", None)
