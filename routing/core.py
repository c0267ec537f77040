"""The routing core: waiting callers, handler presence and atomic assignment, all in Redis.

No Twilio, no database: the caller of this class persists events and places the offer calls.
Every operation is one call of one Lua script (``routing/lua/*.lua``, registered once), so any
number of RQ workers may call it concurrently: no caller is offered to two handlers (except under
ring-all, where the first accept wins) and no handler ever holds two callers. Every operation is
idempotent and safe out of order: it checks the state it expects and otherwise does nothing.

Operations that free a handler take ``dispatch=True`` to run the assignment in the same atomic
step and return the offers it made (one round trip for "wrap-up ended, who is next?").

Redis layout (``prefix`` = ``hl:r:`` by default; ids only, never a phone number):

- ``q:{lang}:{kind}:{priority}`` ZSET, one per caller attribute set: score ``enqueued_at -
  priority``, member ``{arrival seq:015d}:{caller_id}`` (equal scores: first come first served);
  ``queues`` SET names the non-empty ones; ``seq`` the arrival counter.
- ``c:{caller_id}`` HASH: state, language, kind, priority, enqueued_at, the handlers offered to
  or connected; ``callers`` / ``offered`` / ``connected`` SETs.
- ``h:{handler_id}`` HASH: profile, presence, reason, today's calls and talk time, last call end,
  consecutive misses, the caller offered or connected; ``handlers`` SET; ``levels`` ZSET.
- ``ix:{lang}:{skill}:{level}`` / ``fx:…`` ZSETs of AVAILABLE handlers (own / fallback
  languages) scored by the strategy's metric; ``ixn`` HASH of their sizes; ``avail`` SET.
- ``offers`` ZSET handler → offered at (pending offers); ``rr`` round-robin memory; ``meta``
  strategy and stats day.
"""

from __future__ import annotations

import functools
import json
import math
import re
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from routing.strategies import SETTABLE_PRESENCES, STRATEGIES, check_strategy

_LUA = Path(__file__).with_name("lua")
_ID = re.compile(r"[A-Za-z0-9_.:@-]{1,128}")
_NAME = re.compile(r"[A-Za-z0-9_-]{1,32}")
_PREFIX = re.compile(r"[A-Za-z0-9_.:{}-]{1,64}")
_PHONE_LIKE = re.compile(r"\+?[0-9 ()-]{7,}")


@functools.cache
def _sources() -> dict[str, str]:
    """One script per operation: state.lua + dispatch.lua + its chunk of ops.lua + the entry."""
    common = (_LUA / "state.lua").read_text() + "\n" + (_LUA / "dispatch.lua").read_text()
    chunks = re.split(r"^--@(op \w+|entry)\n", (_LUA / "ops.lua").read_text(), flags=re.M)
    named = dict(zip(chunks[1::2], chunks[2::2], strict=True))
    entry = named.pop("entry")
    return {name[3:]: f"{common}\n{body}\n{entry}" for name, body in named.items()}


class QueueFull(Exception):
    """``max_queue`` callers already wait: send this one to the overflow (message box)."""


class UnknownHandler(KeyError):
    """No profile for this handler id: ``upsert_handler`` it first."""


@dataclass(frozen=True)
class HandlerProfile:
    """Who a handler is for routing: ``level`` lower is offered first, ``order`` for linear and
    round-robin; ``fallback_languages`` are taken only from callers who waited long enough."""

    handler_id: str
    languages: tuple[str, ...]
    skills: tuple[str, ...]  # inquiry kinds: surrender, family, pow_info, other
    level: int = 1
    order: int = 0
    fallback_languages: tuple[str, ...] = ()


@dataclass(frozen=True)
class Offer:
    """Place offer calls for ``caller_id`` to ``handler_ids`` (several only under ring-all)."""

    caller_id: str
    handler_ids: tuple[str, ...]
    language_fallback: bool
    waited_s: float


@dataclass(frozen=True)
class AcceptResult:
    """``won``: this handler has the caller. ``released``: cancel their offer calls."""

    won: bool
    released: tuple[str, ...] = ()
    waited_s: float | None = None
    offers: tuple[Offer, ...] = ()


@dataclass(frozen=True)
class DeclineResult:
    """``applied`` False: no such pending offer (nothing changed)."""

    applied: bool
    handler_presence: str | None = None  # "available", or "break" after max_misses
    caller_state: str | None = None  # "waiting" again, or still "offered" to others
    offers: tuple[Offer, ...] = ()


@dataclass(frozen=True)
class RemovedCaller:
    """``previous`` state; ``handler_ids``: cancel their offer calls (they are available again).

    A connected caller is not removed (``removed`` False, ``handler_ids`` = the handler on the
    call): end that call with ``complete``.
    """

    previous: str | None
    handler_ids: tuple[str, ...] = ()
    removed: bool = False
    offers: tuple[Offer, ...] = ()


@dataclass(frozen=True)
class Requeued:
    """Truthy when the caller waits again; ``released``: handlers whose offer calls to cancel."""

    requeued: bool
    released: tuple[str, ...] = ()
    offers: tuple[Offer, ...] = ()

    def __bool__(self) -> bool:
        return self.requeued


@dataclass(frozen=True)
class Completed:
    """Truthy when the call was counted; ``presence``: the handler's presence now."""

    done: bool
    presence: str | None = None
    offers: tuple[Offer, ...] = ()

    def __bool__(self) -> bool:
        return self.done


@dataclass(frozen=True)
class PresenceChange:
    """``withdrawn``: the caller whose offer to this handler was withdrawn (cancel that call).
    ``deferred``: the handler is on a call; offline/break applies when their wrap-up ends."""

    previous: str | None
    current: str | None
    withdrawn: str | None = None
    deferred: bool = False
    offers: tuple[Offer, ...] = ()


def _check_id(value: str, what: str) -> str:
    if not isinstance(value, str) or not _ID.fullmatch(value) or _PHONE_LIKE.fullmatch(value):
        raise ValueError(f"{what} must be an opaque id (letters, digits, _.:@-), not {what} data")
    return value


def _check_names(values: Iterable[str], what: str) -> str:
    values = tuple(dict.fromkeys(values))
    for value in values:
        if not isinstance(value, str) or not _NAME.fullmatch(value):
            raise ValueError(f"bad {what}: {value!r}")
    return ",".join(values)


def _num(value: float, what: str) -> str:
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{what} must be finite")
    return repr(value)


def _seq(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []  # cjson encodes an empty array as {}


class RoutingCore:
    """The ACD state of one hotline in one Redis (see the module docstring for the layout)."""

    STRATEGIES = STRATEGIES

    def __init__(
        self,
        redis_client: redis.Redis,
        *,
        prefix: str = "hl:r:",
        strategy: str = "longest-idle",
        language_fallback_after_s: float = 60.0,
        max_misses: int = 2,
        ring_all_max: int = 10,
        max_queue: int = 500,
        stats_utc_offset_s: float = 0.0,
    ) -> None:
        self.redis = redis_client
        self.prefix = prefix
        self.strategy = check_strategy(strategy)
        self.max_queue = max_queue
        self._header = " ".join(
            [
                prefix,
                self.strategy,
                _num(language_fallback_after_s, "language_fallback_after_s"),
                str(int(max_misses)),
                str(max(1, int(ring_all_max))),
                str(int(max_queue)),
                _num(stats_utc_offset_s, "stats_utc_offset_s"),
            ]
        )
        if not _PREFIX.fullmatch(prefix):
            raise ValueError("prefix: letters, digits and _.:{}- only")
        self._scripts = {
            op: redis_client.register_script(source) for op, source in _sources().items()
        }

    # -- plumbing ----------------------------------------------------------------------------

    def _run(
        self,
        op: str,
        now: float | None,
        *args: str,
        max_offers: int = 0,
        seed: int | None = None,
    ) -> tuple[Any, tuple[Offer, ...]]:
        if seed is None:
            seed = secrets.randbits(31) if self.strategy == "random" else 0
        now_s = "-" if now is None else _num(now, "now")
        script = self._scripts[op]
        argv = (f"{self._header} {now_s} {int(seed)} {int(max_offers)}", *args)
        try:
            raw = self.redis.evalsha(script.sha, 0, *argv)
        except redis.exceptions.NoScriptError:  # a flushed or different server: load it again
            script.sha = self.redis.script_load(script.script)
            raw = self.redis.evalsha(script.sha, 0, *argv)
        result, offers = json.loads(raw)
        if not offers:
            return result, ()
        return result, tuple(
            Offer(cid, tuple(hids), bool(fallback), (now or 0.0) - float(enq))
            for cid, hids, fallback, enq in offers
        )

    def _max_offers(self, dispatch: bool) -> int:
        return 50 if dispatch else 0

    # -- callers -----------------------------------------------------------------------------

    def enqueue(
        self, caller_id: str, *, language: str, kind: str, priority: float, enqueued_at: float
    ) -> int:
        """Queue a caller; returns its 1-based position (0 if already offered or connected).

        ``priority`` is in seconds of wait (score = priority + seconds waited). Idempotent: a
        caller the core already knows is left exactly as it is. Raises ``QueueFull``.
        """
        _check_id(caller_id, "caller_id")
        lang, kind_ = _check_names([language], "language"), _check_names([kind], "kind")
        prio = _num(priority, "priority")
        enq = _num(enqueued_at, "enqueued_at")
        score = _num(float(enqueued_at) - float(priority), "score")
        result, _ = self._run(
            "enqueue", enqueued_at, caller_id, lang, kind_, prio, enq, score,
            f"{lang}:{kind_}:{prio}",
        )  # fmt: skip
        if result.get("full"):
            raise QueueFull(f"{self.max_queue} callers are waiting")
        return int(result["position"])

    def requeue(self, caller_id: str, *, now: float | None = None, dispatch: bool = False
                ) -> Requeued:
        """An offer (or the bridge after an accept) failed: the caller waits again in its
        original place; every handler it held is released (cancel their calls)."""
        result, offers = self._run(
            "requeue", self._now(now), _check_id(caller_id, "caller_id"),
            max_offers=self._max_offers(dispatch),
        )  # fmt: skip
        return Requeued(bool(result["requeued"]), tuple(_seq(result["released"])), offers)

    def remove(self, caller_id: str, *, now: float | None = None, dispatch: bool = False
               ) -> RemovedCaller:
        """Abandon / leave / timeout of a caller who is waiting or being offered."""
        result, offers = self._run(
            "remove", self._now(now), _check_id(caller_id, "caller_id"),
            max_offers=self._max_offers(dispatch),
        )  # fmt: skip
        return RemovedCaller(
            result["previous"] or None,
            tuple(_seq(result["handlers"])),
            bool(result["removed"]),
            offers,
        )

    def caller_state(self, caller_id: str) -> str | None:
        """"waiting", "offered", "connected", or None for a caller the core does not know."""
        state = self.redis.hget(self._key("c:", caller_id), "st")
        return state.decode() if state else None

    def waiting(self) -> list[str]:
        """Waiting caller ids in dispatch order: score (priority + wait), then arrival."""
        result, _ = self._run("waiting", None)
        entries = sorted((float(score), member) for member, score in _seq(result))
        return [member.split(":", 1)[1] for _, member in entries]

    def position(self, caller_id: str) -> int | None:
        """1-based place among waiting callers; None if not waiting."""
        result, _ = self._run("position", None, caller_id)
        return int(result["position"]) or None

    def longest_wait(self, now: float) -> float:
        """Seconds the longest-waiting caller has waited (0 with nobody waiting)."""
        result, _ = self._run("oldest", None)
        return max(0.0, now - float(result["enq"])) if result["enq"] is not False else 0.0

    # -- handlers ----------------------------------------------------------------------------

    def upsert_handler(self, profile: HandlerProfile, *, now: float | None = None) -> None:
        """Create or update a handler's profile (a new one starts offline); re-indexes them."""
        languages = _check_names(profile.languages, "language")
        fallback = [lang for lang in profile.fallback_languages if lang not in profile.languages]
        self._run(
            "upsert", self._now(now), _check_id(profile.handler_id, "handler_id"), languages,
            _check_names(profile.skills, "skill"), _check_names(fallback, "language"),
            str(int(profile.level)), str(int(profile.order)),
        )  # fmt: skip

    def set_presence(
        self,
        handler_id: str,
        presence: str,
        *,
        reason: str | None = None,
        now: float,
        dispatch: bool = False,
    ) -> PresenceChange:
        """Set offline / available / break / wrap_up.

        While an offer rings, offline/break withdraw it (``withdrawn``; the caller keeps its
        place) and available is a no-op; while on a call, offline/break are deferred to the end
        of the wrap-up. Raises ``UnknownHandler``.
        """
        if presence not in SETTABLE_PRESENCES:
            raise ValueError(f"presence must be one of {SETTABLE_PRESENCES}, not {presence!r}")
        result, offers = self._run(
            "presence", now, _check_id(handler_id, "handler_id"), presence, reason or "",
            max_offers=self._max_offers(dispatch),
        )  # fmt: skip
        if result.get("unknown"):
            raise UnknownHandler(handler_id)
        return self._presence_change(result, offers)

    def presence(self, handler_id: str) -> tuple[str, str | None]:
        """(presence, reason); ("offline", None) for an unknown handler."""
        presence, reason = self.redis.hmget(self._key("h:", handler_id), "pr", "rsn")
        if presence is None:
            return ("offline", None)
        return (presence.decode(), reason.decode() if reason else None)

    def end_wrap_up(self, handler_id: str, now: float, *, dispatch: bool = False
                    ) -> PresenceChange:
        """wrap_up → available (or the presence deferred during the call); else nothing."""
        result, offers = self._run(
            "end_wrap_up", now, _check_id(handler_id, "handler_id"),
            max_offers=self._max_offers(dispatch),
        )  # fmt: skip
        return self._presence_change(result, offers)

    # -- assignment --------------------------------------------------------------------------

    def dispatch(self, now: float, *, max_offers: int = 50, seed: int | None = None
                 ) -> list[Offer]:
        """Pair the best waiting callers with the best eligible available handlers (atomic)."""
        _, offers = self._run("dispatch", now, max_offers=max_offers, seed=seed)
        return list(offers)

    def accept(self, caller_id: str, handler_id: str, now: float, *, dispatch: bool = False
               ) -> AcceptResult:
        """First accept wins: caller connected, handler on_call, other ring-all handlers
        released; a late or stale accept returns ``won=False`` and changes nothing."""
        result, offers = self._run(
            "accept", now, caller_id, handler_id, max_offers=self._max_offers(dispatch)
        )
        waited = now - float(result["enq"]) if result.get("enq") else None
        return AcceptResult(bool(result["won"]), tuple(_seq(result["released"])), waited, offers)

    def decline(
        self,
        caller_id: str,
        handler_id: str,
        *,
        missed: bool,
        now: float,
        dispatch: bool = False,
    ) -> DeclineResult:
        """The handler missed (no answer) or rejected the offer: they are released (to break
        after ``max_misses`` misses in a row); the caller waits again in its place unless
        another ring-all offer is still pending. No such offer: nothing happens."""
        result, offers = self._run(
            "decline", now, caller_id, handler_id, "1" if missed else "0",
            max_offers=self._max_offers(dispatch),
        )  # fmt: skip
        if not result["applied"]:
            return DeclineResult(False, offers=offers)
        return DeclineResult(True, result["handler"], result["caller"], offers)

    def expire_offers(self, now: float, *, older_than_s: float, dispatch: bool = False
                      ) -> tuple[list[tuple[str, str]], tuple[Offer, ...]]:
        """Count offers pending longer than ``older_than_s`` as missed (a lost no-answer
        callback must not leave a handler "offered"); returns (caller, handler) pairs."""
        result, offers = self._run(
            "expire", now, _num(older_than_s, "older_than_s"),
            max_offers=self._max_offers(dispatch),
        )  # fmt: skip
        return [(cid, hid) for cid, hid, *_ in _seq(result)], offers

    def complete(
        self,
        caller_id: str,
        handler_id: str,
        *,
        talk_s: float,
        now: float,
        wrap_up: bool = True,
        dispatch: bool = False,
    ) -> Completed:
        """The call ended: today's calls and talk time counted, the caller gone, the handler to
        wrap_up (``wrap_up=False``: straight to available, or the presence deferred during the
        call). Nothing happens (falsy result) unless that caller was connected to that handler,
        so a repeated complete counts nothing twice."""
        result, offers = self._run(
            "complete", now, caller_id, handler_id, _num(talk_s, "talk_s"),
            "1" if wrap_up else "0", max_offers=self._max_offers(dispatch),
        )  # fmt: skip
        return Completed(bool(result["done"]), result.get("presence"), offers)

    # -- whole state -------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Every routing key decoded (for the reconciler, the supervisor view and tests)."""
        result, _ = self._run("snapshot", None)
        snap = {key: (value or {}) for key, value in result.items()}
        snap["available"] = sorted(_seq(result["available"]))
        snap["queues"] = {q: _seq(members) for q, members in snap["queues"].items()}
        snap["indexes"] = {sfx: _seq(entries) for sfx, entries in snap["indexes"].items()}
        snap["counts"] = self._counts(snap)
        return snap

    def reset(self) -> None:
        """Drop every routing key under the prefix (the reconciler then rebuilds)."""
        batch: list[bytes] = []
        for key in self.redis.scan_iter(match=self._glob(), count=1000):
            batch.append(key)
            if len(batch) >= 500:
                self.redis.unlink(*batch)
                batch.clear()
        if batch:
            self.redis.unlink(*batch)

    # -- helpers -----------------------------------------------------------------------------

    def _key(self, kind: str, ident: str) -> str:
        return f"{self.prefix}{kind}{ident}"

    def _glob(self) -> str:
        return re.sub(r"([*?\[\]\\])", r"\\\1", self.prefix) + "*"

    @staticmethod
    def _now(now: float | None) -> float:
        return time.time() if now is None else now

    @staticmethod
    def _presence_change(result: dict[str, Any], offers: Sequence[Offer]) -> PresenceChange:
        return PresenceChange(
            result["previous"] or None,
            result["current"] or None,
            result["withdrawn"] or None,
            bool(result["deferred"]),
            tuple(offers),
        )

    @staticmethod
    def _counts(snap: dict[str, Any]) -> dict[str, Any]:
        states: dict[str, int] = {}
        for caller in snap["callers"].values():
            states[caller["st"]] = states.get(caller["st"], 0) + 1
        presences: dict[str, int] = {}
        for handler in snap["handlers"].values():
            presences[handler["pr"]] = presences.get(handler["pr"], 0) + 1
        return {"callers": states, "handlers": presences}
