"""Login throttling in Redis that slows attackers down without letting them lock staff out.

Every login step (the password, then the TOTP code) is one *attempt*. An attempt is charged,
before the password or code is checked, to up to three counters (an atomic Lua script checks
and charges them all at once, so parallel requests cannot slip past a limit):

- **pair** — (account, address): always. A handful of free attempts, then exponential delays.
- **address** — the address, across all accounts (password spraying, credential stuffing).
- **account** — the account, across all addresses (a botnet guessing one password).

The last two apply only when the address is *not known* for the account, known meaning the
account completed a login (password and TOTP) from it recently (the database's
``staff_session`` rows say so, so a flushed Redis forgets nothing that matters). So an attacker
who hammers an account from anywhere else delays only the attempts from unknown addresses: the
person at their usual address still signs in at once with the right password and code. From an
address under attack (the attacker's own, or one the attacker shares) the pair counter still
delays them — a limit nobody can avoid and the price of refusing to let guesses through.

A step that succeeds refunds its charge; a completed login also clears the pair counter.
Delays are never a hard lock: the n-th counted attempt past ``free`` waits
``min(base·2^(n-free), max)`` seconds after the previous one, and counters expire ``ttl``
seconds after their last attempt. Accounts and addresses are keyed by a keyed hash (no
usernames or addresses in Redis), and unknown usernames are counted exactly like real ones.

An IPv6 client is counted by its /64 (``throttle_address``): one subscriber usually holds a
whole /64 and could otherwise take a fresh address for every guess. IPv4 (and IPv4-mapped IPv6)
addresses are counted one by one.

``HashingGate`` bounds the password hashes (argon2id) computed at once across every process
that shares the Redis (``STAFF_MAX_PASSWORD_HASHES``): one more is refused at once
(``HashingBusy``), so a burst of logins cannot queue for the CPU the webhooks need.
"""

from __future__ import annotations

import ipaddress
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import redis

from dataprotection import DataProtector

KEY_PREFIX = "staff:login:"


@dataclass(frozen=True)
class Limit:
    name: str
    free: int  # attempts without delay
    base_s: float  # the first delay
    max_s: float  # the longest delay
    ttl_s: int  # forget the counter this long after its last attempt


PAIR = Limit("pair", free=5, base_s=2.0, max_s=15 * 60, ttl_s=24 * 3600)
ADDRESS = Limit("addr", free=30, base_s=2.0, max_s=60 * 60, ttl_s=24 * 3600)
ACCOUNT = Limit("acct", free=10, base_s=2.0, max_s=60 * 60, ttl_s=24 * 3600)

# KEYS: counters. ARGV: now, then (free, base, max, ttl) per key. Returns the wait in seconds
# (a string, to keep fractions) and charges every counter only when none asks to wait.
_CHARGE = """
local now = tonumber(ARGV[1])
local wait = 0
for i, key in ipairs(KEYS) do
  local o = 2 + (i - 1) * 4
  local free, base, max = tonumber(ARGV[o]), tonumber(ARGV[o + 1]), tonumber(ARGV[o + 2])
  local v = redis.call('HMGET', key, 'n', 'last')
  local n, last = tonumber(v[1]) or 0, tonumber(v[2]) or 0
  if n >= free then
    local w = last + math.min(base * 2 ^ (n - free), max) - now
    if w > wait then wait = w end
  end
end
if wait > 0 then return tostring(wait) end
for i, key in ipairs(KEYS) do
  redis.call('HINCRBY', key, 'n', 1)
  redis.call('HSET', key, 'last', ARGV[1])
  redis.call('EXPIRE', key, tonumber(ARGV[5 + (i - 1) * 4]))
end
return '0'
"""
_REFUND = """
for _, key in ipairs(KEYS) do
  local n = tonumber(redis.call('HGET', key, 'n') or '0')
  if n > 0 then redis.call('HINCRBY', key, 'n', -1) end
end
if ARGV[1] == '1' then redis.call('DEL', KEYS[1]) end
return 0
"""


#: IPv6 clients are counted by this prefix (a subscriber's usual allocation is a /64 or more).
IPV6_PREFIX = 64


def throttle_address(address: str) -> str:
    """What the throttle counts for ``address``: an IPv6 address's /64 (``2001:db8::/64``), an
    IPv4 address itself (also when written IPv4-mapped, ``::ffff:192.0.2.1``); anything that
    is not an address (``unknown``) as it is."""
    try:
        parsed = ipaddress.ip_address(address.strip())
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, IPV6_PREFIX), strict=False))
    return str(parsed)


class LoginThrottled(Exception):
    """Too many attempts: try again in ``wait_s`` seconds."""

    def __init__(self, wait_s: float):
        super().__init__(f"try again in {wait_s:.0f} s")
        self.wait_s = wait_s


@dataclass(frozen=True)
class Attempt:
    """What one charged attempt touched (the pair counter first)."""

    keys: tuple[str, ...]


class LoginLimiter:
    def __init__(
        self,
        client: redis.Redis,
        protector: DataProtector,
        clock: Callable[[], float] = time.time,
    ):
        self._redis = client
        self._protector = protector
        self._clock = clock
        self._charge = client.register_script(_CHARGE)
        self._refund = client.register_script(_REFUND)

    def _id(self, value: str, purpose: str) -> str:
        return self._protector.lookup_hash(value, purpose=purpose)[:32]

    def limits_for(self, username: str, address: str, known: bool) -> list[tuple[str, Limit]]:
        account = self._id(username.strip().lower(), "staff-login-account")
        where = self._id(throttle_address(address), "staff-login-address")
        chosen = [(f"{KEY_PREFIX}pair:{account}:{where}", PAIR)]
        if not known:
            chosen.append((f"{KEY_PREFIX}addr:{where}", ADDRESS))
            chosen.append((f"{KEY_PREFIX}acct:{account}", ACCOUNT))
        return chosen

    def charge(self, username: str, address: str, *, known: bool) -> Attempt:
        """Charge one attempt, or raise ``LoginThrottled`` (nothing charged) if one must wait."""
        chosen = self.limits_for(username, address, known)
        args: list[str | float | int] = [repr(self._clock())]
        for _key, limit in chosen:
            args += [limit.free, limit.base_s, limit.max_s, limit.ttl_s]
        wait = float(self._charge(keys=[key for key, _ in chosen], args=args))
        if wait > 0:
            raise LoginThrottled(wait)
        return Attempt(tuple(key for key, _ in chosen))

    def refund(self, attempt: Attempt) -> None:
        """The step succeeded: it does not count."""
        self._refund(keys=list(attempt.keys), args=["0"])

    def succeeded(self, attempt: Attempt) -> None:
        """The login is complete: refund the step and forget the pair's failures."""
        self._refund(keys=list(attempt.keys), args=["1"])

    def forget_pair(self, attempt: Attempt) -> None:
        """The login is complete, its steps refunded already: forget the pair's failures."""
        if attempt.keys:
            self._redis.delete(attempt.keys[0])


# KEYS: the slots (a sorted set: slot id -> when taken). ARGV: now, stale after, limit, slot id.
# Slots older than "stale" (a process killed while hashing) are freed first.
_ACQUIRE = """
local now, stale, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - stale)
if redis.call('ZCARD', KEYS[1]) >= limit then return 0 end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('EXPIRE', KEYS[1], math.ceil(stale))
return 1
"""


class HashingBusy(Exception):
    """As many password hashes as allowed are being computed: try again in a moment."""


class HashingGate:
    """At most ``limit`` password hashes at once over every process that shares the Redis.

    ``with gate.slot(): …`` takes a slot or raises ``HashingBusy`` at once (it never waits); the
    slot is given back when the block ends. A slot left by a process killed while hashing is
    freed after ``STALE_S`` (a hash takes well under a second).
    """

    KEY = KEY_PREFIX + "hashing"
    STALE_S = 30.0

    def __init__(self, client: redis.Redis, limit: int, clock: Callable[[], float] = time.time):
        self._redis = client
        self._limit = limit
        self._clock = clock
        self._acquire = client.register_script(_ACQUIRE)

    @contextmanager
    def slot(self) -> Iterator[None]:
        slot_id = secrets.token_hex(8)
        args = [repr(self._clock()), self.STALE_S, self._limit, slot_id]
        if not int(self._acquire(keys=[self.KEY], args=args)):
            raise HashingBusy()
        try:
            yield
        finally:
            self._redis.zrem(self.KEY, slot_id)
