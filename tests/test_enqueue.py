"""extensions.enqueue: one job per id while it waits, RQ's own job format, a real worker runs it."""

from __future__ import annotations

import zlib

import pytest
import redis
from rq import Retry, SimpleWorker
from rq.job import Job, JobStatus
from rq.utils import utcparse

from extensions import JOB_RETRY_INTERVALS_S, JOB_TIMEOUT_S, enqueue, services

RUNS_KEY = "test:enqueue:runs"


def count_run(label: str, *_more: object, times: int = 1) -> str:
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


def test_the_job_hash_is_the_one_rq_would_write(app):
    """enqueue fills in RQ's job hash from a per-function template: field for field what RQ's
    own Job.create + Queue._prepare_for_queue + Job.to_dict give for the same job."""
    with app.app_context():
        queue = services().queue
        enqueue("tests.test_enqueue.count_run", "f", {"k": [1]}, job_id="test-enqueue-f", times=3)
        enqueue("tests.test_enqueue.count_run", "g", job_id="test-enqueue-g")  # the template again
        for job_id, args, kwargs in (
            ("test-enqueue-f", ("f", {"k": [1]}), {"times": 3}),
            ("test-enqueue-g", ("g",), {}),
        ):
            ours = queue.connection.hgetall(Job.key_for(job_id))
            theirs = Job.create(
                "tests.test_enqueue.count_run", args=args, kwargs=kwargs, id=job_id,
                connection=queue.connection, timeout=JOB_TIMEOUT_S, result_ttl=3600,
                failure_ttl=7 * 24 * 3600,
                retry=Retry(max=len(JOB_RETRY_INTERVALS_S), interval=JOB_RETRY_INTERVALS_S),
            )  # fmt: skip
            queue._prepare_for_queue(theirs)
            encode = queue.connection.get_encoder().encode  # as redis-py sends a value
            expected = {
                name.encode(): encode(value)
                for name, value in theirs.to_dict().items()
                if value is not None
            }
            assert ours.keys() == expected.keys()
            for name in (b"created_at", b"enqueued_at"):  # when, in RQ's format
                assert utcparse(ours.pop(name).decode()) <= utcparse(expected.pop(name).decode())
            assert zlib.decompress(ours.pop(b"data")) == zlib.decompress(expected.pop(b"data"))
            assert ours == expected
            fetched = Job.fetch(job_id, connection=queue.connection)
            assert (fetched.args, fetched.kwargs) == (args, kwargs)
    run_jobs(app)
    r = redis.Redis.from_url(app.extensions["hotline"].settings.redis_url)
    assert r.hgetall(RUNS_KEY) == {b"f": b"3", b"g": b"1"}


def test_a_job_id_rq_would_refuse_is_refused(app):
    with app.app_context(), pytest.raises(ValueError):
        enqueue("tests.test_enqueue.count_run", "h", job_id="no spaces or colons: here")
    assert queued_ids(app) == []


def test_a_forked_child_enqueues_on_its_own_connection_and_the_parents_still_works(app):
    """The enqueue client keeps one connection (no pool to notice a fork): a child must not
    write into its parent's socket, and closing its copy must not break the parent's."""
    import os

    with app.app_context():
        svc = services()
        assert enqueue("tests.test_enqueue.count_run", "p1", job_id="test-fork-p1")
        parent_client = svc._enqueue_client
        parent_id = parent_client.client_id()
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: report, never return into pytest
            code = 1
            try:
                job = enqueue("tests.test_enqueue.count_run", "c", job_id="test-fork-c")
                child = svc._enqueue_client
                ok = job and child is not parent_client and child.client_id() != parent_id
                svc.dispose()  # closes the child's own connection, not its parent's
                code = 0 if ok else 2
            finally:
                os.write(write, bytes([code]))
                os._exit(0)
        os.close(write)
        _, status = os.waitpid(pid, 0)
        reported = os.read(read, 1)
        os.close(read)
        assert status == 0 and reported == b"\x00"
        assert svc._enqueue_client is parent_client and parent_client.client_id() == parent_id
        assert enqueue("tests.test_enqueue.count_run", "p2", job_id="test-fork-p2")
    assert queued_ids(app) == ["test-fork-p1", "test-fork-c", "test-fork-p2"]
