"""Real RQ workers for the tests that kill one: a ``rq worker`` subprocess with the app's
settings in its environment, and a database write lock to stop it at a known point."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
from pathlib import Path

from sqlalchemy import create_engine, text

from devtools import procfile
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, HOTLINE_NUMBER

ROOT = Path(__file__).resolve().parents[2]


def worker_env(hotline) -> dict[str, str]:
    """What a worker process needs to build the same app as the test's live server."""
    settings = hotline.settings
    return {
        **os.environ,
        "HOTLINE_ENV": "test",
        "HOTLINE_INSTANCE_PATH": str(settings.instance_path),
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "PUBLIC_BASE_URL": settings.public_base_url,
        "TWILIO_API_BASE_URL": settings.twilio_api_base_url,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "HOTLINE_NUMBER": HOTLINE_NUMBER,
    }


def start_worker(hotline, *, burst: bool = True) -> subprocess.Popen:
    """The Procfile's worker (``--burst``: it ends when the queue is empty), in its own session.
    Jobs run in the worker's own process (no work horse), so killing it kills the job."""
    env = worker_env(hotline)
    argv = procfile.command("worker", env) + (["--burst"] if burst else [])
    return subprocess.Popen(
        argv, cwd=ROOT, env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def kill(worker: subprocess.Popen) -> None:
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(timeout=10)


class WriteLock:
    """Hold the write lock on ``table`` (SQLite: the whole file), so a worker that reaches its
    first write there waits."""

    def __init__(self, url: str, table: str):
        self.url, self.table = url, table

    def __enter__(self):
        if self.url.startswith("sqlite"):
            self.sqlite = sqlite3.connect(self.url.split("///", 1)[1], isolation_level=None)
            self.sqlite.execute("BEGIN IMMEDIATE")
        else:
            self.engine = create_engine(self.url)
            self.conn = self.engine.connect()
            self.conn.execute(text(f"LOCK TABLE {self.table} IN EXCLUSIVE MODE"))
        return self

    def __exit__(self, *exc):
        if self.url.startswith("sqlite"):
            self.sqlite.execute("ROLLBACK")
            self.sqlite.close()
        else:
            self.conn.rollback()
            self.conn.close()
            self.engine.dispose()
