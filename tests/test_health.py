"""Liveness and readiness: /healthz always answers; /readyz says ok or not ok, and only the log
names whichever of DB and Redis is down."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from flask import Flask

from app import create_app
from settings import Settings
from tests.support import handles

DEAD_REDIS = "unix:///nonexistent/x.sock"
DEAD_DATABASE = "postgresql+psycopg://nobody@127.0.0.1:1/nothing"


@pytest.fixture
def build_app() -> Iterator:
    """Build apps from altered settings; dispose of their connections afterwards."""
    built: list[Flask] = []

    def build(settings: Settings) -> Flask:
        flask_app = create_app(settings)
        flask_app.testing = True
        built.append(flask_app)
        return flask_app

    yield build
    for flask_app in built:
        handles(flask_app).dispose()


def test_healthz_answers(client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_healthz_answers_with_database_and_redis_down(settings, build_app) -> None:
    down = build_app(settings.replace(redis_url=DEAD_REDIS, database_url=DEAD_DATABASE))
    response = down.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_with_real_database_and_redis(client) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


@pytest.mark.parametrize(
    ("changes", "failed"),
    [
        ({"redis_url": DEAD_REDIS}, ["redis"]),
        ({"database_url": DEAD_DATABASE}, ["database"]),
        ({"redis_url": DEAD_REDIS, "database_url": DEAD_DATABASE}, ["database", "redis"]),
    ],
    ids=["redis-down", "database-down", "both-down"],
)
def test_readyz_says_only_unavailable_and_the_log_names_what_is_down(
    settings, build_app, changes, failed, caplog
) -> None:
    """An anonymous client learns "not ready", never which component or which exception: the
    operator reads that in the log."""
    with caplog.at_level(logging.WARNING, logger="app"):
        response = build_app(settings.replace(**changes)).test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "unavailable"}
    raw = response.get_data(as_text=True)
    for word in ("database", "redis", "Error", "nobody", "127.0.0.1", "nonexistent"):
        assert word not in raw
    lines = [r.getMessage() for r in caplog.records if r.name == "app"]
    assert len(lines) == 1 and lines[0].startswith("readyz: not ready: ")
    assert [part.split(" ")[0] for part in lines[0].split(": ", 2)[2].split(", ")] == failed
    # The log names the component and the exception's type, never its address or credentials.
    for secret in ("nobody", "127.0.0.1", "nonexistent", settings.database_url):
        assert secret not in lines[0]
