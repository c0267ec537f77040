"""extensions.enqueue: one job per id while it waits, RQ's own job format, a real worker runs it."""

from __future__ import annotations

import redis
from rq import SimpleWorker
from rq.job import Job, JobStatus

from extensions import JOB_RETRY_INTERVALS_S, JOB_TIMEOUT_S, enqueue, services

RUNS_KEY = "test:enqueue:runs"


def count_run(label: str, *, times: int = 1) -> str:
    """The job: counts its runs in Redis (the worker's connection is the test's Redis)."""
    from rq import get_current_job

    get_current_job().connection.hincrby(RUNS_KEY, label, times)  # type: ignore[union-attr]
    return label


def queued_ids(app) -> list[str]:
    with app.app_context():
        return services().queue.get_job_ids()


def run_jobs(app) -> None:
    with app.app_context():
        queue = services().queue
        SimpleWorker([queue], connection=queue.connection).work(burst=True)


def test_a_second_enqueue_while_the_first_waits_is_a_no_op(app):
    with app.app_context():
        first = enqueue("tests.test_enqueue.count_run", "a", job_id="test-enqueue-a", times=2)
        second = enqueue("tests.test_enqueue.count_run", "a", job_id="test-enqueue-a", times=2)
        other = enqueue("tests.test_enqueue.count_run", "b", job_id="test-enqueue-b")
    assert first is not None and second is None and other is not None
    assert queued_ids(app) == ["test-enqueue-a", "test-enqueue-b"]

    run_jobs(app)
    r = redis.Redis.from_url(app.extensions["hotline"].settings.redis_url)
    assert r.hgetall(RUNS_KEY) == {b"a": b"2", b"b": b"1"}  # args and kwargs reached the job
    assert queued_ids(app) == []


def test_the_job_is_rqs_own_with_the_projects_policy(app):
    with app.app_context():
        enqueue("tests.test_enqueue.count_run", "c", job_id="test-enqueue-c")
        queue = services().queue
        job = Job.fetch("test-enqueue-c", connection=queue.connection)
        assert job.get_status() == JobStatus.QUEUED
        assert job.func_name == "tests.test_enqueue.count_run" and job.args == ("c",)
        assert job.origin == queue.name and job.enqueued_at is not None
        assert job.timeout == JOB_TIMEOUT_S
        assert job.retries_left == len(JOB_RETRY_INTERVALS_S)
        assert job.retry_intervals == JOB_RETRY_INTERVALS_S
        assert job.result_ttl == 3600
        assert queue.connection.sismember(queue.redis_queues_keys, queue.key)  # workers find it


def test_a_finished_job_is_enqueued_again_and_kept_until_it_runs(app):
    with app.app_context():
        enqueue("tests.test_enqueue.count_run", "d", job_id="test-enqueue-d")
    run_jobs(app)
    r = redis.Redis.from_url(app.extensions["hotline"].settings.redis_url)
    key = Job.key_for("test-enqueue-d")
    assert r.hget(key, "status") == b"finished" and r.ttl(key) > 0  # the result is kept an hour

    with app.app_context():
        again = enqueue("tests.test_enqueue.count_run", "d", job_id="test-enqueue-d")
    assert again is not None
    assert r.hget(key, "status") == b"queued" and r.ttl(key) == -1  # no expiry while it waits
    run_jobs(app)
    assert r.hget(RUNS_KEY, "d") == b"2"


def test_a_failed_job_waiting_for_its_retry_is_not_enqueued_twice(app):
    with app.app_context():
        enqueue("tests.test_enqueue.count_run", "e", job_id="test-enqueue-e")
        r = services().redis
        r.hset(Job.key_for("test-enqueue-e"), "status", JobStatus.SCHEDULED.value)
        assert enqueue("tests.test_enqueue.count_run", "e", job_id="test-enqueue-e") is None
    assert queued_ids(app) == ["test-enqueue-e"]
