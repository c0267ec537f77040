"""jobs: one policy for every job (unique id, retries, timeout, JSON), delayed jobs to the
millisecond, periodic jobs once per period, and the worker that runs them in an app context."""

from __future__ import annotations

import ast
import json
import zlib
from pathlib import Path

import pytest
from rq import Queue
from rq.job import Job

import jobs
from tests.support import run_jobs

ROOT = Path(__file__).resolve().parents[1]
RUNS: list[tuple] = []


def record_run(*args) -> int:
    """A job for these tests: notes its arguments, and whether it had an app context."""
    from flask import has_app_context

    RUNS.append((*args, has_app_context()))
    return len(RUNS)


def fail_always() -> None:
    raise RuntimeError("this job always fails")


@pytest.fixture(autouse=True)
def _runs():
    RUNS.clear()
    yield
    RUNS.clear()


def test_a_second_enqueue_while_the_first_waits_is_a_no_op(app):
    with app.app_context():
        assert jobs.enqueue("tests.test_jobs.record_run", "a", job_id="t-a") == "t-a"
        assert jobs.enqueue("tests.test_jobs.record_run", "a", job_id="t-a") is None
        assert jobs.enqueue("tests.test_jobs.record_run", "b", job_id="t-b") == "t-b"
        assert jobs.queue().job_ids == ["t-a", "t-b"]
    assert run_jobs(app)
    assert sorted(RUNS) == [("a", True), ("b", True)]


def test_a_finished_job_is_enqueued_again_and_runs_again(app):
    with app.app_context():
        jobs.enqueue("tests.test_jobs.record_run", "c", job_id="t-c")
    run_jobs(app)
    with app.app_context():
        assert jobs.queue().fetch_job("t-c").get_status() == "finished"
        assert jobs.enqueue("tests.test_jobs.record_run", "c", job_id="t-c") == "t-c"
    run_jobs(app)
    assert RUNS == [("c", True), ("c", True)]


def test_every_job_has_the_policy_and_is_stored_as_json(app, settings):
    with app.app_context():
        jobs.enqueue("tests.test_jobs.record_run", 7, "x", job_id="t-policy")
        job = jobs.queue().fetch_job("t-policy")
        assert job.timeout == jobs.JOB_TIMEOUT_S
        assert job.failure_ttl == jobs.FAILURE_TTL_S and job.result_ttl == jobs.RESULT_TTL_S
        assert job.retries_left == len(jobs.RETRY_INTERVALS_S)
        assert job.retry_intervals == list(jobs.RETRY_INTERVALS_S)
        raw = jobs.queue().connection.hget(job.key, "data")
        assert json.loads(zlib.decompress(raw)) == [
            "tests.test_jobs.record_run",
            None,
            [7, "x"],
            {},
        ]


def test_a_failed_job_waits_for_its_retry_and_is_not_enqueued_twice(app):
    with app.app_context():
        jobs.enqueue("tests.test_jobs.fail_always", job_id="t-fail")
    run_jobs(app)
    with app.app_context():
        job = jobs.queue().fetch_job("t-fail")
        assert job.get_status() == "scheduled"  # RQ's retry, in 5 s
        assert jobs.enqueue("tests.test_jobs.fail_always", job_id="t-fail") is None


def test_a_pickled_job_planted_in_redis_is_not_run(app):
    """Whoever can write to Redis cannot make the worker run code: the worker reads JSON only."""
    with app.app_context():
        connection = jobs.queue().connection
        planted = Queue(app.extensions["jobs"].queue_name, connection=connection)  # pickle
        planted.enqueue("tests.test_jobs.record_run", "planted", job_id="t-planted")
    run_jobs(app)
    assert RUNS == []
    with app.app_context():
        assert Job.fetch("t-planted", connection=connection).get_status() == "failed"


def test_a_delayed_job_is_queued_when_due_and_only_once(app):
    with app.app_context():
        assert jobs.enqueue_at(1000.5, "tests.test_jobs.record_run", "d", job_id="t-d") == "t-d"
        assert jobs.enqueue_at(999.0, "tests.test_jobs.record_run", "d", job_id="t-d") is None
        assert jobs.fire_due_timers(now=1000.4) == 0
        assert jobs.queue().job_ids == []
        assert jobs.next_due_in(now=1000.0) == pytest.approx(0.5)
        assert jobs.fire_due_timers(now=1000.5) == 1
        assert jobs.fire_due_timers(now=1001.0) == 0  # moved once
        assert jobs.queue().job_ids == ["t-d"] and jobs.next_due_in() is None
    run_jobs(app)
    assert RUNS == [("d", True)]


def test_a_due_job_claimed_by_a_dead_worker_is_taken_over(app):
    with app.app_context():
        jobs.enqueue_at(5.0, "tests.test_jobs.record_run", "e", job_id="t-e")
        connection = jobs.queue().connection
        key = app.extensions["jobs"].timers_key
        connection.set(f"{key}:claim:t-e", "1", px=50)  # as a worker that died after claiming
        assert jobs.fire_due_timers(now=6.0) == 0
        connection.delete(f"{key}:claim:t-e")  # the claim expired
        assert jobs.fire_due_timers(now=6.0) == 1


def test_periodic_jobs_are_enqueued_once_per_period(app):
    app.extensions["jobs"].periodic.clear()  # the app's own (routing tick, retention …)
    jobs.every(app, 15, "tests.test_jobs.record_run", name="test-tick")
    with app.app_context():
        assert jobs.enqueue_periodic(now=30.0) == 1
        assert jobs.enqueue_periodic(now=44.9, done={}) == 0  # another worker, same period
    run_jobs(app)  # the period's job ran and finished …
    with app.app_context():
        assert jobs.enqueue_periodic(now=44.0, done={}) == 0  # … a worker started late: no rerun
        assert jobs.enqueue_periodic(now=45.0) == 1
        (job_id,) = jobs.queue().job_ids
        assert job_id == "periodic-test-tick-3"
        assert jobs.queue().fetch_job(job_id).ttl == 60  # not run in its period: dropped
    assert RUNS == [(True,)]  # the first period's job ran once (no arguments, in an app context)


def _calls_queue_methods(tree: ast.AST) -> list[int]:
    lines = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("enqueue", "enqueue_in", "enqueue_at", "enqueue_call",
                                   "enqueue_many", "schedule_job", "enqueue_job")
        ):  # fmt: skip
            lines.append(node.lineno)
    return lines


def test_no_module_enqueues_but_through_the_wrapper():
    """Every job gets the policy: only jobs.py builds RQ queues and calls their enqueue methods
    (the routing core's own ``enqueue`` queues a caller, not a job: routing/core.py, reconcile,
    callbacks and handover call it on ``core``)."""
    wrong = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith((".venv/", "tests/", "emulator/", "bench/")) or rel == "jobs.py":
            continue
        tree = ast.parse(path.read_text(), filename=rel)
        imports_rq = any(
            isinstance(node, ast.ImportFrom | ast.Import)
            and any(
                (getattr(node, "module", None) or alias.name).split(".")[0] == "rq"
                for alias in node.names
            )
            for node in ast.walk(tree)
        )
        for node in ast.walk(tree):
            call = node if isinstance(node, ast.Call) else None
            if call is None or not isinstance(call.func, ast.Attribute):
                continue
            receiver = ast.unparse(call.func.value)
            if call.func.attr.startswith(("enqueue", "schedule_job")) and (
                imports_rq or "queue" in receiver.lower()
            ):
                wrong.append(f"{rel}:{call.lineno}: {receiver}.{call.func.attr}(…)")
        if imports_rq:
            wrong.append(f"{rel}: imports rq (only jobs.py may)")
    assert not wrong, "\n".join(wrong)


def test_the_wrapper_test_would_catch_a_direct_enqueue():
    tree = ast.parse("from jobs import queue\nqueue().enqueue('x.y', job_id='z')\n")
    assert _calls_queue_methods(tree) == [2]


def test_urgent_jobs_run_first_and_keep_their_queue_when_delayed(app):
    with app.app_context():
        jobs.enqueue("tests.test_jobs.record_run", "recording", job_id="t-slow")
        jobs.enqueue("tests.test_jobs.record_run", "dispatch", job_id="t-fast", urgent=True)
        jobs.enqueue_at(7.0, "tests.test_jobs.record_run", "wrap-up", job_id="t-later", urgent=True)
        jobs.fire_due_timers(now=8.0)
        assert jobs.queue(urgent=True).job_ids == ["t-fast", "t-later"]
        assert jobs.queue().job_ids == ["t-slow"]
    run_jobs(app)
    assert [run[0] for run in RUNS] == ["dispatch", "wrap-up", "recording"]
