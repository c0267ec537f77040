"""The Procfile's worker, as a real process: it builds the app once and runs routing and
recording jobs, and its timer thread ends a handler's wrap-up on time for the next caller."""

from __future__ import annotations

import time

from sqlalchemy import update

from db import db_session
from routing.models import Handler
from routing.service import routing_core
from tests.e2e.test_recordings import assert_stored_and_gone, leave_message, recording_of
from tests.e2e.test_routing_calls import HANDLER_A, add_handler, entry, queued_caller
from tests.e2e.workers import kill, start_worker
from tests.support import handles


def wait_until(condition, seconds: float, what: str) -> float:
    """Poll ``condition`` in real time; the seconds it took (AssertionError after ``seconds``)."""
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < seconds, f"{what} did not happen within {seconds} s"
        time.sleep(0.02)
    return time.monotonic() - start


def test_the_procfile_worker_runs_a_dispatch_and_a_recording_job(hotline):
    message = leave_message(hotline, from_="+79160000001")  # nobody on duty: the message box
    add_handler(hotline, HANDLER_A, "Anna")
    waiting = queued_caller(hotline)  # its dispatch job waits in RQ
    phone = hotline.emulator.phone(HANDLER_A)
    assert not phone.ringing()

    worker = start_worker(hotline)  # --burst: it ends when the queue is empty
    try:
        wait_until(phone.ringing, 60, "the handler's phone ringing")
        assert worker.wait(timeout=120) == 0
    finally:
        if worker.poll() is None:
            kill(worker)
    assert entry(hotline, waiting.sid).state == "offered"  # the dispatch job's offer
    assert_stored_and_gone(hotline, recording_of(hotline, message.sid))  # the recording job's


def test_a_handler_back_from_wrap_up_is_rung_for_the_next_caller_on_time(hotline):
    handler_id = add_handler(hotline, HANDLER_A, "Anna")
    with hotline.app.app_context():
        session = db_session()
        session.execute(update(Handler).where(Handler.id == handler_id).values(wrap_up_s=2))
        session.commit()
    worker = start_worker(hotline, burst=False)
    try:
        first = queued_caller(hotline)
        phone = hotline.emulator.phone(HANDLER_A)
        wait_until(phone.ringing, 60, "the first offer")
        leg = phone.answer()
        leg.press("1")
        hotline.emulator.settle()
        assert entry(hotline, first.sid).state == "connected"

        second = queued_caller(hotline)  # the only handler is busy: the second caller waits
        first.hang_up()
        hotline.emulator.settle()
        with hotline.app.app_context():
            svc = handles(hotline.app)
            assert routing_core(svc.settings, svc.redis).presence(str(handler_id))[0] == "wrap_up"
        assert not phone.ringing()
        ended = entry(hotline, first.sid).ended_at  # the wrap-up counts from the call's end
        assert ended is not None

        wait_until(phone.ringing, 30, "the offer after the wrap-up")
        after = time.time() - ended.timestamp()
        # Rung when the 2 s of wrap-up were over, not a scheduler's second (or a tick) later.
        assert 1.9 <= after < 2.9, after
        assert entry(hotline, second.sid).state == "offered"
        second.hang_up()
    finally:
        kill(worker)
