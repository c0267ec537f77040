"""Background jobs: the one way to enqueue, delayed and periodic jobs, and the worker.

Every job goes through ``enqueue`` (now) or ``enqueue_in`` / ``enqueue_at`` (later), with one
policy: a unique job id (a second enqueue while the first is waiting is a no-op), retries with
backoff, a job timeout, a failure TTL, and RQ's ``JSONSerializer`` (no pickle: whoever can write
to Redis must not be able to run code in the worker). Callers commit the rows a job reads first;
the job re-reads them and is idempotent.

Later jobs wait in a Redis sorted set (their due time, to the millisecond) that every worker's
timer thread watches: RQ's own scheduler stores due times in whole seconds and wakes once a
second, and a handler coming back from wrap-up should not wait up to a second more for the next
caller. Periodic jobs (``every``) are enqueued by the same timers with one job id per period, so
any number of workers enqueue each period's job once. (``rq cron`` would do this, but it
enqueues with RQ's default, pickling serializer.)

``AppWorker`` is RQ's ``SimpleWorker`` with the app built once, in the worker's process, and an
app context around each job: a job pays for its own work only (building the app costs ~1 s).
RQ's retries still need its scheduler (``rq worker --with-scheduler``), which the worker forks
once at start: the database pool and the Redis pool are closed before that.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis
from flask import Flask, current_app
from rq import Queue, Retry, SimpleWorker
from rq.exceptions import DuplicateJobError, NoSuchJobError
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from db import database
from services import services

log = logging.getLogger(__name__)

JOB_TIMEOUT_S = 120
RETRY_INTERVALS_S = (5, 30, 120, 600, 1800)
RESULT_TTL_S = 3600
FAILURE_TTL_S = 7 * 24 * 3600
#: Statuses in which a job with the same id is still to run (a new enqueue is a no-op).
PENDING = (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED, JobStatus.STARTED)
#: How often a worker's timer thread looks for due jobs at most (it sleeps less when one is due
#: sooner).
TIMER_POLL_S = 0.02
#: How long a worker's claim on a due job lasts: another worker takes it over after that.
TIMER_CLAIM_MS = 30_000


@dataclass(frozen=True)
class Periodic:
    """A job enqueued every ``interval_s`` (a safety net or housekeeping, never the main path)."""

    name: str
    func: str
    interval_s: int
    timeout_s: int = JOB_TIMEOUT_S


@dataclass
class Jobs:
    """One app's job queue and periodic schedule (``app.extensions["jobs"]``)."""

    queue_name: str
    periodic: list[Periodic] = field(default_factory=list)
    _queues: dict[bool, Queue] = field(default_factory=dict, repr=False)

    def queue(self, connection: redis.Redis, urgent: bool = False) -> Queue:
        """The queue (or the urgent one) on ``connection``, made once per connection."""
        found = self._queues.get(urgent)
        if found is None or found.connection is not connection:
            name = self.urgent_queue_name if urgent else self.queue_name
            found = self._queues[urgent] = Queue(
                name, connection=connection, serializer=JSONSerializer
            )
        return found

    @property
    def urgent_queue_name(self) -> str:
        """The queue a worker takes jobs from first (``rq worker … hotline-urgent hotline``)."""
        return f"{self.queue_name}-urgent"

    @property
    def timers_key(self) -> str:
        return f"hotline:timers:{self.queue_name}"

    @property
    def timer_calls_key(self) -> str:
        return f"hotline:timer-calls:{self.queue_name}"


def init_app(app: Flask, queue_name: str) -> Jobs:
    jobs = app.extensions["jobs"] = Jobs(queue_name)
    return jobs


def every(app: Flask, interval_s: int, func: str, *, name: str, timeout_s: int = JOB_TIMEOUT_S):
    """Run ``func`` (a dotted path, no arguments) every ``interval_s`` seconds."""
    app.extensions["jobs"].periodic.append(Periodic(name, func, interval_s, timeout_s))


def _jobs() -> Jobs:
    return current_app.extensions["jobs"]  # type: ignore[no-any-return]


def queue(urgent: bool = False) -> Queue:
    """The hotline's RQ queue (JSON-serialised jobs) on the app's Redis; ``urgent``: the one
    workers empty first (a caller waits on its jobs: routing)."""
    return _jobs().queue(services().redis, urgent)


def enqueue(func: str, *args: Any, job_id: str, urgent: bool = False,
            timeout_s: int = JOB_TIMEOUT_S, ttl_s: int | None = None) -> str | None:  # fmt: skip
    """Enqueue ``func`` (a dotted path) with JSON-serialisable ``args``; the job id, or None if a
    job with that id is still waiting or running. A finished or failed job of the same id is
    replaced. Raises ``redis.RedisError`` when Redis does not answer."""
    q = queue(urgent)
    options = {
        "job_id": job_id, "unique": True, "job_timeout": timeout_s, "ttl": ttl_s,
        "result_ttl": RESULT_TTL_S, "failure_ttl": FAILURE_TTL_S,
        "retry": Retry(max=len(RETRY_INTERVALS_S), interval=list(RETRY_INTERVALS_S)),
    }  # fmt: skip
    try:
        q.enqueue(func, *args, **options)  # one round trip when the id is new (the usual case)
    except DuplicateJobError:
        old = fetch_job(job_id)
        if old is not None:
            if old.get_status(refresh=False) in PENDING:
                return None
            old.delete()  # finished or failed: replaced
        try:
            q.enqueue(func, *args, **options)
        except DuplicateJobError:  # another process enqueued it just now
            return None
    return job_id


def fetch_job(job_id: str) -> Job | None:
    """The job of that id, whichever queue it is in, or None."""
    try:
        return Job.fetch(job_id, connection=services().redis, serializer=JSONSerializer)
    except NoSuchJobError:
        return None


def enqueue_in(
    delay_s: float, func: str, *args: Any, job_id: str, urgent: bool = False
) -> str | None:
    """Enqueue ``func`` after ``delay_s`` seconds (to within ~20 ms); see ``enqueue_at``."""
    return enqueue_at(time.time() + max(0.0, delay_s), func, *args, job_id=job_id, urgent=urgent)


def enqueue_at(
    when: float | dt.datetime, func: str, *args: Any, job_id: str, urgent: bool = False
) -> str | None:
    """Enqueue ``func`` when ``when`` (Unix seconds or an aware datetime) comes; the job id, or
    None if a delayed job of that id is already waiting (its due time stands)."""
    due = when.timestamp() if isinstance(when, dt.datetime) else float(when)
    jobs, connection = _jobs(), services().redis
    call = json.dumps([func, list(args), urgent])
    with connection.pipeline(transaction=True) as pipe:
        pipe.hsetnx(jobs.timer_calls_key, job_id, call)
        pipe.zadd(jobs.timers_key, {job_id: due}, nx=True)
        _stored, added = pipe.execute()
    return job_id if added else None


def due_timers(now: float | None = None, limit: int = 100) -> list[tuple[str, float]]:
    """Delayed jobs whose time has come (job id, due time), earliest first."""
    now = time.time() if now is None else now
    found = services().redis.zrangebyscore(
        _jobs().timers_key, "-inf", now, start=0, num=limit, withscores=True
    )
    return [(job_id.decode(), due) for job_id, due in found]


def fire_due_timers(now: float | None = None) -> int:
    """Move the delayed jobs that are due into the queue; how many this call moved.

    Each is claimed first (a key with a TTL), then enqueued, then removed from the timers: a
    worker that dies in between leaves it to another after the claim expires: nothing lost."""
    jobs, connection = _jobs(), services().redis
    moved = 0
    for job_id, _due in due_timers(now):
        claim = f"{jobs.timers_key}:claim:{job_id}"
        if not connection.set(claim, "1", nx=True, px=TIMER_CLAIM_MS):
            continue
        raw = connection.hget(jobs.timer_calls_key, job_id)
        if raw is not None:
            func, args, urgent = json.loads(raw)
            enqueue(func, *args, job_id=job_id, urgent=urgent)
            moved += 1
        with connection.pipeline(transaction=True) as pipe:
            pipe.zrem(jobs.timers_key, job_id)
            pipe.hdel(jobs.timer_calls_key, job_id)
            pipe.delete(claim)
            pipe.execute()
    return moved


def next_due_in(now: float | None = None) -> float | None:
    """Seconds until the earliest delayed job is due (0 if one is), None if none waits."""
    first = services().redis.zrange(_jobs().timers_key, 0, 0, withscores=True)
    if not first:
        return None
    now = time.time() if now is None else now
    return max(0.0, first[0][1] - now)


def enqueue_periodic(now: float | None = None, done: dict[str, int] | None = None) -> int:
    """Enqueue each periodic job whose period has begun and not been enqueued by any worker yet
    (a marker per period in Redis, set once: the first worker to set it enqueues the job).
    ``done``: periods this process has handled, to skip asking Redis again. How many it
    enqueued."""
    now = time.time() if now is None else now
    done = {} if done is None else done
    jobs, connection = _jobs(), services().redis
    enqueued = 0
    for periodic in jobs.periodic:
        period = int(now // periodic.interval_s)
        if done.get(periodic.name) == period:
            continue
        job_id = f"periodic-{periodic.name}-{period}"
        marker = f"hotline:periodic:{jobs.queue_name}:{job_id}"
        if connection.set(marker, "1", nx=True, ex=2 * periodic.interval_s + 60):
            # No backlog: a period's job not started within its period is dropped.
            enqueue(periodic.func, job_id=job_id, timeout_s=periodic.timeout_s,
                    ttl_s=max(60, periodic.interval_s))  # fmt: skip
            enqueued += 1
        done[periodic.name] = period
    return enqueued


class Timers(threading.Thread):
    """A worker's timer thread: due delayed jobs and periodic jobs into the queue."""

    def __init__(self, app: Flask):
        super().__init__(name="hotline-timers", daemon=True)
        self.app = app
        self.stopping = threading.Event()

    def run(self) -> None:
        done: dict[str, int] = {}
        with self.app.app_context():
            while not self.stopping.is_set():
                pause = TIMER_POLL_S
                try:
                    fire_due_timers()
                    enqueue_periodic(done=done)
                    due_in = next_due_in()
                    if due_in is not None:
                        pause = min(pause, due_in)
                except redis.RedisError:
                    log.warning("timers: Redis did not answer; trying again in 1 s")
                    pause = 1.0
                except Exception:
                    log.exception("timers: a delayed job could not be enqueued")
                    pause = 1.0
                self.stopping.wait(pause)


class AppWorker(SimpleWorker):
    """RQ's ``SimpleWorker`` that builds the app once and runs each job in an app context.

    ``rq worker --worker-class app.Worker`` (a subclass naming ``app_factory``) starts it. Jobs
    run in the worker's own process, one at a time, each with a fresh app context (its own
    database session); RQ's job timeout still applies (its SIGALRM death penalty). Outside burst
    mode it also runs the timer thread (delayed and periodic jobs)."""

    app_factory: Callable[[], Flask] | None = None

    def __init__(self, *args: Any, app: Flask | None = None, **kwargs: Any):
        kwargs["serializer"] = JSONSerializer  # whatever the command line said: never pickle
        super().__init__(*args, **kwargs)
        if app is None:
            if self.app_factory is None:
                raise TypeError("AppWorker needs an app or an app_factory")
            app = type(self).app_factory()  # type: ignore[misc]
        self.app = app
        self.timers: Timers | None = None
        self.burst = False

    def work(self, burst: bool = False, *args: Any, **kwargs: Any) -> bool:
        self.burst = burst
        if not burst:  # nothing opened so far may be shared with the scheduler's process
            with self.app.app_context():
                database().dispose()
                services().dispose()
        try:
            return super().work(burst, *args, **kwargs)
        finally:
            if self.timers is not None:
                self.timers.stopping.set()

    def dequeue_job_and_maintain_ttl(self, timeout: Any, max_idle_time: Any = None) -> Any:
        # The first dequeue comes after RQ has forked its scheduler: start the timers now.
        if self.timers is None and not self.burst:
            self.timers = Timers(self.app)
            self.timers.start()
        return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)

    def execute_job(self, job: Job, queue: Queue) -> Any:
        with self.app.app_context():
            return super().execute_job(job, queue)


def run_queued_jobs(app: Flask, *, with_scheduler: bool = False, max_jobs: int | None = None
                    ) -> bool:  # fmt: skip
    """Run the queued jobs now in this process and return (tests, the CLI); whether any ran."""
    with app.app_context():
        urgent, q = queue(urgent=True), queue()
        worker = AppWorker([urgent, q], connection=q.connection, app=app)
    return worker.work(burst=True, with_scheduler=with_scheduler, max_jobs=max_jobs)
