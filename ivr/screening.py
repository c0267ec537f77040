"""Screening incoming calls against floods, before the IVR answers them.

``screen_incoming`` runs first in ``/voice/incoming``:

1. **The blocklist** (``inquiries.blocklist``, kept by supervisors in the console): one indexed
   read on a connection of its own that takes no write lock on SQLite.
2. **The rate limits**, in Redis: at most ``CALL_LIMIT_PER_NUMBER`` calls admitted from one
   number per ``CALL_LIMIT_WINDOW_S`` (a sliding window), keyed by the number's keyed hash
   (``lookup_hash``, purpose ``call-rate``), never the number. A withheld number (the carrier's
   placeholders, ``anonymous``, anything ``dataprotection.caller_address`` does not accept)
   names nobody: counting each such call on its own would let a flood of withheld calls
   through, and counting them together under the per-number limit would let six such calls
   lock every withheld caller out. So all withheld calls share one, more generous, window:
   ``CALL_LIMIT_WITHHELD``.

A refused call gets ``<Reject reason="busy">`` as its only verb: the carrier does not answer it
(nothing is billed) and the caller hears a busy tone, whichever rule refused them. Nothing of it
reaches the database: no caller, case or call (and its status callback, ``busy``, writes
nothing either: see ``ivr.views.call_status``). Redis counts refusals per reason and UTC day
(``hotline:screen:rejected:{reason}:{yyyymmdd}``, kept 8 days) for the console's blocklist page;
the log has a line at the 1st, 10th, 100th… refusal of a reason in a day (never a number).

Each window is a sorted set of the CallSids it admitted, scored by time: a carrier retry of an
admitted call (the same CallSid) is admitted again without counting twice, and a refused call
is not counted, so a flood does not extend its own ban. With Redis down the rate limits are not
applied (a genuine caller is never refused because Redis is); the blocklist still is.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass

import redis
from twilio.twiml.voice_response import VoiceResponse

from dataprotection import caller_address
from db import database, read_only_connection, utcnow
from inquiries import blocklist
from services import services
from webhooks import form_value

log = logging.getLogger(__name__)

KEY_PREFIX = "hotline:screen:"
WITHHELD_KEY = KEY_PREFIX + "calls:withheld"
RATE_HASH_PURPOSE = "call-rate"
#: Why a call was refused (the counters' names).
BLOCKED, OVER_RATE, WITHHELD_OVER_RATE = "blocked", "rate", "withheld"
REASONS = (BLOCKED, OVER_RATE, WITHHELD_OVER_RATE)
COUNTER_TTL_S = 8 * 24 * 3600

# KEYS[1]: a window (sorted set: admitted CallSid -> time). ARGV: now, window s, limit, CallSid.
# 1: admitted (and counted, unless it was already), 0: over the limit (not counted).
_ADMIT = """
local now, window, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZSCORE', KEYS[1], ARGV[4]) then return 1 end
if redis.call('ZCARD', KEYS[1]) >= limit then return 0 end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('EXPIRE', KEYS[1], math.ceil(window) + 1)
return 1
"""


def posted_address() -> str | None:
    """This webhook's caller: their number (or client name) in canonical form, None if withheld."""
    return caller_address(form_value("From", 64))


def rate_key(address: str | None) -> str:
    """The Redis window of a caller's number (by keyed hash), or the shared one if withheld."""
    if address is None:
        return WITHHELD_KEY
    hashed = services().protector.lookup_hash(address, purpose=RATE_HASH_PURPOSE)
    return f"{KEY_PREFIX}calls:{hashed[:32]}"


def reject() -> VoiceResponse:
    """``<Reject reason="busy">`` alone: not answered, not billed, a busy tone."""
    response = VoiceResponse()
    response.reject(reason="busy")
    return response


def is_blocked(address: str | None) -> bool:
    """Whether the number is on the blocklist now (a read that takes no write lock)."""
    if address is None:
        return False
    hashed = blocklist.number_hash(services().protector, address)
    with read_only_connection(database().engine) as conn:
        return blocklist.is_blocked(conn, hashed)


def admit(address: str | None, call_sid: str, now: float | None = None) -> bool:
    """Count the call against its window (``address`` None: the withheld callers' window);
    False if that window is full. True without Redis."""
    settings = services().settings
    limit = settings.call_limit_withheld if address is None else settings.call_limit_per_number
    if limit <= 0:
        return True
    client = services().redis
    try:
        admitted = client.register_script(_ADMIT)(
            keys=[rate_key(address)],
            args=[repr(time.time() if now is None else now), settings.call_limit_window_s, limit,
                  call_sid],
        )  # fmt: skip
    except redis.RedisError as exc:
        log.warning("call rate limits not applied: Redis failed (%s)", type(exc).__name__)
        return True
    return bool(admitted)


def count_refusal(reason: str, now: dt.datetime | None = None) -> int | None:
    """One more refused call today for ``reason`` (nothing else is kept of it): today's count,
    or None if Redis does not answer."""
    key = f"{KEY_PREFIX}rejected:{reason}:{(now or utcnow()):%Y%m%d}"
    try:
        pipe = services().redis.pipeline(transaction=False)
        pipe.incr(key)
        pipe.expire(key, COUNTER_TTL_S)
        counted, _ = pipe.execute()
    except redis.RedisError:
        return None
    return int(counted)


def refusals_today(now: dt.datetime | None = None) -> dict[str, int] | None:
    """Calls refused today (UTC) by reason; None if Redis does not answer."""
    day = f"{(now or utcnow()):%Y%m%d}"
    try:
        values = services().redis.mget([f"{KEY_PREFIX}rejected:{r}:{day}" for r in REASONS])
    except redis.RedisError:
        return None
    return {reason: int(value or 0) for reason, value in zip(REASONS, values, strict=True)}


@dataclass(frozen=True)
class Refusal:
    reason: str
    response: VoiceResponse


def screen(address: str | None, call_sid: str | None) -> Refusal | None:
    """Why the call must be refused (see the module), or None to let the IVR answer it."""
    if is_blocked(address):
        return Refusal(BLOCKED, reject())
    if call_sid is not None and not admit(address, call_sid):
        return Refusal(WITHHELD_OVER_RATE if address is None else OVER_RATE, reject())
    return None


def screen_incoming(call_sid: str | None) -> VoiceResponse | None:
    """``<Reject>`` for a call that must be refused (counted per reason), else None."""
    refusal = screen(posted_address(), call_sid)
    if refusal is None:
        return None
    today = count_refusal(refusal.reason)
    if today is None or _is_power_of_ten(today):  # a flood logs a handful of lines, not one a call
        log.info("refused an incoming call (%s); today: %s", refusal.reason, today or "?")
    return refusal.response


def _is_power_of_ten(number: int) -> bool:
    return number > 0 and str(number).rstrip("0") == "1"
