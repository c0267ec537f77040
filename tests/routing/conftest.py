"""Routing-core fixtures: the session's embedded Redis, flushed before and after each test;
``svc``, the app's services (tests that route through the app override ``core`` with the app's
own routing core)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import redis

from routing.core import RoutingCore
from tests.support import Handles, handles


@pytest.fixture
def rds(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def make_core(rds: redis.Redis) -> Callable[..., RoutingCore]:
    """``make_core(strategy=..., ...)``: a core on the flushed Redis."""

    def make(**options) -> RoutingCore:
        return RoutingCore(rds, **options)

    return make


@pytest.fixture
def core(make_core) -> RoutingCore:
    return make_core()


@pytest.fixture
def svc(app) -> Handles:
    return handles(app)
