"""The run command's supervisor: start every process the hotline needs, stop them together.

``scripts/run`` calls this after setting up the virtualenv. It starts the embedded Redis (unless
``REDIS_URL`` is set), migrates the database, starts the local Twilio emulator pointed at the app
(unless Twilio credentials are set in the environment), then the Procfile's processes — ``web``
(the carrier's webhooks), ``console`` (the staff console, its own gunicorn: a burst of logins
cannot delay a call) and ``worker`` (an RQ worker with its scheduler) — and prints where to go.
Ctrl-C stops everything.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from devtools import procfile
from devtools.services import EmbeddedRedis
from settings import load_settings

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def wait_for(url: str, timeout_s: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own port
                if response.status < 500:
                    return True
        except OSError:
            time.sleep(0.2)
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the hotline on embedded defaults.")
    parser.add_argument(
        "--host", default="127.0.0.1",
        help="the address to listen on (loopback unless HOTLINE_ENV=production: gunicorn.conf.py)",
    )  # fmt: skip
    parser.add_argument("--port", type=int, default=5000, help="the webhooks' port (web)")
    parser.add_argument("--console-port", type=int, default=5001, help="the staff console's port")
    parser.add_argument("--emulator-port", type=int, default=5050)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers of each")
    args = parser.parse_args(argv)

    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    processes: list[tuple[str, subprocess.Popen[bytes]]] = []
    redis_server: EmbeddedRedis | None = None
    use_emulator = not (env.get("TWILIO_ACCOUNT_SID") and env.get("TWILIO_AUTH_TOKEN"))
    app_url = f"http://{args.host}:{args.port}"
    console_url = f"http://{args.host}:{args.console_port}"
    if use_emulator:
        env.setdefault("PUBLIC_BASE_URL", app_url)
        env["TWILIO_API_BASE_URL"] = f"http://{args.host}:{args.emulator_port}"

    settings = load_settings(env)  # generates development secrets on first run
    signal.signal(signal.SIGTERM, _interrupt)  # stop the children in order, as on Ctrl-C
    try:
        if not env.get("REDIS_URL"):
            redis_server = EmbeddedRedis(
                settings.embedded_redis_socket, log_path=settings.instance_path / "redis.log"
            ).start()
            env["REDIS_URL"] = redis_server.url
            print(f"==> redis: embedded redis-server on {settings.embedded_redis_socket}")

        print("==> database: migrating")
        subprocess.run(
            [str(BIN / "flask"), "--app", "app", "migrate"], cwd=ROOT, env=env, check=True
        )

        if use_emulator:
            base = env["PUBLIC_BASE_URL"]
            emulator = [
                sys.executable, "-m", "emulator",
                "--host", args.host, "--port", str(args.emulator_port),
                "--account-sid", settings.twilio_account_sid,
                "--auth-token", settings.twilio_auth_token,
                "--number", settings.hotline_number,
                "--voice-url", f"{base}/voice/incoming",
                "--fallback-url", f"{base}/voice/fallback",
                "--status-callback", f"{base}/voice/status",
                "--sms-url", f"{base}/messaging/incoming",
            ]  # fmt: skip
            _start(processes, "emulator", emulator, env)

        access_log = (env.get("GUNICORN_CMD_ARGS", "") + " --access-logfile -").strip()
        served = {"HOST": args.host, "GUNICORN_CMD_ARGS": access_log}
        web_env = {**env, **served, "PORT": str(args.port), "WEB_CONCURRENCY": str(args.workers)}
        _start(processes, "web", procfile.command("web", web_env), web_env)
        console_env = {**env, **served, "PORT": str(args.console_port),
                       "CONSOLE_CONCURRENCY": str(args.workers)}  # fmt: skip
        _start(processes, "console", procfile.command("console", console_env), console_env)
        _start(processes, "worker", procfile.command("worker", env), env)

        for url in (app_url, console_url):
            if not wait_for(f"{url}/readyz"):
                print(f"!! {url} did not become ready; see the output above", file=sys.stderr)
        print()
        print(f"==> the staff console: {console_url}/console/")
        print(f"==> carrier webhooks: {app_url}  (PUBLIC_BASE_URL; readiness: {app_url}/readyz)")
        if use_emulator:
            print(
                f"==> carrier: the local Twilio emulator; call the hotline "
                f"({settings.hotline_number}) from the softphone: "
                f"http://{args.host}:{args.emulator_port}/softphone"
            )
        print("==> Ctrl-C stops everything")
        return _wait(processes)
    except KeyboardInterrupt:
        return 0
    finally:
        _stop(processes)
        if redis_server is not None:
            redis_server.stop()


def _start(
    processes: list[tuple[str, subprocess.Popen[bytes]]],
    name: str,
    argv: list[str],
    env: dict[str, str],
) -> None:
    """A child in its own session: signals reach it from ``_stop`` only, once."""
    processes.append((name, subprocess.Popen(argv, cwd=ROOT, env=env, start_new_session=True)))


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _wait(processes: list[tuple[str, subprocess.Popen[bytes]]]) -> int:
    while True:
        for name, proc in processes:
            code = proc.poll()
            if code is not None:
                print(f"!! {name} exited with code {code}; stopping", file=sys.stderr)
                return code or 1
        time.sleep(0.5)


def _stop(processes: list[tuple[str, subprocess.Popen[bytes]]]) -> None:
    """Each child leads its own session (a Ctrl-C reaches only this supervisor): its whole
    group (an RQ worker's scheduler and work horse too) gets one SIGTERM, the last started
    first, and is waited for, so Redis stops after every process that talks to it."""
    for _name, proc in reversed(processes):
        _signal_group(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    for _name, proc in processes:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal_group(proc.pid, signal.SIGKILL)
        while _signal_group(proc.pid, 0) and time.monotonic() < deadline:
            time.sleep(0.1)  # the group's other processes are still finishing
        _signal_group(proc.pid, signal.SIGKILL)


def _signal_group(pgid: int, sig: int) -> bool:
    """Signal a process group; False once it is gone."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
