"""Queue-to-ring under a surge: the wait a caller feels between joining the queue and a
handler's phone ringing, with every process run as production runs it.

    .venv/bin/python -m bench.dispatch            # 200 handlers, 300 callers over 10 s
    .venv/bin/python -m bench.dispatch --quick    # 20 handlers, 30 callers over 3 s
    .venv/bin/python -m bench.dispatch --help     # --handlers --callers --surge-seconds ...

What runs: the embedded Redis, a fresh SQLite in a temp dir migrated by the Procfile's
``release`` line, then its ``web`` and ``worker`` lines (and ``clock`` if it has one), each read
from the Procfile at run time and run through ``/bin/sh`` with ``$PORT``/``$REDIS_URL`` set (the
web bind host is rewritten to 127.0.0.1: nothing listens beyond loopback). The carrier is the local
Twilio emulator in this process, on the real clock (latency is the point), pointed at by
``TWILIO_API_BASE_URL``. Handlers are added with the app's CLI (``handlers add``, run in this
process), set available in bulk (the rows and events ``handlers presence N available`` writes,
without one dispatch job per handler) and loaded by ``routing reconcile``.

The scenario: every handler's phone answers an offer call at once, presses 1 when the whisper
asks for it, talks for ``--talk-seconds`` once in the conference, and hangs up; the handler
then has ``--wrap-up`` seconds of wrap-up (their ``wrap_up_s``). Callers arrive evenly over
``--surge-seconds``, choose English (3) and an operator (0), and stay on the line until
connected (the handler's hang-up ends their call); one sent to the message box hangs up.

How it measures, inside the emulator (its traffic observers, ``Emulator.observe``):
- queue-to-ring: from the moment the emulator received the webhook answer holding the caller's
  ``<Enqueue>`` to the moment it received the REST request that rings a handler for that caller
  (``Calls.json`` or ``Participants.json`` with a handler's number in ``To``; the caller comes
  from the ``routing_offer`` row of that call SID). If the handler rung had been busy, the clock
  starts instead when they became free: their hang-up plus their wrap-up (a ring that comes
  before that, or before the ``<Enqueue>`` answer itself, counts as 0 ms and is reported
  apart). Only each caller's first ring counts.
- real wait: from the answer to the caller's first ``/routing/wait`` (the message that says
  their place and "about N seconds/minutes" from now) to the REST redirect of the caller into
  the conference (``/routing/join``); compared with that first estimate.
- ``jobs_per_s``: jobs the RQ workers finished (their counters, rq's API) from the first dial
  until every caller was connected or sent to the message box, per second.
- ``rest_roundtrip_p50_ms``: twilio-python's ``calls.list(limit=1)`` against the idle
  emulator, the floor of any REST request.

The last line is one JSON object. Targets: queue-to-ring p99 < 300 ms, lost = 0,
estimate_error_p50 <= 0.5. No phone number is ever printed.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import math
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import redis
from rq import Queue, Worker
from rq.job import Job
from rq.registry import FinishedJobRegistry
from rq.serializers import JSONSerializer

from devtools.services import EmbeddedRedis
from emulator import Emulator, PhoneCall
from emulator.clock import SettleTimeout

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent  # the virtualenv's bin (not resolved: keep the venv)
HOTLINE = "+15005550006"
POLL_S = 0.02
ACTION_THREADS = 48
TARGET_P99_MS = 300.0
TARGET_ESTIMATE_ERROR = 0.5
NUMBER_LIKE = re.compile(r"\+?\d[\d ().-]{6,}\d")
ESTIMATE = re.compile(r"about (\d+) (second|minute)", re.IGNORECASE)
WHISPER_KEY = re.compile(r"press 1", re.IGNORECASE)
MAX_PHONES = 9999  # handler_numbers / caller_numbers have four digits to spare


def redact(text: str) -> str:
    return NUMBER_LIKE.sub("[number]", text)


def percentile(values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ------------------------------------------------------------------ the scenario
@dataclass(frozen=True)
class Scenario:
    handlers: int
    callers: int
    surge_s: float
    talk_s: float
    wrap_up_s: int
    max_s: float  # the surge phase stops here whatever happens
    warmup_calls: int = 10  # handled before the surge: the hotline's recent handling times


def parse_args(argv: list[str] | None) -> Scenario:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="20 handlers, 30 callers over 3 s")
    parser.add_argument("--handlers", type=int, help="default 200 (quick: 20)")
    parser.add_argument("--callers", type=int, help="default 300 (quick: 30)")
    parser.add_argument("--surge-seconds", type=float, help="arrivals spread over; 10 (quick: 3)")
    parser.add_argument("--talk-seconds", type=float, default=15.0)
    parser.add_argument("--wrap-up", type=int, default=5, help="each handler's wrap_up_s")
    parser.add_argument("--max-seconds", type=float, default=900.0, help="bound on the surge")
    parser.add_argument(
        "--warmup-calls", type=int, help="calls handled before the surge; default 10 (quick: 3)"
    )
    args = parser.parse_args(argv)
    quick = args.quick
    scenario = Scenario(
        handlers=args.handlers or (20 if quick else 200),
        callers=args.callers or (30 if quick else 300),
        surge_s=args.surge_seconds if args.surge_seconds is not None else (3.0 if quick else 10.0),
        talk_s=args.talk_seconds,
        wrap_up_s=args.wrap_up,
        max_s=args.max_seconds,
        warmup_calls=args.warmup_calls if args.warmup_calls is not None else (3 if quick else 10),
    )
    if not (1 <= scenario.handlers <= MAX_PHONES and 1 <= scenario.callers <= MAX_PHONES):
        parser.error(f"handlers and callers: 1 to {MAX_PHONES}")
    if scenario.surge_s < 0 or scenario.talk_s < 0 or not 0 <= scenario.wrap_up_s <= 3600:
        parser.error("the surge and talk time must not be negative, the wrap-up 0 to 3600 s")
    if scenario.max_s <= 0:
        parser.error("--max-seconds must be positive")
    if not 0 <= scenario.warmup_calls <= scenario.handlers:
        parser.error("--warmup-calls: 0 to the number of handlers")
    return scenario


def handler_numbers(count: int) -> list[str]:
    return [f"+1555010{i:04d}" for i in range(count)]


def caller_numbers(count: int, first: int = 0) -> list[str]:
    return [f"+1555020{i:04d}" for i in range(first, first + count)]


@dataclass(frozen=True)
class Texts:
    """What the callers listen for, from the English catalog."""

    main_menu: str
    operators_busy: str
    position: re.Pattern[str]

    @classmethod
    def load(cls) -> Texts:
        prompts = tomllib.loads((ROOT / "ivr/prompts/en.toml").read_text())["prompts"]
        template = re.escape(prompts["queue_position"]).replace(r"\{position\}", r"(\d+)")
        return cls(prompts["main_menu"], prompts["operators_busy"], re.compile(template))


# ------------------------------------------------------------------ the Procfile's processes
def procfile() -> dict[str, str]:
    """``name: command`` lines of the Procfile, as a process manager reads them."""
    commands: dict[str, str] = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, sep, command = line.partition(":")
        if sep and name.strip() and not line.lstrip().startswith("#"):
            commands[name.strip()] = command.strip()
    return commands


def loopback_only(command: str) -> str:
    return command.replace("0.0.0.0", "127.0.0.1")  # noqa: S104 - replacing it, not binding


class Process:
    """One Procfile line run through /bin/sh (which substitutes $PORT, $REDIS_URL…), in its own
    session so that its whole group (an RQ worker's work horses too) is stopped together."""

    def __init__(self, name: str, command: str, env: dict[str, str], log_dir: Path):
        self.name, self.command, self.env = name, command, env
        self.log_path = log_dir / f"{name}.log"
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        with open(self.log_path, "ab") as log:
            self.popen = subprocess.Popen(
                ["/bin/sh", "-c", "exec " + self.command], cwd=ROOT, env=self.env,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        return self

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        if self.popen is None:
            return
        _signal_group(self.popen.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=timeout)
        _signal_group(self.popen.pid, signal.SIGKILL)  # whatever of the group is left
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=5)

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return ""
        return redact("\n".join(f"    {self.name}| {line}" for line in text))


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def run_release(command: str, env: dict[str, str]) -> None:
    done = subprocess.run(
        ["/bin/sh", "-c", command], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=180, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"release failed: {redact(done.stdout + done.stderr)[-2000:]}")


def wait_until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} not within {timeout_s:.0f} s")


def web_ready(port: int) -> bool:
    try:
        url = f"http://127.0.0.1:{port}/readyz"
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


# ------------------------------------------------------------------ handlers (the app's CLI)
def add_handlers(env: dict[str, str], numbers: list[str], wrap_up_s: int) -> str:
    """``flask handlers add`` for each (the CLI's own code, run in this process), all set
    available in the database in one transaction, then ``flask routing reconcile``."""
    from app import create_app
    from inquiries.models import INQUIRY_KINDS
    from settings import load_settings

    cli = create_app(load_settings(env)).test_cli_runner()
    skills = ",".join(INQUIRY_KINDS)
    for i, number in enumerate(numbers, 1):
        result = cli.invoke(args=[
            "handlers", "add", "--name", f"Handler {i}", "--languages", "en", "--skills", skills,
            "--phone", number, "--wrap-up", str(wrap_up_s),
        ])  # fmt: skip
        if result.exit_code != 0:
            raise RuntimeError(f"handlers add: {redact(result.output)}")
    set_available(env["DATABASE_URL"])
    result = cli.invoke(args=["routing", "reconcile"])
    if result.exit_code != 0:
        raise RuntimeError(f"routing reconcile: {redact(result.output)}")
    return result.output.strip()


def set_available(database_url: str) -> None:
    """What ``handlers presence N available`` commits for every offline handler (the row and a
    HANDLER_PRESENCE event), in bulk: the reconcile that follows loads them into Redis."""
    from sqlalchemy import create_engine, insert, select, update

    from inquiries.models import CallEvent
    from routing.models import Handler

    handler, event = Handler.__table__, CallEvent.__table__
    now = dt.datetime.now(dt.UTC)
    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:
            ids = conn.execute(
                select(handler.c.id).where(handler.c.active.is_(True),
                                           handler.c.presence == "offline")
            ).scalars().all()  # fmt: skip
            conn.execute(
                update(handler).where(handler.c.id.in_(ids))
                .values(presence="available", presence_reason=None, presence_changed_at=now)
            )  # fmt: skip
            conn.execute(insert(event), [
                {"time": now, "interaction_id": None, "event": "HANDLER_PRESENCE",
                 "data": {"handler_id": i, "from": "offline", "to": "available"}}
                for i in ids
            ])  # fmt: skip
    finally:
        engine.dispose()


# ------------------------------------------------------------------ timestamps in the emulator
@dataclass(frozen=True)
class Ring:
    at: float  # monotonic: the REST request reached the emulator
    number: str  # the handler's phone (never printed)
    sid: str  # the offer call's SID


class Recorder:
    """Timestamps taken inside the emulator (it runs in this process), through its traffic
    observers (``Emulator.observe``). ``time.monotonic()`` throughout."""

    def __init__(self, handler_phones: list[str]):
        self.handler_phones = frozenset(handler_phones)
        self.lock = threading.Lock()
        self.enqueued: dict[str, float] = {}  # caller SID → its <Enqueue> answer received
        self.announced: dict[str, float] = {}  # caller SID → its first wait message received
        self.connected: dict[str, float] = {}  # caller SID → redirected into the conference
        self.rings: list[Ring] = []
        self.new_rings: queue.SimpleQueue[Ring] = queue.SimpleQueue()

    def reset(self) -> None:
        """Forget what the warm-up calls did."""
        with self.lock:
            self.enqueued.clear()
            self.announced.clear()
            self.connected.clear()
            self.rings.clear()
        self.new_rings = queue.SimpleQueue()

    def install(self, emu: Emulator) -> None:
        emu.observe(webhook_answer=self._answered, rest_request=self._rest)

    def _answered(self, url: str, params: dict[str, str], reply) -> None:
        received = time.monotonic()
        if b"<Enqueue" in reply.content:
            with self.lock:
                self.enqueued.setdefault(params.get("CallSid", ""), received)
        elif url.split("?", 1)[0].endswith("/routing/wait"):  # the place and the estimate
            with self.lock:
                self.announced.setdefault(params.get("CallSid", ""), received)

    def _rest(self, arrived: float, method: str, path: str, form: dict, status: int, body):
        if method != "POST":
            return
        if path.endswith(("/Calls.json", "/Participants.json")):
            to = form.get("To", "")
            sid = (body or {}).get("call_sid") or (body or {}).get("sid")
            if to in self.handler_phones and status == 201 and sid:
                found = Ring(arrived, to, sid)
                with self.lock:
                    self.rings.append(found)
                self.new_rings.put(found)
        elif "/Calls/" in path and "/routing/join" in form.get("Url", ""):
            sid = path.rsplit("/", 1)[-1].removesuffix(".json")
            with self.lock:
                self.connected.setdefault(sid, arrived)


# ------------------------------------------------------------------ the phones
class Actions:
    """Phone actions on a few daemon threads: an emulator action returns only once the emulator
    was quiescent after it, which must not hold up the driver's loop."""

    def __init__(self, threads: int = ACTION_THREADS):
        self.jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self.errors: Counter[str] = Counter()
        self.threads = threads
        for i in range(threads):
            threading.Thread(target=self._work, name=f"bench-action-{i}", daemon=True).start()

    def submit(self, action: Callable[[], None]) -> None:
        self.jobs.put(action)

    def close(self) -> None:
        for _ in range(self.threads):
            self.jobs.put(None)

    def _work(self) -> None:
        while (action := self.jobs.get()) is not None:
            try:
                action()
            except SettleTimeout:
                self.errors["emulator not quiescent within 60 s (the action still happened)"] += 1
            except Exception as exc:
                self.errors[type(exc).__name__] += 1


@dataclass
class Caller:
    number: str
    due: float
    step: str = "to dial"  # to dial → dialling → language → menu → waiting → ended
    call: PhoneCall | None = None
    message_box: bool = False


@dataclass
class HandlerPhone:
    number: str
    wrap_up_s: float
    #: (call ended, free again) for each call this handler took or was offered
    freed: list[tuple[float, float]] = field(default_factory=list)


@dataclass
class Leg:
    """An offer call ringing at a handler's phone, and what the handler does with it."""

    ring: Ring
    handler: HandlerPhone
    call: PhoneCall
    step: str = "answering"  # answering → accepting → talking → hanging up → ended
    talk_until: float = 0.0


class Phones:
    """Drives every phone from one loop: callers dial when due and walk the IVR; handlers
    answer rings, accept, talk and hang up."""

    def __init__(
        self, emu: Emulator, recorder: Recorder, scenario: Scenario, texts: Texts,
        first_number: int = 0,
    ):  # fmt: skip
        self.emu, self.recorder, self.scenario, self.texts = emu, recorder, scenario, texts
        self.first_number = first_number
        self.actions = Actions()
        self.callers: list[Caller] = []
        self.handlers = {n: HandlerPhone(n, scenario.wrap_up_s) for n in recorder.handler_phones}
        self.legs: list[Leg] = []

    def schedule(self, start: float) -> None:
        spacing = self.scenario.surge_s / max(1, self.scenario.callers - 1)
        numbers = caller_numbers(self.scenario.callers, self.first_number)
        self.callers = [Caller(n, start + i * spacing) for i, n in enumerate(numbers)]

    def step(self, now: float) -> None:
        self._take_rings()
        for caller in self.callers:
            if caller.step != "ended":
                self._step_caller(caller, now)
        for leg in self.legs:
            if leg.step != "ended":
                self._step_leg(leg, now)

    def resolved(self) -> bool:
        """Every caller connected, sent to the message box, or gone."""
        connected = self.recorder.connected
        return all(
            c.step == "ended" or c.message_box or (c.call is not None and c.call.sid in connected)
            for c in self.callers
        )

    def finished(self) -> bool:
        return all(c.step == "ended" for c in self.callers) and all(
            leg.step == "ended" for leg in self.legs
        )

    # -- callers ----------------------------------------------------------------------------
    def _step_caller(self, caller: Caller, now: float) -> None:
        if caller.step == "to dial":
            if now >= caller.due:
                caller.step = "dialling"
                self.actions.submit(lambda: self.emu.dial(caller.number, HOTLINE, listen=False))
            return
        if caller.call is None:  # the leg exists as soon as the dial is placed
            legs = self.emu.phone(caller.number).calls()
            if not legs:
                return
            caller.call, caller.step = legs[0], "language"
        call = caller.call
        if call.ended:
            caller.step = "ended"
        elif caller.step == "language" and any(h.kind == "say" for h in call.heard):
            caller.step = "menu"  # the language menu plays: barge in with English
            self.actions.submit(lambda: call.press("3", listen=False))
        elif caller.step == "menu" and self.texts.main_menu in call.said_texts():
            caller.step = "waiting"
            self.actions.submit(lambda: call.press("0", listen=False))  # an operator
        elif caller.step == "waiting" and call.activity == "record" and not caller.message_box:
            caller.message_box = True  # a message instead of a handler: this caller hangs up
            self.actions.submit(call.hang_up)

    # -- handlers ---------------------------------------------------------------------------
    def _take_rings(self) -> None:
        while True:
            try:
                ring = self.recorder.new_rings.get_nowait()
            except queue.Empty:
                return
            call = self.emu.call(ring.sid)
            self.legs.append(Leg(ring, self.handlers[ring.number], call))
            self.actions.submit(lambda call=call: call.answer(listen=False))

    def _step_leg(self, leg: Leg, now: float) -> None:
        call = leg.call
        if call.ended:
            wrap_up = leg.handler.wrap_up_s if leg.step == "talking" else 0.0
            if leg.step != "hanging up":  # not by this handler: an offer taken, a caller gone
                leg.handler.freed.append((now, now + wrap_up))
            leg.step = "ended"
        elif leg.step == "answering" and any(WHISPER_KEY.search(t) for t in call.said_texts()):
            leg.step = "accepting"
            self.actions.submit(lambda: call.press("1", listen=False))
        elif leg.step == "accepting" and call.activity == "conference":
            leg.step, leg.talk_until = "talking", now + self.scenario.talk_s
        elif leg.step == "talking" and now >= leg.talk_until:
            leg.step = "hanging up"
            self.actions.submit(lambda: self._hang_up(leg))

    def _hang_up(self, leg: Leg) -> None:
        ended = time.monotonic()
        leg.handler.freed.append((ended, ended + leg.handler.wrap_up_s))
        leg.call.hang_up()


# ------------------------------------------------------------------ the RQ side
class Jobs:
    """RQ through its public API: the workers' finished-job counters and the backlog."""

    def __init__(self, redis_url: str):
        self.redis = redis.Redis.from_url(redis_url)

    def workers(self) -> list[Worker]:
        return Worker.all(connection=self.redis)

    def finished(self) -> tuple[int, int]:
        """(successful, failed) jobs over every worker."""
        workers = self.workers()
        return (sum(w.successful_job_count for w in workers),
                sum(w.failed_job_count for w in workers))  # fmt: skip

    def backlog(self) -> int:
        names = {name for w in self.workers() for name in w.queue_names()}
        return sum(Queue(name, connection=self.redis).count for name in names)

    def run_times(self) -> dict[str, list[float]]:
        """Seconds each finished job ran, by function (RQ's finished-job registries)."""
        times: dict[str, list[float]] = {}
        names = {name for w in self.workers() for name in w.queue_names()}
        for name in sorted(names):
            q = Queue(name, connection=self.redis, serializer=JSONSerializer)
            ids = FinishedJobRegistry(queue=q).get_job_ids()
            for job in Job.fetch_many(ids, connection=self.redis, serializer=JSONSerializer):
                if job is not None and job.started_at and job.ended_at:
                    seconds = (job.ended_at - job.started_at).total_seconds()
                    times.setdefault(job.func_name, []).append(seconds)
        return times

    def idle(self) -> bool:
        workers = self.workers()
        return (
            bool(workers) and self.backlog() == 0 and all(w.get_state() != "busy" for w in workers)
        )


# ------------------------------------------------------------------ the surge
@dataclass
class SurgeRun:
    started: float = 0.0
    resolved_at: float | None = None
    ended: float = 0.0
    jobs_at_start: tuple[int, int] = (0, 0)
    jobs_at_resolved: tuple[int, int] = (0, 0)
    max_backlog: int = 0
    stopped_by_deadline: bool = False
    cpu_s: float = 0.0  # this process (the emulator and the phones) during the surge


def run_surge(phones: Phones, jobs: Jobs, processes: list[Process], max_s: float) -> SurgeRun:
    """Drive the phones until every call has ended (or ``max_s``), watching RQ each second."""
    run = SurgeRun(started=time.monotonic())
    run.jobs_at_start = jobs.finished()
    cpu_before = time.process_time()
    phones.schedule(run.started)
    deadline = run.started + max_s
    next_sample = next_report = run.started
    for _ in range(int(max_s / POLL_S) + 1):
        now = time.monotonic()
        if now >= deadline:
            run.stopped_by_deadline = True
            break
        phones.step(now)
        if run.resolved_at is None and phones.resolved():
            run.resolved_at, run.jobs_at_resolved = now, jobs.finished()
        if now >= next_sample:
            next_sample = now + 1.0
            run.max_backlog = max(run.max_backlog, jobs.backlog())
            for process in processes:
                if not process.alive():
                    raise RuntimeError(f"{process.name} exited during the surge (its log follows)")
        if now >= next_report:
            next_report = now + 10.0
            report_progress(phones, jobs, now - run.started)
        if phones.finished():
            break
        time.sleep(POLL_S)
    run.ended = time.monotonic()
    run.cpu_s = time.process_time() - cpu_before
    if run.resolved_at is None:
        run.resolved_at, run.jobs_at_resolved = run.ended, jobs.finished()
    return run


def report_progress(phones: Phones, jobs: Jobs, elapsed: float) -> None:
    steps = Counter(c.step for c in phones.callers)
    connected = len(phones.recorder.connected)
    rings = len(phones.recorder.rings)
    print(f"  {elapsed:5.0f} s: {steps['ended']} calls ended, {connected} connected so far, "
          f"{rings} rings, RQ backlog {jobs.backlog()}", flush=True)  # fmt: skip


# ------------------------------------------------------------------ the figures
def offers_by_leg(database_url: str) -> dict[str, str]:
    """Offer call SID → the caller's call SID (the ``routing_offer`` rows)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text(
                "SELECT o.call_sid, i.provider_sid FROM routing_offer o "
                "JOIN interaction i ON i.id = o.interaction_id WHERE o.call_sid IS NOT NULL"
            )).all()  # fmt: skip
    finally:
        engine.dispose()
    return {leg: caller for leg, caller in rows}


@dataclass
class QueueToRing:
    at_once_ms: list[float] = field(default_factory=list)  # the handler was free already
    after_free_ms: list[float] = field(default_factory=list)  # counted from a handler freed
    reoffers: int = 0
    unmatched: int = 0
    rung_before_answer: int = 0  # the offer's REST request came before the <Enqueue> answer
    rung_in_wrap_up: int = 0  # … before the handler's hang-up + wrap-up

    @property
    def all_ms(self) -> list[float]:
        return self.at_once_ms + self.after_free_ms


def queue_to_ring(recorder: Recorder, phones: Phones, offers: dict[str, str]) -> QueueToRing:
    """Each caller's first ring: from their <Enqueue> answer, or from when the handler rung
    became free (previous call's end + wrap-up) if that came later."""
    result = QueueToRing()
    seen: set[str] = set()
    for ring in sorted(recorder.rings, key=lambda r: r.at):
        caller = offers.get(ring.sid)
        enqueued = recorder.enqueued.get(caller or "")
        if caller is None or enqueued is None:
            result.unmatched += 1
            continue
        if caller in seen:
            result.reoffers += 1
            continue
        seen.add(caller)
        before = [free for ended, free in phones.handlers[ring.number].freed if ended < ring.at]
        start = max([enqueued, *before[-1:]])
        after_free = start > enqueued
        waited_ms = (ring.at - start) * 1000
        if waited_ms < 0:  # counted as 0 ms, and apart
            if after_free:
                result.rung_in_wrap_up += 1
            else:
                result.rung_before_answer += 1
            waited_ms = 0.0
        (result.after_free_ms if after_free else result.at_once_ms).append(waited_ms)
    return result


@dataclass
class Estimates:
    errors: list[float] = field(default_factory=list)
    announced_s: list[float] = field(default_factory=list)
    real_s: list[float] = field(default_factory=list)
    waited_without_estimate: int = 0


def estimates(recorder: Recorder, phones: Phones, texts: Texts) -> Estimates:
    """For connected callers who heard a place > 0: the first estimate against the real wait."""
    result = Estimates()
    for caller in phones.callers:
        if caller.call is None:
            continue
        sid = caller.call.sid
        announced_at, connected = recorder.announced.get(sid), recorder.connected.get(sid)
        said = caller.call.said_texts()
        position = next((int(m.group(1)) for t in said if (m := texts.position.search(t))), 0)
        if announced_at is None or connected is None or position <= 0:
            continue
        found = next((m for t in said if (m := ESTIMATE.search(t))), None)
        if found is None:
            result.waited_without_estimate += 1
            continue
        announced = int(found.group(1)) * (60 if found.group(2).lower() == "minute" else 1)
        real = max(connected - announced_at, 1e-3)  # "about N": from the moment it is said
        result.errors.append(abs(announced - real) / real)
        result.announced_s.append(announced)
        result.real_s.append(real)
    return result


@dataclass
class Outcomes:
    connected: int = 0
    message_box: int = 0
    lost: int = 0
    still_waiting: int = 0
    never_rung: int = 0


def outcomes(recorder: Recorder, phones: Phones, offers: dict[str, str], texts: Texts) -> Outcomes:
    """Connected to a handler, sent to the message box, or lost (neither, by the end)."""
    rung_callers = {offers.get(r.sid) for r in recorder.rings}
    result = Outcomes()
    for caller in phones.callers:
        sid = caller.call.sid if caller.call is not None else ""
        if sid not in rung_callers:
            result.never_rung += 1
        if sid in recorder.connected:
            result.connected += 1
        elif caller.message_box or (
            caller.call is not None and texts.operators_busy in caller.call.said_texts()
        ):
            result.message_box += 1
        else:
            result.lost += 1
            result.still_waiting += caller.step != "ended"
    return result


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} ms"


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def distribution(name: str, values: list[float]) -> str:
    return (f"{name} (n={len(values)}): p50 {ms(percentile(values, 0.5))}, p99 "
            f"{ms(percentile(values, 0.99))}")  # fmt: skip


def print_queue_to_ring(q2r: QueueToRing) -> None:
    p99 = percentile(q2r.all_ms, 0.99)
    values = q2r.all_ms
    print(f"queue-to-ring (n={len(values)}): p50 {ms(percentile(values, 0.5))}, p90 "
          f"{ms(percentile(values, 0.9))}, p99 {ms(p99)}, max {ms(percentile(values, 1))}   "
          f"target p99 < {TARGET_P99_MS:.0f} ms: "
          f"{verdict(p99 is not None and p99 < TARGET_P99_MS)}")  # fmt: skip
    print("  " + distribution("a handler was free when the caller joined", q2r.at_once_ms))
    print("  " + distribution("counted from a handler's wrap-up end", q2r.after_free_ms))
    if q2r.reoffers or q2r.unmatched or q2r.rung_before_answer or q2r.rung_in_wrap_up:
        print(f"  counted as 0 ms: rung before the caller's <Enqueue> answer reached the carrier "
              f"{q2r.rung_before_answer}, before the handler's wrap-up had ended "
              f"{q2r.rung_in_wrap_up}; offers again to a caller: {q2r.reoffers}; rings without "
              f"a queued caller: {q2r.unmatched}")  # fmt: skip


def print_estimates(est: Estimates) -> float | None:
    error_p50 = percentile(est.errors, 0.5)
    if error_p50 is None:
        print(f"wait estimate: not measurable, no connected caller told a place > 0 heard an "
              f"estimate (told a place without one: {est.waited_without_estimate})   target "
              f"<= {TARGET_ESTIMATE_ERROR}: not measured")  # fmt: skip
        return None
    print(f"wait estimate (n={len(est.errors)} connected callers told a place > 0): error p50 "
          f"{error_p50:.2f}; announced p50 {percentile(est.announced_s, 0.5):.0f} s, real p50 "
          f"{percentile(est.real_s, 0.5):.1f} s; told a place without an estimate: "
          f"{est.waited_without_estimate}   target <= {TARGET_ESTIMATE_ERROR}: "
          f"{verdict(error_p50 <= TARGET_ESTIMATE_ERROR)}")  # fmt: skip
    return error_p50


def print_run_times(times: dict[str, list[float]]) -> None:
    """How long each kind of job ran in the worker (RQ's started/ended times)."""
    for func, seconds in sorted(times.items()):
        ms_each = sorted(1000 * t for t in seconds)
        print(f"  job {func}: n={len(ms_each)}, run p50 {ms(percentile(ms_each, 0.5))}, "
              f"p99 {ms(percentile(ms_each, 0.99))}")  # fmt: skip


def report(
    scenario: Scenario,
    run: SurgeRun,
    q2r: QueueToRing,
    est: Estimates,
    out: Outcomes,
    floor_ms: list[float],
    emu: Emulator,
    errors: Counter[str],
    run_s: float,
) -> dict[str, object]:
    """Print the figures beside their targets; return the JSON line's object."""
    surge_window = max(1e-9, (run.resolved_at or run.ended) - run.started)
    jobs_done = sum(run.jobs_at_resolved) - sum(run.jobs_at_start)
    jobs_per_s = jobs_done / surge_window
    floor_p50 = percentile(floor_ms, 0.5)
    surge_phase = run.ended - run.started
    print(f"callers: {scenario.callers} — connected {out.connected}, message box "
          f"{out.message_box}, lost {out.lost} (still waiting when the run stopped: "
          f"{out.still_waiting}; never rung: {out.never_rung})   target lost = 0: "
          f"{verdict(out.lost == 0)}")  # fmt: skip
    print_queue_to_ring(q2r)
    print(f"REST round trip to the idle emulator (twilio-python calls.list): p50 {ms(floor_p50)}"
          f" (the floor)")  # fmt: skip
    print(f"RQ: {jobs_done} jobs finished in the surge's {surge_window:.1f} s → "
          f"{jobs_per_s:.2f} jobs/s (failed: {run.jobs_at_resolved[1] - run.jobs_at_start[1]});"
          f" largest backlog {run.max_backlog}")  # fmt: skip
    error_p50 = print_estimates(est)
    debugger = Counter(f"{e['code']} {e['level']}" for e in emu.debugger)
    if debugger:
        print(f"emulator debugger: {dict(debugger)}")
    if errors:
        print(f"actions that failed (by exception type): {dict(errors)}")
    if run.stopped_by_deadline:
        print(f"!! the surge was cut at --max-seconds {scenario.max_s:.0f}")
    print(f"this process (emulator + phones): {run.cpu_s:.0f} s CPU in the surge phase, "
          f"{run.cpu_s / max(surge_phase, 1e-9):.0%} of one core")  # fmt: skip
    print(f"run time {run_s:.0f} s (surge phase {surge_phase:.0f} s)")
    return {
        "callers": scenario.callers, "handlers": scenario.handlers, "surge_s": scenario.surge_s,
        "talk_s": scenario.talk_s, "wrap_up_s": scenario.wrap_up_s,
        "queue_to_ring_p50_ms": _round(percentile(q2r.all_ms, 0.5)),
        "queue_to_ring_p99_ms": _round(percentile(q2r.all_ms, 0.99)),
        "queue_to_ring_free_handler_p99_ms": _round(percentile(q2r.at_once_ms, 0.99)),
        "queue_to_ring_after_wrap_up_p99_ms": _round(percentile(q2r.after_free_ms, 0.99)),
        "rung_before_enqueue_answer": q2r.rung_before_answer,
        "rung_before_wrap_up_end": q2r.rung_in_wrap_up,
        "rest_roundtrip_p50_ms": _round(floor_p50, 2),
        "estimate_error_p50": _round(error_p50, 3), "jobs_per_s": round(jobs_per_s, 2),
        "lost": out.lost, "connected": out.connected, "message_box": out.message_box,
        "emulator_cpu_fraction": round(run.cpu_s / max(surge_phase, 1e-9), 2),
        "run_s": round(run_s, 1),
    }  # fmt: skip


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


# ------------------------------------------------------------------ putting it together
def rest_floor(emu: Emulator, samples: int = 30) -> list[float]:
    from twilio.rest import Client

    client = Client(emu.account_sid, emu.auth_token)
    client.api.base_url = emu.base_url
    timings = []
    for _ in range(samples):
        started = time.perf_counter()
        client.calls.list(limit=1)
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def app_env(work: Path, port: int, redis_url: str, emu: Emulator) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", PYTHONUNBUFFERED="1",
        HOTLINE_ENV="development", HOTLINE_INSTANCE_PATH=str(work / "instance"),
        # an empty database of your own (PostgreSQL) with DATABASE_URL; else a fresh SQLite
        DATABASE_URL=os.environ.get("DATABASE_URL") or f"sqlite:///{work / 'hotline.sqlite3'}",
        REDIS_URL=redis_url,
        PORT=str(port), PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
        TWILIO_ACCOUNT_SID=emu.account_sid, TWILIO_AUTH_TOKEN=emu.auth_token,
        TWILIO_API_BASE_URL=emu.base_url, HOTLINE_NUMBER=HOTLINE, LOG_LEVEL="WARNING",
    )  # fmt: skip
    return env


def start_stack(
    scenario: Scenario, work: Path, emu: Emulator, redis_url: str, started: list[Process]
) -> tuple[dict[str, str], Jobs]:
    """Migrate, add the handlers, start web/worker/clock from the Procfile; wait until idle."""
    commands = procfile()
    port = free_port()
    env = app_env(work, port, redis_url, emu)
    base = f"http://127.0.0.1:{port}"
    emu.add_number(HOTLINE, voice_url=f"{base}/voice/incoming",
                   voice_fallback_url=f"{base}/voice/fallback",
                   status_callback=f"{base}/voice/status")  # fmt: skip
    run_release(commands["release"], env)
    began = time.monotonic()
    summary = add_handlers(env, handler_numbers(scenario.handlers), scenario.wrap_up_s)
    print(f"handlers: {scenario.handlers} added by the CLI in {time.monotonic() - began:.1f} s;"
          f" {redact(summary)}")  # fmt: skip
    missing = {"release", "web", "worker"} - commands.keys()
    if missing:
        raise RuntimeError(f"the Procfile has no {', '.join(sorted(missing))} line")
    for name in ("web", "worker", "clock"):  # clock: only if the Procfile still has one
        if name in commands:
            command = loopback_only(commands[name]) if name == "web" else commands[name]
            print(f"  {name}: {command}")
            started.append(Process(name, command, env, work).start())
    jobs = Jobs(redis_url)
    wait_until(lambda: web_ready(port), 60, "web ready")
    wait_until(lambda: bool(jobs.workers()), 60, "an RQ worker registered")
    wait_until(jobs.idle, 180, "the setup's jobs done")
    for process in started:
        if not process.alive():
            raise RuntimeError(f"{process.name} exited at start (its log follows)")
    return env, jobs


def measure(scenario: Scenario, work: Path, started: list[Process]) -> dict[str, object]:
    began = time.monotonic()
    texts = Texts.load()
    redis_server = EmbeddedRedis(work / "redis.sock").start()
    recorder = Recorder(handler_numbers(scenario.handlers))
    emu = Emulator(clock="real")
    recorder.install(emu)
    emu.start()
    phones: Phones | None = None
    try:
        env, jobs = start_stack(scenario, work, emu, redis_server.url, started)
        floor_ms = rest_floor(emu)
        warm_up(emu, recorder, scenario, texts, jobs, started)
        print(
            f"surge: {scenario.callers} callers over {scenario.surge_s:g} s "
            f"(talk {scenario.talk_s:g} s, wrap-up {scenario.wrap_up_s} s)",
            flush=True,
        )
        phones = Phones(emu, recorder, scenario, texts, first_number=scenario.warmup_calls)
        run = run_surge(phones, jobs, started, scenario.max_s)
        time.sleep(1.0)  # the last offers' rows are committed
        offers = offers_by_leg(env["DATABASE_URL"])
        q2r = queue_to_ring(recorder, phones, offers)
        est = estimates(recorder, phones, texts)
        out = outcomes(recorder, phones, offers, texts)
        print_run_times(jobs.run_times())
        return report(scenario, run, q2r, est, out, floor_ms, emu, phones.actions.errors,
                      time.monotonic() - began)  # fmt: skip
    finally:
        if phones is not None:
            phones.actions.close()
        emu.stop(timeout=10)
        for process in reversed(started):
            process.stop()
        redis_server.stop()


def warm_up(
    emu: Emulator, recorder: Recorder, scenario: Scenario, texts: Texts, jobs: Jobs,
    started: list[Process],
) -> None:  # fmt: skip
    """A few calls handled before the surge, as on any working day: the wait announced to a
    caller comes from the handling times of recent calls (routing/estimate.py)."""
    if not scenario.warmup_calls:
        return
    print(f"warm-up: {scenario.warmup_calls} calls handled first", flush=True)
    few = replace(scenario, callers=scenario.warmup_calls, surge_s=1.0)
    phones = Phones(emu, recorder, few, texts)
    try:
        run = run_surge(phones, jobs, started, scenario.max_s)
    finally:
        phones.actions.close()
    if run.stopped_by_deadline:
        raise RuntimeError("the warm-up calls did not end")
    time.sleep(scenario.wrap_up_s + 0.5)  # the handlers' wrap-up ends
    wait_until(jobs.idle, 60, "the warm-up's jobs done")
    recorder.reset()


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    scenario = parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the emulator's access log
    for signum in (signal.SIGINT, signal.SIGTERM):  # stop the children in order, then exit
        signal.signal(signum, _interrupt)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"bench.dispatch: {scenario.handlers} handlers, {scenario.callers} callers over "
          f"{scenario.surge_s:g} s; load average {load}", flush=True)  # fmt: skip
    started: list[Process] = []
    with tempfile.TemporaryDirectory(prefix="hotline-bench-dispatch-") as tmp:
        try:
            figures = measure(scenario, Path(tmp), started)
        except KeyboardInterrupt:
            print("interrupted; every process stopped", file=sys.stderr)
            return 130
        except Exception as exc:
            print(f"!! {redact(str(exc))}", file=sys.stderr)
            for process in started:
                print(process.tail(), file=sys.stderr)
            return 1
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
