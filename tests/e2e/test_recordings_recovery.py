"""A recording loses nothing when its worker dies: the Procfile's worker killed (SIGKILL) in the
middle of the job (waiting for the database's write lock), then RQ's own handling of the abandoned job retries it to the end: one
file, gone at the carrier. And a job lost with Redis is found again by the periodic sweep."""

from __future__ import annotations

import datetime as dt
import time

from rq.registry import StartedJobRegistry
from sqlalchemy import update

from db import db_session
from recordings import service
from recordings.jobs import resume_stalled
from recordings.models import CARRIER_DELETED, PENDING, Recording
from tests.e2e.test_recordings import (
    assert_stored_and_gone,
    at_carrier,
    leave_message,
    recording_of,
    run_due_retries,
    store_files,
)
from tests.e2e.test_routing_calls import drain
from tests.e2e.workers import WriteLock, kill, start_worker
from tests.support import handles


def test_a_worker_killed_mid_job_loses_nothing_and_leaves_one_file(hotline):
    call = leave_message(hotline)  # its job waits in RQ
    row = recording_of(hotline, call.sid)
    sid = row.recording_sid
    with WriteLock(hotline.settings.database_url, "recording"):
        worker = start_worker(hotline)
        try:
            queue = handles(hotline.app).queue
            deadline = time.monotonic() + 60
            while queue.fetch_job(service.job_id(row.id)).get_status() != "started":
                assert worker.poll() is None, "the worker ended before it was killed"
                assert time.monotonic() < deadline, "the worker never started the job"
                time.sleep(0.05)
            time.sleep(0.5)  # the job runs until it waits for the lock
            assert worker.poll() is None
        finally:
            kill(worker)

    row = recording_of(hotline, call.sid)
    assert (row.state, row.attempts, row.storage_key) == (PENDING, 0, None)  # nothing committed
    assert store_files(hotline) == [] and at_carrier(hotline, sid)  # nothing lost either
    queue = handles(hotline.app).queue
    job = queue.fetch_job(service.job_id(row.id))
    assert job.get_status() == "started"  # as the dead worker left it

    # Past the job's timeout, any worker's maintenance finds it abandoned and retries it.
    StartedJobRegistry(queue=queue).cleanup(timestamp=time.time() + 3600)
    assert job.get_status(refresh=True) == "scheduled"
    run_due_retries(hotline)
    row = recording_of(hotline, call.sid)
    assert_stored_and_gone(hotline, row)  # exactly one file, and the carrier's copy is gone
    assert row.attempts == 1
    # SQLite: the killed run's first transaction waited for the lock (every transaction takes
    # it at its start), before the download; PostgreSQL: the table lock stopped its first write,
    # after the download. Either way the retry downloaded it once more.
    sqlite = hotline.settings.database_url.startswith("sqlite")
    assert hotline.emulator.media_requests(sid) == (1 if sqlite else 2)


def test_a_job_lost_with_redis_is_enqueued_again_by_the_sweep(hotline):
    call = leave_message(hotline)
    row = recording_of(hotline, call.sid)
    svc = handles(hotline.app)
    svc.redis.flushdb()  # the queued job is gone
    with hotline.app.app_context():
        assert resume_stalled() == 0  # too recent to call stalled
        session = db_session()
        session.execute(
            update(Recording)
            .where(Recording.id == row.id)
            .values(updated_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=20))
        )
        session.commit()
        assert resume_stalled() == 1
        assert resume_stalled() == 0  # its job is queued now: not twice
    drain(hotline)
    row = recording_of(hotline, call.sid)
    assert row.state == CARRIER_DELETED
    assert_stored_and_gone(hotline, row)
