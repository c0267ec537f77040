"""Shared fixtures: a real Redis (the embedded one, flushed per test), a real database (SQLite, or
PostgreSQL when ``TEST_DATABASE_URL`` is set), the app with test settings, signed carrier requests.
"""

from __future__ import annotations

import os
import secrets
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlencode

import pytest
import redis
from sqlalchemy import Connection, create_engine, text
from twilio.request_validator import RequestValidator

import inquiries.blocklist  # the blocklist's table on the metadata
import inquiries.message_models
import inquiries.models  # noqa: F401 - tables on the metadata
import recordings.models  # noqa: F401 - the recording table
import staff.models  # noqa: F401 - staff tables (case notes refer to their authors)
from app import create_app, run_migrations
from db import Base
from devtools.services import EmbeddedRedis
from settings import Settings, load_settings
from tests.support import handles

PUBLIC_BASE_URL = "https://hotline.example.org"
ACCOUNT_SID = "AC" + "5" * 32
AUTH_TOKEN = "test-auth-token-" + "0" * 16
HOTLINE_NUMBER = "+15005550006"


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if os.environ.get("TEST_REDIS_URL"):
        yield os.environ["TEST_REDIS_URL"]
        return
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis") / "redis.sock").start()
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = os.environ.get("TEST_DATABASE_URL") or (
        f"sqlite:///{tmp_path_factory.mktemp('db') / 'hotline-test.sqlite3'}"
    )
    if url.startswith("postgresql"):
        engine = create_engine(url)
        with engine.begin() as conn:  # start from nothing: the migrations make the schema
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    run_migrations(url)
    return url


#: Tables whose database triggers refuse UPDATE and DELETE (migration 0006).
APPEND_ONLY_TABLES = ("audit_event",)


@contextmanager
def append_only_lifted(conn: Connection) -> Iterator[None]:
    """Tests only: lift the append-only triggers for this transaction, then put them back as
    the migrations made them (the app itself has no way to do this)."""
    if conn.dialect.name == "postgresql":
        for name in APPEND_ONLY_TABLES:
            conn.execute(text(f"ALTER TABLE {name} DISABLE TRIGGER USER"))
        yield
        for name in APPEND_ONLY_TABLES:
            conn.execute(text(f"ALTER TABLE {name} ENABLE TRIGGER USER"))
        return
    query = text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = :t")
    triggers = [row for t in APPEND_ONLY_TABLES for row in conn.execute(query, {"t": t}).all()]
    for name, _sql in triggers:
        conn.execute(text(f'DROP TRIGGER "{name}"'))
    yield
    for _name, sql in triggers:
        conn.execute(text(sql))


def clean_database(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn, append_only_lifted(conn):
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
    engine.dispose()


@pytest.fixture
def settings(tmp_path: Path, database_url: str, redis_url: str) -> Settings:
    environ = {
        "HOTLINE_ENV": "test",
        "HOTLINE_INSTANCE_PATH": str(tmp_path / "instance"),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "HOTLINE_NUMBER": HOTLINE_NUMBER,
        "LOG_LEVEL": "INFO",
    }
    return load_settings(environ)


@pytest.fixture
def app(settings: Settings):
    clean_database(settings.database_url)
    flush = redis.Redis.from_url(settings.redis_url or "")
    flush.flushdb()
    flask_app = create_app(settings)
    flask_app.testing = True
    yield flask_app
    handles(flask_app).dispose()
    flush.flushdb()
    flush.close()


@pytest.fixture
def app_factory():
    """Build extra apps (other settings) whose connection pools are closed after the test."""
    made = []

    def make(app_settings: Settings):
        made.append(create_app(app_settings))
        return made[-1]

    yield make
    for extra in made:
        handles(extra).dispose()


@pytest.fixture
def client(app):
    return app.test_client()


def new_call_sid() -> str:
    return "CA" + secrets.token_hex(16)


def sign(url: str, params: dict[str, str], token: str = AUTH_TOKEN) -> str:
    return RequestValidator(token).compute_signature(url, params)


class Carrier:
    """Posts webhooks the way Twilio does: form-encoded, signed over PUBLIC_BASE_URL + path."""

    def __init__(self, client):
        self.client = client

    def post(self, path: str, params: dict[str, str], *, signature: str | None = None):
        url = PUBLIC_BASE_URL + path
        headers = {"X-Twilio-Signature": signature if signature is not None else sign(url, params)}
        return self.client.post(path, data=params, headers=headers)

    def twiml(self, path: str, params: dict[str, str]) -> ET.Element:
        response = self.post(path, params)
        assert response.status_code == 200, response.data
        assert response.mimetype == "text/xml"
        return ET.fromstring(response.data)


@pytest.fixture
def carrier(client) -> Carrier:
    return Carrier(client)


def call_params(call_sid: str, from_: str = "+79161234567", **extra: str) -> dict[str, str]:
    params = {
        "CallSid": call_sid,
        "AccountSid": ACCOUNT_SID,
        "From": from_,
        "To": HOTLINE_NUMBER,
        "CallStatus": "in-progress",
        "Direction": "inbound",
        "ApiVersion": "2010-04-01",
        "Caller": from_,
        "Called": HOTLINE_NUMBER,
    }
    params.update(extra)
    return params


def path_of(url: str) -> str:
    """``https://hotline.example.org/voice/ivr/main?attempt=1`` → ``/voice/ivr/main?attempt=1``."""
    assert url.startswith(PUBLIC_BASE_URL), url
    return url[len(PUBLIC_BASE_URL) :]


def query(**params: object) -> str:
    return "?" + urlencode(params)
