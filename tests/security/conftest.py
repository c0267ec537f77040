"""The attacks of ``tests/security/``: each is sent to the app as it runs in production — the
Procfile's gunicorn on a real loopback socket — as raw bytes when the attack is in the bytes.

``served("web")`` starts a Procfile process with the test's settings (same database, Redis and
instance folder as the ``app`` fixture, so a test can look at what was or was not written) and
returns a ``Served``: its URL, raw-request helpers, and the process's log for assertions.
"""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import pytest

from devtools import procfile
from settings import Settings
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, HOTLINE_NUMBER, sign

ROOT = Path(__file__).resolve().parents[2]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``@pytest.mark.postgresql`` tests (database roles: SQLite has none) run only when the
    suite runs on PostgreSQL (``scripts/with-postgres ./scripts/test``, as CI does); on SQLite
    they are deselected, not skipped: there is nothing there for them to check."""
    if os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql"):
        return
    kept = [item for item in items if item.get_closest_marker("postgresql") is None]
    if len(kept) < len(items):
        config.hook.pytest_deselected(items=[item for item in items if item not in kept])
        items[:] = kept


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def process_env(settings: Settings, extra: Mapping[str, str] = ()) -> dict[str, str]:  # type: ignore[assignment]
    """The environment that makes a process build the same app as the ``app`` fixture."""
    return {
        **os.environ,
        "HOTLINE_ENV": settings.env,
        "HOTLINE_INSTANCE_PATH": str(settings.instance_path),
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url or "",
        "PUBLIC_BASE_URL": settings.public_base_url,
        "TWILIO_API_BASE_URL": settings.twilio_api_base_url,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "HOTLINE_NUMBER": HOTLINE_NUMBER,
        "LOG_LEVEL": "INFO",
        **dict(extra),
    }


@dataclass
class Answer:
    status: int
    headers: dict[str, str]  # lower-case names (the last one of a repeated header)
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


@dataclass
class Served:
    """A Procfile process listening on 127.0.0.1:``port``."""

    name: str
    port: int
    process: subprocess.Popen
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        """Everything the process wrote to stdout and stderr so far."""
        return self.log_path.read_text(errors="replace")

    def raw(self, request: bytes, timeout: float = 10) -> Answer:
        """Send ``request`` byte for byte; the parsed answer."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as sock:
            sock.sendall(request)
            response = http.client.HTTPResponse(sock)
            response.begin()
            body = response.read()
            headers = {name.lower(): value for name, value in response.getheaders()}
            return Answer(response.status, headers, body)

    def request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: Mapping[str, str | bytes] | list[tuple[str, str | bytes]] = (),  # type: ignore[assignment]
    ) -> Answer:
        """An HTTP/1.1 request built by hand: header values may be any bytes, names may repeat."""
        items = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
        lines = [f"{method} {path} HTTP/1.1".encode(), b"Host: 127.0.0.1", b"Connection: close"]
        for name, value in items:
            value_bytes = value if isinstance(value, bytes) else value.encode("latin-1")
            lines.append(name.encode("latin-1") + b": " + value_bytes)
        if body or method == "POST":
            lines.append(b"Content-Length: " + str(len(body)).encode())
        return self.raw(b"\r\n".join(lines) + b"\r\n\r\n" + body)

    def post_form(
        self,
        path: str,
        params: Mapping[str, str],
        headers: Mapping[str, str | bytes] | list[tuple[str, str | bytes]] = (),  # type: ignore[assignment]
    ) -> Answer:
        items = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
        items.append(("Content-Type", "application/x-www-form-urlencoded"))
        return self.request("POST", path, urlencode(params).encode(), items)

    def signed_post(self, public_base_url: str, path: str, params: Mapping[str, str]) -> Answer:
        """A webhook as the carrier sends it: signed over PUBLIC_BASE_URL + path."""
        signature = sign(public_base_url + path, dict(params))
        return self.post_form(path, params, {"X-Twilio-Signature": signature})


def start(name: str, env: dict[str, str], log_path: Path, timeout: float = 60) -> Served:
    port = free_port()
    env = {**env, "PORT": str(port), "HOST": "127.0.0.1"}
    log_file = log_path.open("ab")
    process = subprocess.Popen(
        procfile.command(name, env), cwd=ROOT, env=env, start_new_session=True,
        stdout=log_file, stderr=subprocess.STDOUT,
    )  # fmt: skip
    log_file.close()
    served = Served(name, port, process, log_path)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise AssertionError(f"{name} exited with {process.returncode}:\n{served.log()}")
        try:
            if served.request("GET", "/healthz").status == 200:
                return served
        except OSError:
            pass
        if time.monotonic() > deadline:
            stop(served)
            raise AssertionError(f"{name} did not answer /healthz in {timeout} s:\n{served.log()}")
        time.sleep(0.1)


def stop(served: Served) -> None:
    if served.process.poll() is None:
        os.killpg(served.process.pid, 15)
        try:
            served.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(served.process.pid, 9)
            served.process.wait(timeout=10)


@pytest.fixture
def served(app, settings: Settings, tmp_path: Path) -> Iterator[Callable[..., Served]]:
    """``served("web", EXTRA="value")``: a Procfile process with the test's settings (the
    ``app`` fixture has cleaned the database and Redis first); stopped after the test."""
    started: list[Served] = []

    def serve(name: str = "web", **extra: str) -> Served:
        env = process_env(settings, extra)
        started.append(start(name, env, tmp_path / f"{name}-{len(started)}.log"))
        return started[-1]

    yield serve
    for one in started:
        stop(one)
