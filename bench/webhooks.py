"""Webhook throughput and latency: complete signed IVR calls against the app under gunicorn.

Run from the repository root (nothing to install, no root needed)::

    .venv/bin/python -m bench.webhooks            # the full run: about a minute on 2 cores
    .venv/bin/python -m bench.webhooks --quick    # a smoke check: about 15 s

The app runs under gunicorn (2 workers) on a fresh, migrated SQLite file in a temp dir (or
``DATABASE_URL``) with an embedded redis-server (or ``REDIS_URL``); beside it, under the very same
gunicorn settings, a bare Flask endpoint (``bench.webhooks:bare_app``: no app work at all). A call
is the six webhooks Twilio sends for a caller who picks Russian, asks for an operator and leaves a
message: incoming → language (1) → main menu (0) → message recorded → recording status → call
status. Every request is built and signed before the clock starts; the baseline gets the same
bytes. One sample call is first walked live, following the TwiML's action URLs, to check that
the pre-built URLs are the ones the app hands out.

(a) saturation: ``--concurrency`` calls in flight, each call's webhooks back to back → req/s.
    In ``--rounds`` rounds, each a baseline run and an app run back to back (which goes first
    alternates; the app gets new calls every round): the ratio is the median of the rounds'
    ratios. On a shared VM the machine's speed drifts within a minute; one baseline phase
    followed by one app phase moved the ratio between 0.28 and 0.44 over five runs of the
    same code.
(b) paced: ``--paced-rate`` webhooks/s, open loop: a new call every 6/rate s, a call's webhooks
    about 0.1 s apart, every send time fixed in advance. Latency counts from the scheduled send
    time; a slow answer delays the call's next webhook, and that wait is counted, not hidden.

The load generator is ``--clients`` forked processes, each an epoll loop over raw non-blocking
HTTP/1.1 sockets (kept alive when the server allows) sending pre-encoded requests. Its CPU time
and send lag are printed beside the server's CPU time; the bare endpoint's figure shows that the
client is not the limit. A non-200 answer, a wrong TwiML verb or the app's fallback message box
counts as an error, and so does a call missing from the database afterwards; any error makes the
run say so and exit 1. The last line printed is one JSON object.

gunicorn runs sync workers (``--worker-class gthread --threads N`` to compare): measured here
(three rounds each, one after the other), the app did 1,310-1,340 req/s with sync and
1,130-1,210 (one round 730) with gthread/4 threads, whose threads contend for the GIL and for
SQLite's write lock. Sync workers close every connection, so the client connects
once per request (the connection count is printed) -- for the baseline as well.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import heapq
import http.client
import json
import math
import multiprocessing
import os
import secrets
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

from flask import Flask, Response

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as ``python bench/webhooks.py`` as well as with ``-m``
    sys.path.insert(0, str(ROOT))

HOTLINE_NUMBER = "+15005550006"
STEPS = ("incoming", "language", "main", "recorded", "recording", "status")
#: The paths the pre-built calls post to; the live sample call must be handed exactly these.
FLOW_PATHS = (
    "/voice/incoming",
    "/voice/ivr/language?attempt=1",
    "/voice/ivr/main?attempt=1",
    "/voice/message/recorded",
    "/voice/recording",
    "/voice/status",
)
FALLBACK_MARK = b"/voice/fallback"  # the app's error path answers 200 with the fallback message box
BARE_TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response><Say>ok</Say></Response>'
BARE_CHECKS = ((b"<Say>ok</Say>",),) * len(STEPS)
#: For information, not a target: the floor to stay above (the app on stock libraries).
FLOOR_RATIO = 0.25
TARGET_P99_MS = 25.0
THINK_S = 0.1  # paced: the gap between one call's webhooks (rounded to keep sends evenly spaced)

bare_app = Flask("bench.bare")


@bare_app.post("/", defaults={"path": ""})
@bare_app.post("/<path:path>")
def bare_endpoint(path: str) -> Response:
    """The baseline: the same gunicorn and Flask, no app work (the form is not even parsed)."""
    return Response(BARE_TWIML, mimetype="text/xml")


@bare_app.get("/healthz")
def bare_healthz() -> Response:
    return Response(b"ok", mimetype="text/plain")


# ---------------------------------------------------------------------------- the calls


@dataclass(frozen=True)
class Carrier:
    base_url: str  # PUBLIC_BASE_URL: what requests are signed against
    account_sid: str
    token: str

    def encode(self, path: str, params: dict[str, str]) -> bytes:
        """One complete HTTP/1.1 request, signed like Twilio signs it."""
        from twilio.request_validator import RequestValidator

        signature = RequestValidator(self.token).compute_signature(self.base_url + path, params)
        body = urlencode(params).encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.base_url.split('://', 1)[1]}\r\n"
            "User-Agent: TwilioProxy/1.1\r\nAccept: */*\r\n"
            "Content-Type: application/x-www-form-urlencoded; charset=utf-8\r\n"
            f"X-Twilio-Signature: {signature}\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body


def call_params(carrier: Carrier, call_sid: str) -> list[dict[str, str]]:
    """The parameters of the six webhooks of one call, named and shaped as Twilio sends them."""
    number = "+79" + "".join(secrets.choice("0123456789") for _ in range(9))
    recording_sid = "RE" + secrets.token_hex(16)
    recording_url = (
        f"https://api.twilio.com/2010-04-01/Accounts/{carrier.account_sid}/Recordings/"
        + recording_sid
    )
    call = {
        "AccountSid": carrier.account_sid, "ApiVersion": "2010-04-01", "CallSid": call_sid,
        "CallStatus": "in-progress", "Direction": "inbound", "From": number, "Caller": number,
        "FromCountry": "RU", "FromCity": "", "FromState": "", "FromZip": "",
        "CallerCountry": "RU", "CallerCity": "", "CallerState": "", "CallerZip": "",
        "To": HOTLINE_NUMBER, "Called": HOTLINE_NUMBER, "ToCountry": "US", "ToCity": "",
        "ToState": "", "ToZip": "", "CalledCountry": "US", "CalledCity": "", "CalledState": "",
        "CalledZip": "",
    }  # fmt: skip
    recording = {"RecordingSid": recording_sid, "RecordingUrl": recording_url,
                 "RecordingDuration": "12"}  # fmt: skip
    return [
        {**call, "CallStatus": "ringing"},
        {**call, "Digits": "1", "FinishedOnKey": "", "msg": "Gather End"},
        {**call, "Digits": "0", "FinishedOnKey": "", "msg": "Gather End"},
        {**call, **recording, "Digits": "hangup"},
        {"AccountSid": carrier.account_sid, "CallSid": call_sid, **recording,
         "RecordingStatus": "completed", "RecordingChannels": "1", "RecordingSource": "RecordVerb",
         "RecordingStartTime": "Mon, 01 Jan 2024 00:00:00 +0000", "RecordingTrack": "inbound",
         "ErrorCode": "0"},
        {**call, "CallStatus": "completed", "CallDuration": "40", "Duration": "1",
         "CallbackSource": "call-progress-events", "SequenceNumber": "0",
         "Timestamp": "Mon, 01 Jan 2024 00:00:40 +0000"},
    ]  # fmt: skip


def build_calls(carrier: Carrier, run_id: str, count: int) -> list[tuple[bytes, ...]]:
    calls = []
    for _ in range(count):
        params = call_params(carrier, "CA" + run_id + secrets.token_hex(12))
        calls.append(tuple(carrier.encode(p, q) for p, q in zip(FLOW_PATHS, params, strict=True)))
    return calls


def app_checks(base_url: str) -> tuple[tuple[bytes, ...], ...]:
    """What each step's answer must contain (cheap byte tests, made on every response)."""
    base = base_url.encode()
    return (
        (b"<Gather ", b'action="' + base + b'/voice/ivr/language?attempt=1"'),
        (b"<Gather ", b'action="' + base + b'/voice/ivr/main?attempt=1"'),
        (b"<Record ", b'action="' + base + b'/voice/message/recorded"'),
        (b"<Hangup />",),
        (b"<Response />",),
        (b"<Response />",),
    )


def walk_sample_call(addr: tuple[str, int], carrier: Carrier, run_id: str) -> list[str]:
    """One call walked live (stdlib HTTP parser, URLs taken from the TwiML); returns problems."""
    params = call_params(carrier, "CA" + run_id + secrets.token_hex(12))
    base, path, problems = carrier.base_url, FLOW_PATHS[0], []
    for step, name in enumerate(STEPS):
        if path != FLOW_PATHS[step]:
            problems.append(f"{name}: the TwiML points to {path!r}, the bench posts to "
                            f"{FLOW_PATHS[step]!r}")  # fmt: skip
        with socket.create_connection(addr, timeout=10) as sock:
            sock.sendall(carrier.encode(path, params[step]))
            response = http.client.HTTPResponse(sock)
            response.begin()
            body = response.read()
        if response.status != 200 or not response.getheader("Content-Type", "").startswith(
            "text/xml"
        ):
            problems.append(f"{name}: HTTP {response.status} {body[:200]!r}")
            return problems
        root = ET.fromstring(body)  # our own server's answer
        gather, record = root.find("Gather"), root.find("Record")
        if step in (0, 1) and gather is not None:
            path = gather.get("action", "").removeprefix(base)
        elif step == 2 and record is not None:
            path = record.get("action", "").removeprefix(base)
            status_path = record.get("recordingStatusCallback", "").removeprefix(base)
        elif step == 3 and root.find("Hangup") is not None and record is None:
            path = status_path
        elif step == 4 and len(root) == 0:
            path = FLOW_PATHS[5]  # the number's status callback (a phone-number setting)
        elif step == 5 and len(root) == 0:
            pass
        else:
            problems.append(f"{name}: unexpected TwiML {body[:300]!r}")
            return problems
    return problems


# ---------------------------------------------------------------------------- the load generator


@dataclass(slots=True)
class Inflight:
    lane: int
    step: int
    request: bytes
    origin: float  # latency counts from here: the scheduled send time, or the send itself
    sock: socket.socket | None = None
    reused: bool = False
    retried: bool = False
    out: memoryview | None = None
    buf: bytearray = field(default_factory=bytearray)
    head_end: int = -1
    status: int = 0
    length: int = 0
    keep_alive: bool = True


class Driver:
    """One client process: an epoll loop over non-blocking HTTP/1.1 keep-alive sockets.

    A lane is a sequence of ``(offset, step, request)``: each request goes when the one before it
    has been answered and, if ``offset`` is not None, not before ``start + offset``.
    """

    def __init__(self, addr: tuple[str, int], lanes: list[list], checks: tuple) -> None:
        self.addr, self.lanes, self.checks = addr, lanes, checks
        self.pos = [0] * len(lanes)
        self.sel = selectors.DefaultSelector()
        self.idle: list[socket.socket] = []
        self.timers: list[tuple[float, int]] = []
        self.remaining = sum(len(lane) for lane in lanes)
        self.latency: list[list[float]] = [[] for _ in STEPS]
        self.lag: list[float] = []
        self.errors, self.connects, self.retries = 0, 0, 0
        self.samples: list[str] = []
        self.start = self.last_done = 0.0

    def run(self, start: float) -> dict:
        time.sleep(max(0.0, start - time.monotonic()))
        cpu = time.process_time()
        self.start = start
        for lane in range(len(self.lanes)):
            self.next_request(lane, start)
        progress, last_count = time.monotonic(), self.remaining
        while self.remaining:
            now = time.monotonic()
            while self.timers and self.timers[0][0] <= now:
                due, lane = heapq.heappop(self.timers)
                self.lag.append(now - due)
                self.send(lane, due)
            timeout = max(0.0, self.timers[0][0] - now) if self.timers else 1.0
            for key, mask in self.sel.select(timeout):
                self.on_event(key.fileobj, key.data, mask)
            if self.remaining != last_count:
                progress, last_count = time.monotonic(), self.remaining
            elif time.monotonic() - progress > 60:
                self.error(f"no answer for 60 s; {self.remaining} requests abandoned")
                self.errors += self.remaining - 1
                break
        return {
            "latency": self.latency, "lag": self.lag, "errors": self.errors,
            "samples": self.samples, "connects": self.connects, "retries": self.retries,
            "cpu": time.process_time() - cpu, "last_done": self.last_done,
        }  # fmt: skip

    def next_request(self, lane: int, now: float) -> None:
        items = self.lanes[lane]
        if self.pos[lane] >= len(items):
            return
        offset = items[self.pos[lane]][0]
        if offset is None:
            self.send(lane, now)
        elif self.start + offset <= now:  # the previous answer came after this one's send time
            self.send(lane, self.start + offset)
        else:
            heapq.heappush(self.timers, (self.start + offset, lane))

    def send(self, lane: int, origin: float) -> None:
        _, step, request = self.lanes[lane][self.pos[lane]]
        self.dispatch(Inflight(lane, step, request, origin))

    def dispatch(self, fl: Inflight) -> None:
        while self.idle and not fl.retried:
            sock = self.idle.pop()
            try:
                sent = sock.send(fl.request)
            except OSError:  # closed by the server while idle
                self.drop(sock)
                continue
            fl.sock, fl.reused = sock, True
            if sent < len(fl.request):
                fl.out = memoryview(fl.request)[sent:]
                self.sel.modify(sock, selectors.EVENT_WRITE, fl)
            else:
                self.sel.modify(sock, selectors.EVENT_READ, fl)
            return
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        self.connects += 1
        code = sock.connect_ex(self.addr)
        fl.sock, fl.reused, fl.out = sock, False, memoryview(fl.request)
        self.sel.register(sock, selectors.EVENT_WRITE, fl)
        if code not in (0, errno.EINPROGRESS):
            self.broken(fl, f"connect: {os.strerror(code)}")

    def drop(self, sock: socket.socket) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self.sel.unregister(sock)
        sock.close()

    def on_event(self, sock: socket.socket, fl: Inflight | None, mask: int) -> None:
        if fl is None:  # an idle keep-alive socket is readable: the server closed it
            self.idle.remove(sock)
            self.drop(sock)
            return
        if mask & selectors.EVENT_WRITE and fl.out is not None:
            code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            try:
                if code:
                    raise OSError(code, os.strerror(code))
                sent = sock.send(fl.out)
            except BlockingIOError:
                return
            except OSError as exc:
                self.broken(fl, f"send: {exc}")
                return
            fl.out = fl.out[sent:] if sent < len(fl.out) else None
            if fl.out is None:
                self.sel.modify(sock, selectors.EVENT_READ, fl)
            return
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.broken(fl, "connection closed before the answer")
            return
        fl.buf += data
        if fl.head_end < 0:
            end = fl.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(fl.buf[:end]).lower()
            fl.status = int(fl.buf[9:12])
            at = head.find(b"\r\ncontent-length:")
            if at < 0:
                self.broken(fl, "an answer without Content-Length")
                return
            stop = head.find(b"\r\n", at + 2)
            fl.length = int(head[at + 17 : stop if stop > 0 else len(head)])
            fl.keep_alive = b"\r\nconnection: close" not in head
            fl.head_end = end + 4
        if len(fl.buf) - fl.head_end >= fl.length:
            self.complete(fl)

    def broken(self, fl: Inflight, why: str) -> None:
        assert fl.sock is not None
        self.drop(fl.sock)
        if fl.reused and not fl.buf and not fl.retried:  # a stale keep-alive socket: retry once
            self.retries += 1
            fl.retried, fl.sock, fl.out = True, None, None
            self.dispatch(fl)
            return
        self.finish(fl, f"{STEPS[fl.step]}: {why}")

    def complete(self, fl: Inflight) -> None:
        assert fl.sock is not None
        body = fl.buf[fl.head_end : fl.head_end + fl.length]
        problem = None
        if fl.status != 200:
            problem = f"{STEPS[fl.step]}: HTTP {fl.status} {bytes(body[:120])!r}"
        elif FALLBACK_MARK in body or not all(mark in body for mark in self.checks[fl.step]):
            problem = f"{STEPS[fl.step]}: unexpected TwiML {bytes(body[:200])!r}"
        if fl.keep_alive and problem is None:
            self.sel.modify(fl.sock, selectors.EVENT_READ, None)
            self.idle.append(fl.sock)
        else:
            self.drop(fl.sock)
        self.finish(fl, problem)

    def finish(self, fl: Inflight, problem: str | None) -> None:
        now = time.monotonic()
        self.remaining -= 1
        self.last_done = now
        if problem is None:
            self.latency[fl.step].append(now - fl.origin)
        else:
            self.error(problem)
        self.pos[fl.lane] += 1
        self.next_request(fl.lane, now)

    def error(self, problem: str) -> None:
        self.errors += 1
        if len(self.samples) < 5:
            self.samples.append(problem)


def _client_process(pipe, addr: tuple[str, int], lanes: list[list], checks: tuple) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    driver = Driver(addr, lanes, checks)
    pipe.send("ready")
    start = pipe.recv()
    if start is not None:
        pipe.send(driver.run(start))


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of sorted ``values``, in ms."""
    if not values:
        return math.nan
    return values[max(0, math.ceil(q / 100 * len(values)) - 1)] * 1000


@dataclass
class Result:
    requests: int
    wall: float
    errors: int
    samples: list[str]
    latency: list[float]
    by_step: list[list[float]]
    lag: list[float]
    client_cpu: float
    server_cpu: float
    connects: int
    retries: int

    @property
    def rps(self) -> float:
        return (self.requests - self.errors) / self.wall if self.wall > 0 else 0.0

    def p(self, q: float, step: int | None = None) -> float:
        return percentile(self.latency if step is None else self.by_step[step], q)


def drive(server: Gunicorn, lanes: list[list], checks: tuple, processes: int) -> Result:
    """Run ``lanes`` spread over ``processes`` forked client processes; merge what they measure."""
    ctx = multiprocessing.get_context("fork")
    groups = [lanes[i::processes] for i in range(processes) if lanes[i::processes]]
    procs, pipes, parts = [], [], []
    try:
        for group in groups:
            mine, theirs = ctx.Pipe()
            proc = ctx.Process(
                target=_client_process, args=(theirs, server.addr, group, checks), daemon=True
            )
            proc.start()
            procs.append(proc)
            pipes.append(mine)
        for pipe in pipes:
            pipe.recv()
        cpu_before = server.cpu_seconds()
        start = time.monotonic() + 0.05
        for pipe in pipes:
            pipe.send(start)
        parts += [pipe.recv() for pipe in pipes]
        server_cpu = server.cpu_seconds() - cpu_before
    finally:
        interrupted = len(parts) < len(procs)  # Ctrl-C or an error: stop the clients now
        for proc in procs:
            if not interrupted:
                proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()
            proc.join(timeout=2)
    by_step = [sorted(x for part in parts for x in part["latency"][s]) for s in range(len(STEPS))]
    return Result(
        requests=sum(len(lane) for lane in lanes),
        wall=max(start, *(part["last_done"] for part in parts)) - start,
        errors=sum(part["errors"] for part in parts),
        samples=[s for part in parts for s in part["samples"]],
        latency=sorted(x for step in by_step for x in step),
        by_step=by_step,
        lag=sorted(x for part in parts for x in part["lag"]),
        client_cpu=sum(part["cpu"] for part in parts),
        server_cpu=server_cpu,
        connects=sum(part["connects"] for part in parts),
        retries=sum(part["retries"] for part in parts),
    )


def saturation_lanes(calls: list[tuple[bytes, ...]], concurrency: int) -> list[list]:
    lanes: list[list] = [[] for _ in range(min(concurrency, len(calls)))]
    for k, call in enumerate(calls):
        lanes[k % len(lanes)].extend((None, step, req) for step, req in enumerate(call))
    return lanes


def paced_schedule(rate: float) -> tuple[float, float]:
    """(seconds between call arrivals, seconds between one call's webhooks).

    The think time is 1/rate plus a whole number of arrival intervals, so in steady state the
    sends of all calls fall on an even grid of exactly ``rate`` per second.
    """
    n = len(STEPS)
    whole = max(0, round((THINK_S * rate - 1) / n))
    return n / rate, (1 + whole * n) / rate


def paced_lanes(calls: list[tuple[bytes, ...]], rate: float) -> list[list]:
    arrival, think = paced_schedule(rate)
    return [
        [(k * arrival + step * think, step, req) for step, req in enumerate(call)]
        for k, call in enumerate(calls)
    ]


# ---------------------------------------------------------------------------- the servers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> Callable[[], object] | None:
    """A pre-exec hook: the server gets SIGTERM if this process dies without cleaning up."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    return lambda: libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG (Linux)


class Gunicorn:
    """One gunicorn master (own session, log in a file), its workers' CPU time read from /proc."""

    def __init__(self, label: str, spec: str, options: list[str], env: dict, log: Path):
        self.label, self.spec, self.options, self.env, self.log = label, spec, options, env, log
        self.port = free_port()
        self.addr = ("127.0.0.1", self.port)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Gunicorn:
        gunicorn = Path(sys.executable).parent / "gunicorn"
        cmd = [str(gunicorn)] if gunicorn.exists() else [sys.executable, "-m", "gunicorn"]
        cmd += ["-b", f"{self.addr[0]}:{self.port}", *self.options, self.spec]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                cmd, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=_die_with_parent(),
            )  # fmt: skip
        return self

    def wait_ready(self, path: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.label}: gunicorn exited\n{self.log_tail()}")
            try:
                conn = http.client.HTTPConnection(*self.addr, timeout=2)
                conn.request("GET", path)
                if conn.getresponse().status == 200:
                    conn.close()
                    return
                conn.close()
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.label}: {path} did not answer\n{self.log_tail()}")
            time.sleep(0.1)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def cpu_seconds(self) -> float:
        """User+system CPU time of the master's live children (the workers), from /proc."""
        if self.proc is None:
            return 0.0
        total, tick = 0, os.sysconf("SC_CLK_TCK")
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                fields = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[1]) == self.proc.pid:
                total += int(fields[11]) + int(fields[12])
        return total / tick

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


# ---------------------------------------------------------------------------- the run


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    add = parser.add_argument
    add("--calls", type=int, default=600, help="saturation: calls of 6 webhooks (600)")
    add("--concurrency", type=int, default=50, help="saturation: calls in flight (50)")
    add("--paced-rate", type=float, default=200.0, help="paced: webhooks per second (200)")
    add("--paced-seconds", type=float, default=12.0, help="paced: duration in seconds (12)")
    add("--clients", type=int, default=4, help="load generator processes (4)")
    add("--warmup-calls", type=int, default=40, help="unmeasured calls per server first (40)")
    add("--rounds", type=int, default=5, help="saturation: rounds of baseline + app runs (5)")
    add("--worker-class", default="sync", choices=("sync", "gthread"), help="gunicorn's (sync)")
    add("--threads", type=int, default=4, help="threads per gthread worker (4)")
    add("--quick", action="store_true", help="a tiny run: a smoke check")
    args = parser.parse_args(argv)
    if args.quick:
        args.calls, args.concurrency, args.paced_seconds = 30, 10, 2.0
        args.warmup_calls, args.rounds = 6, 1
    numbers = (args.calls, args.concurrency, args.clients, args.paced_rate, args.paced_seconds,
               args.rounds, args.threads)  # fmt: skip
    if min(numbers) <= 0 or args.warmup_calls < 0:
        parser.error("counts, rates and durations must be positive")
    return args


def gunicorn_options(args: argparse.Namespace) -> list[str]:
    """The same for the app and the baseline. Access log: off (gunicorn's default)."""
    options = ["-w", "2", "--worker-class", args.worker_class]
    if args.worker_class == "gthread":
        options += ["--threads", str(args.threads), "--keep-alive", "5"]
    return [*options, "--backlog", "2048", "--graceful-timeout", "5", "--log-level", "warning"]


def report(label: str, res: Result, paced: bool) -> str:
    ms = f"p50 {res.p(50):7.2f} ms  p99 {res.p(99):7.2f} ms  max {res.p(100):7.2f} ms"
    if paced:
        head = f"{res.requests:5d} req, {ms}"
        extra = f", send lag p99 {percentile(res.lag, 99):.2f} ms"
    else:
        head = f"{res.requests:5d} req in {res.wall:6.2f} s = {res.rps:7.1f} req/s  ({ms})"
        extra = ""
    per = 1000 / max(res.requests, 1)
    cpu = (f"CPU per request: server {res.server_cpu * per:.2f} ms, client "
           f"{res.client_cpu * per:.2f} ms{extra}; {res.connects} connections")  # fmt: skip
    return f"  {label:<9} {head}\n  {'':<9} {cpu}"


def check_database(url: str, run_id: str, expected: int, journal: Path) -> list[str]:
    """Every call the app answered left one completed interaction with its recording."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            found, done = conn.execute(
                text(
                    "SELECT count(*), coalesce(sum(CASE WHEN status = 'completed' AND "
                    "recording_status = 'completed' THEN 1 ELSE 0 END), 0) FROM interaction "
                    "WHERE provider_sid LIKE :sids"
                ),
                {"sids": f"CA{run_id}%"},
            ).one()
    finally:
        engine.dispose()
    problems = []
    if (found, done) != (expected, expected):
        problems.append(f"database: {expected} calls sent, {found} interactions, {done} complete")
    if journal.exists() and journal.stat().st_size:
        problems.append("the app wrote to its fallback journal (its error path ran)")
    return problems


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up as on Ctrl-C
    from app import run_migrations
    from devtools.services import EmbeddedRedis
    from settings import load_settings

    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hotline-bench-")))
        redis_url = os.environ.get("REDIS_URL")
        if not redis_url:
            redis_server = EmbeddedRedis(tmp / "redis.sock").start()
            stack.callback(redis_server.stop)
            redis_url = redis_server.url
        database_url = os.environ.get("DATABASE_URL") or f"sqlite:///{tmp / 'hotline.sqlite3'}"
        run_migrations(database_url)

        options = gunicorn_options(args)
        env = {k: v for k, v in os.environ.items() if k != "GUNICORN_CMD_ARGS"}
        bare = Gunicorn("baseline", "bench.webhooks:bare_app", options, env, tmp / "bare.log")
        app = Gunicorn("app", "app:create_app()", options, env, tmp / "app.log")
        carrier = Carrier(f"http://127.0.0.1:{app.port}", "AC" + secrets.token_hex(16),
                          secrets.token_hex(16))  # fmt: skip
        app.env = {
            **env, "HOTLINE_ENV": "test", "HOTLINE_INSTANCE_PATH": str(tmp / "instance"),
            "DATABASE_URL": database_url, "REDIS_URL": redis_url,
            "PUBLIC_BASE_URL": carrier.base_url, "TWILIO_ACCOUNT_SID": carrier.account_sid,
            "TWILIO_AUTH_TOKEN": carrier.token, "HOTLINE_NUMBER": HOTLINE_NUMBER,
            "LOG_LEVEL": "WARNING",
            "TWILIO_API_BASE_URL": "http://127.0.0.1:9",  # no REST call may leave the machine
        }  # fmt: skip
        settings = load_settings(app.env)  # writes instance/secrets.json before workers race to
        stack.callback(bare.stop)
        stack.callback(app.stop)
        app.start()
        bare.start()

        run_id = secrets.token_hex(4)  # every CallSid of this run starts with CA<run_id>
        paced_calls = max(1, round(args.paced_rate * args.paced_seconds / len(STEPS)))
        warm = build_calls(carrier, run_id, args.warmup_calls)
        sats = [build_calls(carrier, run_id, args.calls) for _ in range(args.rounds)]
        paced = build_calls(carrier, run_id, paced_calls)
        checks = app_checks(carrier.base_url)
        app.wait_ready("/healthz")
        app.wait_ready("/readyz")
        bare.wait_ready("/healthz")
        print(f"Hotline webhooks: gunicorn {' '.join(options)}, app and baseline alike")
        database = "DATABASE_URL" if "DATABASE_URL" in os.environ else "SQLite (fresh, migrated)"
        redis = "REDIS_URL" if "REDIS_URL" in os.environ else "embedded redis-server"
        print(f"  {database}, {redis}; load: {args.clients} client processes, raw HTTP/1.1 "
              f"(keep-alive where the server allows), pre-signed requests; "
              f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start")  # fmt: skip
        problems = walk_sample_call(app.addr, carrier, run_id)
        if problems:
            print("sample call FAILED:\n  " + "\n  ".join(problems))
            return 1
        print("  sample call walked live: incoming → Gather(language) → Gather(main) → Record → "
              "Hangup → empty → empty; the pre-built URLs match")  # fmt: skip
        runs: list[tuple[str, Result]] = []
        if warm:
            for server, server_checks in ((bare, BARE_CHECKS), (app, checks)):
                res = drive(server, saturation_lanes(warm, 10), server_checks, args.clients)
                runs.append((f"warm-up {server.label}", res))

        print(f"\n(a) saturation: {args.calls} calls × {len(STEPS)} webhooks, "
              f"{args.concurrency} calls in flight, no pause")  # fmt: skip
        rounds: list[tuple[Result, Result, float]] = []
        for n, sat in enumerate(sats):
            # Each round runs the baseline and the app back to back (alternating which goes
            # first) and compares the two: the shared machine's speed drifts over a minute, and
            # the rounds' median ratio is what both saw at the same time.
            lanes = saturation_lanes(sat, args.concurrency)  # fresh calls for the app each round
            if n % 2 == 0:
                round_bare = drive(bare, lanes, BARE_CHECKS, args.clients)
                round_app = drive(app, lanes, checks, args.clients)
            else:
                round_app = drive(app, lanes, checks, args.clients)
                round_bare = drive(bare, lanes, BARE_CHECKS, args.clients)
            round_ratio = round_app.rps / round_bare.rps if round_bare.rps else 0.0
            rounds.append((round_bare, round_app, round_ratio))
            if args.rounds > 1:
                print(f"  round {n + 1}: baseline {round_bare.rps:7.1f} req/s, "
                      f"app {round_app.rps:7.1f} req/s, ratio {round_ratio:.3f}")  # fmt: skip
        sat_bare, sat_app, ratio = sorted(rounds, key=lambda r: r[2])[len(rounds) // 2]
        if args.rounds > 1:
            print("  the round with the median ratio:")
        print(report("baseline", sat_bare, paced=False))
        print(report("app", sat_app, paced=False))
        verdict = "above" if ratio >= FLOOR_RATIO else "BELOW"
        print(f"  ratio app/baseline = {ratio:.3f}  (information; floor {FLOOR_RATIO}: {verdict})")

        arrival, think = paced_schedule(args.paced_rate)
        print(f"\n(b) paced, open loop: {args.paced_rate:g} webhooks/s for "
              f"{paced_calls * arrival:.1f} s: {paced_calls} calls, one every "
              f"{arrival * 1000:.0f} ms, a call's webhooks {think * 1000:.0f} ms apart; "
              "latency from the scheduled send time")  # fmt: skip
        lanes = paced_lanes(paced, args.paced_rate)
        paced_bare = drive(bare, lanes, BARE_CHECKS, args.clients)
        paced_app = drive(app, lanes, checks, args.clients)
        print(report("baseline", paced_bare, paced=True))
        print(report("app", paced_app, paced=True))
        for step, name in enumerate(STEPS):
            print(f"  {'':<9} {name:<10} p50 {paced_app.p(50, step):7.2f} ms  "
                  f"p99 {paced_app.p(99, step):7.2f} ms")  # fmt: skip
        verdict = "met" if paced_app.p(99) < TARGET_P99_MS else "MISSED"
        print(f"  app p99 = {paced_app.p(99):.2f} ms  (target < {TARGET_P99_MS:g} ms: {verdict})")

        for n, (round_bare, round_app, _) in enumerate(rounds):
            runs += [(f"saturation baseline #{n + 1}", round_bare),
                     (f"saturation app #{n + 1}", round_app)]  # fmt: skip
        runs += [("paced baseline", paced_bare), ("paced app", paced_app)]
        failed = [(label, res) for label, res in runs if res.errors]
        sent = len(warm) + sum(len(sat) for sat in sats) + len(paced) + 1
        problems = check_database(database_url, run_id, sent, settings.journal_path)
        if failed or problems:
            print("\nERRORS:")
            for label, res in failed:
                print(f"  {label}: {res.errors} of {res.requests} requests failed, e.g.")
                for sample in res.samples[:3]:
                    print(f"    {sample}")
            for problem in problems:
                print(f"  {problem}")
            print(f"  the app's gunicorn log ends:\n{app.log_tail(10)}")
        else:
            print(f"\nno errors: every answer was 200 with the expected TwiML; all {sent} calls "
                  "are complete in the database")  # fmt: skip
        summary = {
            "calls": args.calls,
            "concurrency": args.concurrency,
            "rps": round(sat_app.rps, 1),
            "baseline_rps": round(sat_bare.rps, 1),
            "ratio": round(ratio, 3),
            "paced_rate": int(args.paced_rate) if args.paced_rate.is_integer() else args.paced_rate,
            "webhook_p50_ms": round(paced_app.p(50), 2),
            "webhook_p99_ms": round(paced_app.p(99), 2),
            "baseline_p99_ms": round(paced_bare.p(99), 2),
        }
        print(json.dumps(summary), flush=True)
        return 1 if failed or problems else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
