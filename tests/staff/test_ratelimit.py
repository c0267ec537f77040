"""Login throttling: attackers are slowed down, and cannot lock staff out."""

from __future__ import annotations

import contextlib

import pytest
import redis

from staff.ratelimit import (
    ACCOUNT,
    ADDRESS,
    PAIR,
    HashingBusy,
    HashingGate,
    LoginLimiter,
    LoginThrottled,
    throttle_address,
)
from tests.staff.support import PASSWORD, code, csrf_token, make_user
from tests.support import handles

ATTACKER, OFFICE = "203.0.113.66", "198.51.100.7"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def limiter(app, clock) -> LoginLimiter:
    svc = handles(app)
    return LoginLimiter(svc.redis, svc.protector, clock=clock)


def fail_until_throttled(limiter: LoginLimiter, username: str, address: str, known: bool) -> int:
    tries = 0
    while True:
        try:
            limiter.charge(username, address, known=known)
        except LoginThrottled as throttled:
            return tries if throttled.wait_s > 0 else -1
        tries += 1
        assert tries < 1000


def test_the_pair_gets_free_attempts_then_exponential_delays(limiter, clock) -> None:
    assert fail_until_throttled(limiter, "olena", OFFICE, known=True) == PAIR.free
    waits = []
    for _ in range(4):
        with pytest.raises(LoginThrottled) as throttled:
            limiter.charge("olena", OFFICE, known=True)
        waits.append(throttled.value.wait_s)
        clock.now += throttled.value.wait_s
        limiter.charge("olena", OFFICE, known=True)  # allowed once the delay is over
    assert waits == [PAIR.base_s * 2**i for i in range(4)]


def test_delays_are_capped(limiter, clock) -> None:
    for _ in range(40):
        try:
            limiter.charge("olena", OFFICE, known=True)
        except LoginThrottled as throttled:
            assert throttled.wait_s <= PAIR.max_s
            clock.now += throttled.wait_s


def test_a_successful_step_is_refunded_and_a_login_clears_the_pair(limiter, clock) -> None:
    for _ in range(PAIR.free * 3):
        limiter.refund(limiter.charge("olena", OFFICE, known=True))  # right every time
    for _ in range(PAIR.free - 1):
        limiter.charge("olena", OFFICE, known=True)  # four wrong passwords
    limiter.succeeded(limiter.charge("olena", OFFICE, known=True))  # then right
    assert fail_until_throttled(limiter, "olena", OFFICE, known=True) == PAIR.free


def test_spraying_from_one_address_is_throttled_across_accounts(limiter) -> None:
    for n in range(ADDRESS.free):
        limiter.charge(f"user{n}", ATTACKER, known=False)
    with pytest.raises(LoginThrottled):
        limiter.charge("someone-else", ATTACKER, known=False)


def test_an_account_under_attack_still_opens_from_its_known_address(limiter) -> None:
    for n in range(ACCOUNT.free * 2):  # a botnet: a new address for every guess
        with contextlib.suppress(LoginThrottled):
            limiter.charge("olena", f"203.0.113.{n}", known=False)
    with pytest.raises(LoginThrottled):  # unknown addresses now wait …
        limiter.charge("olena", "192.0.2.1", known=False)
    limiter.charge("olena", OFFICE, known=True)  # … her usual one does not


def test_unknown_usernames_are_counted_like_real_ones(limiter) -> None:
    assert fail_until_throttled(limiter, "no-such-user", ATTACKER, known=False) == PAIR.free


def test_redis_keys_hold_no_username_or_address(app, limiter) -> None:
    limiter.charge("olena", OFFICE, known=False)
    keys = b" ".join(handles(app).redis.keys("*"))
    assert b"olena" not in keys and OFFICE.encode() not in keys


@pytest.mark.parametrize(
    "address,counted",
    [
        ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"),
        ("2001:DB8:1:2::1", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("192.0.2.7", "192.0.2.7"),
        ("unknown", "unknown"),
    ],
)
def test_the_throttle_counts_an_ipv6_client_by_its_64(address, counted) -> None:
    assert throttle_address(address) == counted


def test_addresses_of_one_ipv6_64_share_their_counters(limiter) -> None:
    """One subscriber's /64 holds 2^64 addresses: a new one per guess gains nothing."""
    for n in range(PAIR.free):
        limiter.charge("olena", f"2001:db8:5:6::{n + 1:x}", known=True)
    with pytest.raises(LoginThrottled):
        limiter.charge("olena", "2001:db8:5:6:ffff::1", known=True)
    limiter.charge("olena", "2001:db8:5:7::1", known=True)  # the next /64 is someone else


def test_the_hashing_gate_bounds_hashes_across_processes(app, clock) -> None:
    svc = handles(app)
    other_process = redis.Redis.from_url(svc.settings.redis_url or "")
    try:
        here = HashingGate(svc.redis, 2, clock=clock)
        there = HashingGate(other_process, 2, clock=clock)
        with here.slot(), there.slot():
            with pytest.raises(HashingBusy), here.slot():
                pass
            with pytest.raises(HashingBusy), there.slot():
                pass
        with here.slot(), there.slot():  # given back when each block ended
            pass
        # A slot left by a process killed while hashing is freed after STALE_S.
        svc.redis.zadd(HashingGate.KEY, {"a-killed-process": clock.now})
        with there.slot(), pytest.raises(HashingBusy), here.slot():
            pass
        clock.now += HashingGate.STALE_S + 1
        with here.slot(), there.slot():
            pass
    finally:
        other_process.close()


# Through the real login pages ------------------------------------------------------------


def post_login(client, username: str, password: str, address: str):
    return client.post(
        "/console/login",
        data={"username": username, "password": password, "csrf_token": csrf_token(client)},
        environ_base={"REMOTE_ADDR": address},
    )


def test_the_attacker_cannot_lock_staff_out(app, client) -> None:
    _, secret = make_user(app, "supervisor", "olena")
    # Olena signed in from the office before (that makes the office a known address).
    assert post_login(client, "olena", PASSWORD, OFFICE).status_code == 302
    done = client.post(
        "/console/login/totp", data={"code": code(secret), "csrf_token": csrf_token(client)},
        environ_base={"REMOTE_ADDR": OFFICE},
    )  # fmt: skip
    assert done.status_code == 302
    client.post("/console/logout", data={"csrf_token": csrf_token(client)})

    attacker = app.test_client()
    statuses = [
        post_login(attacker, "olena", f"guess-{n}-xxxxxxx", ATTACKER).status_code for n in range(8)
    ]
    assert statuses[: PAIR.free] == [401] * PAIR.free and 429 in statuses  # slowed down
    for n in range(ACCOUNT.free + 2):  # and from many addresses
        post_login(attacker, "olena", f"guess-{n}-yyyyyyy", f"192.0.2.{n + 1}")
    # Even the right password from the attacker's address (or a new one) now waits …
    assert post_login(attacker, "olena", PASSWORD, ATTACKER).status_code == 429
    assert post_login(attacker, "olena", PASSWORD, "192.0.2.200").status_code == 429
    # … while Olena, at her desk, signs in at once.
    assert post_login(client, "olena", PASSWORD, OFFICE).status_code == 302
    done = client.post(
        "/console/login/totp", data={"code": code(secret, 1), "csrf_token": csrf_token(client)},
        environ_base={"REMOTE_ADDR": OFFICE},
    )  # fmt: skip
    assert done.status_code == 302 and done.headers["Location"].endswith("/console/")


def test_wrong_codes_are_throttled_too(app, client) -> None:
    make_user(app, "supervisor", "olena")
    assert post_login(client, "olena", PASSWORD, ATTACKER).status_code == 302
    statuses = [
        client.post(
            "/console/login/totp", data={"code": "000000", "csrf_token": csrf_token(client)},
            environ_base={"REMOTE_ADDR": ATTACKER},
        ).status_code
        for _ in range(PAIR.free + 1)
    ]  # fmt: skip
    assert statuses[-1] == 429


def test_login_refuses_politely_when_redis_is_down(app, client, monkeypatch) -> None:
    make_user(app, "supervisor", "olena")

    def down(*_args, **_kwargs):
        raise redis.ConnectionError("down")

    monkeypatch.setattr(LoginLimiter, "charge", down)
    response = post_login(client, "olena", PASSWORD, OFFICE)
    assert response.status_code == 503
