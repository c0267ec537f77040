"""Simulated calls per second through the emulator and the app together, and the emulator alone.

    .venv/bin/python -m bench.calls [--calls 300] [--concurrency 50]

Phase 1 (full): the hotline app under gunicorn (2 sync workers, real SQLite and the embedded
Redis) behind the in-process emulator; ``concurrency`` caller threads each place complete IVR
calls: dial → Russian → operator → the message box (a 2 s message) → ``#`` → thanks and hang-up,
with every status and recording callback. Phase 2 (emulator only): the same calls, the same
TwiML, against a minimal endpoint (a keep-alive asyncio HTTP server in its own process) that
replays the app's captured responses without any work, so the emulator does exactly what it did
in phase 1. ``overhead_fraction`` = the emulator-only time per call ÷ the full time per call (an
upper bound on the emulator's share: phase 2 still includes the minimal endpoint's HTTP time).

The last line is one JSON object: calls, concurrency, calls_per_s, emulator_only_calls_per_s,
overhead_fraction. Target: overhead under 25 % at 50 concurrent calls.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from flask import Flask, Response, request

from bench.webhooks import Gunicorn, free_port
from devtools.services import EmbeddedRedis
from emulator import Emulator

ACCOUNT_SID = "AC" + "b" * 32
AUTH_TOKEN = "bench-token-" + "c" * 20
HOTLINE = "+15005550006"


# ------------------------------------------------------------------ the minimal endpoint
async def _serve_canned(port: int, bodies: dict[str, bytes]) -> None:
    """HTTP/1.1 with keep-alive, answering each path with its canned TwiML and nothing else."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request_line = await reader.readline()
                if not request_line:
                    return
                length, close = 0, False
                while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                    elif name.strip().lower() == b"connection":
                        close = value.strip().lower() == b"close"
                if length:
                    await reader.readexactly(length)
                path = request_line.split(b" ")[1].split(b"?")[0].decode()
                body = bodies.get(path, b"<Response/>")
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: %d\r\n\r\n"
                    % len(body)
                    + body
                )
                await writer.drain()
                if close:
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


def serve_canned(port: int, canned_file: Path) -> None:
    base = f"http://127.0.0.1:{port}"
    bodies = {
        path: body.replace("{BASE}", base).encode()
        for path, body in json.loads(canned_file.read_text()).items()
    }
    bodies["/healthz"] = b"ok"
    asyncio.run(_serve_canned(port, bodies))


class CannedEndpoint:
    """The minimal endpoint in its own process (so it does not share the emulator's GIL)."""

    def __init__(self, canned_file: Path):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.calls",
                "--serve-canned",
                str(self.port),
                str(canned_file),
            ],
            cwd=Path(__file__).resolve().parent.parent,
        )

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 30.0) -> None:
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.base + "/healthz", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the minimal endpoint did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


# ------------------------------------------------------------------ capturing the TwiML
def capture_twiml(emu: Emulator, app_base: str, workdir: Path) -> Path:
    """Place one call against the real app, keeping every TwiML it answered, keyed by path."""
    import requests
    from twilio.request_validator import RequestValidator

    bodies: dict[str, str] = {}
    proxy = Flask("capture")

    @proxy.route("/<path:path>", methods=["POST"])
    def forward(path: str) -> Response:
        query = request.query_string.decode()
        url = f"{app_base}/{path}" + (f"?{query}" if query else "")
        form = request.form.to_dict()  # re-signed for the app's URL (the emulator signed ours)
        signature = RequestValidator(AUTH_TOKEN).compute_signature(url, form)
        headers = {"X-Twilio-Signature": signature}
        answer = requests.post(url, data=form, headers=headers, timeout=10)
        body = answer.text.replace(app_base, "{BASE}")
        bodies.setdefault("/" + path, body)
        return Response(body.replace("{BASE}", request.host_url.rstrip("/")), mimetype="text/xml")

    from tests.e2e.live import LiveServer

    server = LiveServer(proxy).start()
    try:
        number = "+15005550099"
        emu.add_number(number, voice_url=f"{server.url}/voice/incoming",
                       status_callback=f"{server.url}/voice/status")  # fmt: skip
        one_call(emu, "+79160000000", number)
        emu.settle()
    finally:
        server.stop()
    path = workdir / "canned.json"
    path.write_text(json.dumps(bodies, ensure_ascii=False))
    return path


# ------------------------------------------------------------------ driving calls
def one_call(emu: Emulator, from_: str, to: str) -> str:
    call = emu.dial(from_, to, listen=False)
    call.press("1", listen=False)  # Russian (barge-in: no need to hear the whole greeting)
    call.press("0", listen=False)  # an operator → the message box
    call.listen()  # hear "leave a message", reach <Record>
    call.speak_for(2)  # a 2 s message, spoken to its end (before the silence timeout)
    call.press("#", listen=False)  # ends the recording → thanks, goodbye, hang-up
    return call.wait_until_finished(max_seconds=120)


def drive(emu: Emulator, number: str, calls: int, concurrency: int) -> tuple[float, int, float]:
    """Run ``calls`` calls with ``concurrency`` caller threads.

    Returns (wall seconds, calls completed, CPU seconds of this process = the emulator).
    """
    counter = iter(range(calls))
    lock = threading.Lock()
    completed = [0]

    def caller(worker: int) -> None:
        while True:
            with lock:
                index = next(counter, None)
            if index is None:
                return
            status = one_call(emu, f"+7916{worker:03d}{index:04d}", number)
            if status == "completed":
                with lock:
                    completed[0] += 1

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(concurrency)]
    cpu_before = time.process_time()
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, completed[0], time.process_time() - cpu_before


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--serve-canned", nargs=2, metavar=("PORT", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_canned:
        serve_canned(int(args.serve_canned[0]), Path(args.serve_canned[1]))
        return 0
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the capture proxy's access log

    from app import run_migrations

    with tempfile.TemporaryDirectory(prefix="hotline-bench-calls-") as tmp:
        work = Path(tmp)
        redis = EmbeddedRedis(work / "redis.sock").start()
        emu = Emulator(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, clock="virtual").start()
        servers: list[Gunicorn] = []
        endpoints: list[CannedEndpoint] = []
        try:
            db_url = f"sqlite:///{work / 'hotline.sqlite3'}"
            run_migrations(db_url)
            port = free_port()
            env = dict(
                os.environ,
                HOTLINE_ENV="test",
                HOTLINE_INSTANCE_PATH=str(work / "instance"),
                DATABASE_URL=db_url,
                REDIS_URL=redis.url,
                PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
                TWILIO_ACCOUNT_SID=ACCOUNT_SID,
                TWILIO_AUTH_TOKEN=AUTH_TOKEN,
                TWILIO_API_BASE_URL=emu.base_url,
                LOG_LEVEL="WARNING",
            )
            options = ["--workers", str(args.workers), "--worker-class", "sync"]
            app_server = Gunicorn("app", "app:create_app()", options, env, work / "app.log")
            app_server.port, app_server.addr = port, ("127.0.0.1", port)
            servers.append(app_server.start())
            app_server.wait_ready("/healthz")
            base = f"http://127.0.0.1:{port}"

            minimal_endpoint = CannedEndpoint(capture_twiml(emu, base, work))
            endpoints.append(minimal_endpoint)
            minimal_endpoint.wait_ready()

            emu.add_number(HOTLINE, voice_url=f"{base}/voice/incoming",
                           voice_fallback_url=f"{base}/voice/fallback",
                           status_callback=f"{base}/voice/status")  # fmt: skip
            minimal = "+15005550011"
            bare_base = minimal_endpoint.base
            emu.add_number(minimal, voice_url=f"{bare_base}/voice/incoming",
                           status_callback=f"{bare_base}/voice/status")  # fmt: skip

            drive(emu, minimal, min(20, args.calls), args.concurrency)  # warm-up
            drive(emu, HOTLINE, min(20, args.calls), args.concurrency)
            app_cpu_before = app_server.cpu_seconds()
            full_s, full_done, full_emu_cpu = drive(emu, HOTLINE, args.calls, args.concurrency)
            app_cpu = app_server.cpu_seconds() - app_cpu_before
            emu_s, emu_done, emu_cpu = drive(emu, minimal, args.calls, args.concurrency)
        finally:
            for server in servers:
                server.stop()
            for endpoint in endpoints:
                endpoint.stop()
            emu.stop()
            redis.stop()

    full_cps = full_done / full_s
    emu_cps = emu_done / emu_s
    overhead = (1 / emu_cps) / (1 / full_cps)
    print(f"full IVR calls (emulator + app): {full_done}/{args.calls} completed in {full_s:.2f} s"
          f" → {full_cps:.1f} calls/s at {args.concurrency} concurrent")  # fmt: skip
    print(f"emulator only (minimal endpoint): {emu_done}/{args.calls} completed in {emu_s:.2f} s"
          f" → {emu_cps:.1f} calls/s")  # fmt: skip
    print(f"CPU per call: emulator {full_emu_cpu / full_done * 1000:.1f} ms, app (gunicorn workers)"
          f" {app_cpu / full_done * 1000:.1f} ms in the full run; emulator alone"
          f" {emu_cpu / emu_done * 1000:.1f} ms")  # fmt: skip
    print(f"emulator overhead: {overhead:.1%} of a full call's time (target < 25%)")
    print(json.dumps({
        "calls": args.calls, "concurrency": args.concurrency,
        "calls_per_s": round(full_cps, 2), "emulator_only_calls_per_s": round(emu_cps, 2),
        "overhead_fraction": round(overhead, 3),
    }))  # fmt: skip
    return 0 if full_done == args.calls and emu_done == args.calls else 1


if __name__ == "__main__":
    sys.exit(main())
