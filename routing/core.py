"""The routing core: waiting callers, handler presence and atomic assignment, all in Redis.

No Twilio, no database, nothing from the app: the caller of this class persists events and places
the offer calls. Every operation is one call of one Lua script (assembled from ``routing/lua/``),
so any number of RQ workers may call it concurrently: no caller is offered to two handlers (except
under ring-all, where the first accept wins) and no handler ever holds two callers. Every
operation is idempotent and safe out of order: it checks the state it expects, else does nothing.

Operations that free a handler take ``dispatch=True`` to run the assignment in the same atomic
step and return the offers it made (one round trip for "wrap-up ended: who is next?").

Redis layout under ``prefix`` (``hl:r:``); ids only, never a phone number:

- ``q:{lang}:{kind}:{priority}`` ZSET per caller attribute set: score ``enqueued_at - priority``,
  member ``{arrival seq:015d}:{caller_id}`` (equal scores: first come, first served), so its head
  is its longest waiter; ``queues`` SET names the queues; ``seq`` the arrival counter.
- ``c:{caller_id}`` HASH: state, language, kind, priority, enqueued_at, score, seq, the handlers
  offered to (``hs``) or connected (``h``); ``callers`` SET.
- ``h:{handler_id}`` HASH: profile, presence and reason, presence asked for during a call, last
  call end, calls and talk time today, consecutive misses, the caller offered or connected,
  the end of an extended wrap-up (``wu``);
  ``handlers`` SET.
- ``ix:{lang}:{skill}`` / ``fx:{lang}:{skill}`` ZSETs of AVAILABLE handlers by own / fallback
  language, scored ``level * 1e13 + the strategy's metric``; ``avail`` SET.
- ``offers`` ZSET handler → offered at (the pending offers); ``rr`` round-robin memory;
  ``meta`` the strategy (and chat capacities) the indexes are scored for and the stats day.

Conversations (channel "chat": SMS, WhatsApp, Telegram) wait beside the calls, in one global
order (priority, then age):

- ``q:{lang}:{kind}:{priority}:chat`` ZSETs as above, named in ``cqueues``; ``m:{id}`` HASH per
  conversation (same fields as a caller); ``chats`` SET.
- ``hc:{handler_id}`` SET of the handler's open conversations, ``ho:{handler_id}`` SET of those
  offered to them; together their load. ``coffers`` ZSET ``{handler}/{conversation}`` →
  offered at.
- ``cx:{lang}:{skill}`` / ``cf:{lang}:{skill}`` ZSETs of handlers who may be offered a
  conversation (available, load under ``chat_capacity``), scored ``level * 1e13 + load * 1e12
  + the strategy's metric``; ``cavail`` SET. A handler is in the call indexes (``avail``) only
  while their load is at most ``call_max_chats``.

A call is exclusive: a handler offered a call, on one or in its wrap-up is offered nothing else.
A handler with a conversation offer pending is offered no call until they accept or decline it
(or it expires): an offer never vanishes from under the handler's hand, and the global order
holds (a call that came later does not take the handler from a conversation offered earlier).
Conversation ids and call ids are separate namespaces (``m:`` and ``c:``).

One strategy per prefix: a core with another strategy re-scores the indexes on its first call.
The scripts build key names from the prefix (they declare no KEYS), so this needs a standalone
(or Sentinel) Redis, not Redis Cluster.
"""

from __future__ import annotations

import functools
import json
import math
import re
import secrets
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import redis

from routing.strategies import (
    CHANNELS,
    MAX_CHAT_CAPACITY,
    SETTABLE_PRESENCES,
    STRATEGIES,
    AcceptResult,
    ChatEnded,
    ChatLoad,
    Completed,
    DeclineResult,
    ExpiredChats,
    HandlerProfile,
    Offer,
    PresenceChange,
    QueueFull,
    RemovedCaller,
    Requeued,
    UnknownHandler,
    check_strategy,
)

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


def _check_id(value: str, what: str) -> str:
    if not isinstance(value, str) or not _ID.fullmatch(value) or _PHONE_LIKE.fullmatch(value):
        raise ValueError(f"{what} must be an opaque id (letters, digits, _.:@-), not personal data")
    return value


def _names(values: Iterable[str], what: str) -> str:
    values = tuple(dict.fromkeys(values))
    for value in values:
        if not isinstance(value, str) or not _NAME.fullmatch(value):
            raise ValueError(f"bad {what}: {value!r}")
    return ",".join(values)


def _num(value: float, what: str, limit: float = 1e10) -> str:
    value = float(value)
    if not math.isfinite(value) or abs(value) >= limit:
        raise ValueError(f"{what} must be finite and under {limit:g} (seconds)")
    return repr(value)


def _seq(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []  # cjson encodes an empty array as {}


def _queues(channel: str) -> str:
    if channel not in CHANNELS:
        raise ValueError(f"channel must be one of {CHANNELS}, not {channel!r}")
    return "queues" if channel == "voice" else "cqueues"


def _entries(channel: str) -> str:
    return "c:" if _queues(channel) == "queues" else "m:"


class RoutingCore:
    """The ACD state of one hotline in one Redis (see the module docstring for the layout).

    Times (``now``, ``enqueued_at``) are Unix seconds, passed in by the caller (workers' clocks,
    or a test's). Priorities are in seconds of wait: score = priority + seconds waited.
    """

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
        max_offers_per_dispatch: int = 50,
        chat_capacity: int = 3,
        call_max_chats: int | None = None,
    ) -> None:
        if not _PREFIX.fullmatch(prefix):
            raise ValueError("prefix: letters, digits and _.:{}- only")
        if call_max_chats is None:
            call_max_chats = chat_capacity
        for value, what in ((chat_capacity, "chat_capacity"), (call_max_chats, "call_max_chats")):
            if not 0 <= int(value) <= MAX_CHAT_CAPACITY:
                raise ValueError(f"{what} must be from 0 to {MAX_CHAT_CAPACITY}")
        self.redis = redis_client
        self.prefix = prefix
        self.strategy = check_strategy(strategy)
        self.max_queue = max_queue
        self.max_offers_per_dispatch = max_offers_per_dispatch
        self.chat_capacity = int(chat_capacity)
        self.call_max_chats = int(call_max_chats)
        fields = [
            prefix,
            self.strategy,
            _num(language_fallback_after_s, "language_fallback_after_s"),
            str(int(max_misses)),
            str(max(1, int(ring_all_max))),
            str(int(max_queue)),
            _num(stats_utc_offset_s, "stats_utc_offset_s"),
            str(self.chat_capacity),
            str(self.call_max_chats),
        ]
        self._header = " ".join(fields)
        self._scripts = {op: redis_client.register_script(src) for op, src in _sources().items()}

    def _run(
        self, op: str, now: float | None, *args: str, dispatch: int = 0, seed: int | None = None
    ) -> tuple[Any, tuple[Offer, ...]]:
        """Run one operation's script; ``dispatch`` > 0: then dispatch up to that many offers."""
        if seed is None:
            seed = secrets.randbits(31) if self.strategy == "random" else 0
        now_s = "-" if now is None else _num(now, "now")
        script = self._scripts[op]
        argv = (f"{self._header} {now_s} {int(seed)} {int(dispatch)}", *args)
        try:
            raw = self.redis.evalsha(script.sha, 0, *argv)
        except redis.exceptions.NoScriptError:  # a flushed or another server: load it again
            script.sha = self.redis.script_load(script.script)
            raw = self.redis.evalsha(script.sha, 0, *argv)
        result, offers = json.loads(raw)
        if not offers:
            return result, ()
        return result, tuple(
            Offer(cid, tuple(hids), bool(fallback), (now or 0.0) - float(enq), channel)
            for cid, hids, fallback, enq, channel in offers
        )

    def _then(self, dispatch: bool) -> int:
        return self.max_offers_per_dispatch if dispatch else 0

    # -- callers -----------------------------------------------------------------------------

    def enqueue(
        self, caller_id: str, *, language: str, kind: str, priority: float, enqueued_at: float
    ) -> int:
        """Queue a caller; returns its 1-based position (0 if it is already offered/connected).

        Idempotent: a caller the core already knows is left exactly as it is (its first
        attributes stay). Raises ``QueueFull`` when ``max_queue`` callers wait.
        """
        lang, kind_ = _names([language], "language"), _names([kind], "kind")
        prio, enq = _num(priority, "priority", 1e9), _num(enqueued_at, "enqueued_at")
        score = repr(float(enqueued_at) - float(priority))
        result, _ = self._run(
            "enqueue", enqueued_at, _check_id(caller_id, "caller_id"), lang, kind_, prio, enq,
            score, f"{lang}:{kind_}:{prio}",
        )  # fmt: skip
        if result.get("full"):
            raise QueueFull(f"{self.max_queue} callers are waiting")
        return int(result["position"])

    def requeue(
        self, caller_id: str, *, now: float | None = None, dispatch: bool = False
    ) -> Requeued:
        """An offer (or the bridge after an accept) failed: the caller waits again in its
        original place; every handler it held is released (cancel their calls)."""
        result, offers = self._run(
            "requeue", self._now(now), caller_id, dispatch=self._then(dispatch)
        )
        return Requeued(bool(result["requeued"]), tuple(_seq(result["released"])), offers)

    def restore_call(
        self,
        caller_id: str,
        handler_id: str,
        *,
        language: str,
        kind: str,
        priority: float,
        enqueued_at: float,
        now: float,
    ) -> bool:
        """After Redis lost its state: a call the database says is connected (or a call-back
        being placed) becomes the handler's current call again, so nobody offers them a second
        caller meanwhile. The handler must be known; a caller the core knows stays as it is."""
        lang, kind_ = _names([language], "language"), _names([kind], "kind")
        prio, enq = _num(priority, "priority", 1e9), _num(enqueued_at, "enqueued_at")
        result, _ = self._run(
            "restore_call", now, _check_id(caller_id, "caller_id"),
            _check_id(handler_id, "handler_id"), lang, kind_, prio, enq,
            repr(float(enqueued_at) - float(priority)), f"{lang}:{kind_}:{prio}",
        )  # fmt: skip
        return bool(result["restored"])

    def remove(
        self, caller_id: str, *, now: float | None = None, dispatch: bool = False
    ) -> RemovedCaller:
        """Abandon / leave / timeout of a waiting or offered caller (see ``RemovedCaller``)."""
        result, offers = self._run(
            "remove", self._now(now), caller_id, dispatch=self._then(dispatch)
        )
        handlers = tuple(_seq(result["handlers"]))
        return RemovedCaller(result["previous"] or None, handlers, bool(result["removed"]), offers)

    def caller_state(self, caller_id: str) -> str | None:
        """The caller's state: waiting, offered, connected, or None if the core does not know it."""
        state = self.redis.hget(f"{self.prefix}c:{caller_id}", "st")
        return state.decode() if isinstance(state, bytes) else state

    def waiting(self, channel: str = "voice") -> list[str]:
        """Waiting caller ids (``channel="chat"``: conversation ids) in dispatch order: score
        (priority + wait), then arrival."""
        result, _ = self._run("waiting", None, _queues(channel))
        entries = sorted((float(score), member) for member, score in _seq(result))
        return [member.split(":", 1)[1] for _, member in entries]

    def waiting_count(self, channel: str = "voice") -> int:
        """How many callers (or conversations) wait (not offered, not connected)."""
        result, _ = self._run("count", None, _queues(channel))
        return int(result["waiting"])

    def position(self, caller_id: str, channel: str = "voice") -> int | None:
        """1-based place among waiting callers (or conversations: a call's place counts calls
        only, a conversation's conversations only); None if not waiting."""
        result, _ = self._run("position", None, caller_id, _entries(channel))
        return int(result["position"]) or None

    def longest_wait(self, now: float, channel: str = "voice") -> float:
        """Seconds the longest-waiting caller (or conversation) has waited (0: none waits)."""
        result, _ = self._run("oldest", None, _queues(channel))
        return max(0.0, now - float(result["enq"])) if result["enq"] is not False else 0.0

    # -- handlers ----------------------------------------------------------------------------

    def upsert_handler(self, profile: HandlerProfile, *, now: float | None = None) -> None:
        """Create (offline) or update a handler's profile; an available one is re-indexed."""
        own = _names(profile.languages, "language")
        fallback = [lang for lang in profile.fallback_languages if lang not in profile.languages]
        if not 0 <= int(profile.level) <= 99 or not 0 <= int(profile.order) < 10**9:
            raise ValueError("level must be 0-99 and order 0 to 10**9")
        self._run(
            "upsert", self._now(now), _check_id(profile.handler_id, "handler_id"), own,
            _names(profile.skills, "skill"), _names(fallback, "language"),
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
        """Set offline / available / break / wrap_up (``reason``: free text for supervisors).

        While an offer rings, offline/break withdraw it (``withdrawn``; the caller keeps its
        place) and available is a no-op; while on a call, offline/break are deferred to the end
        of the wrap-up. Raises ``UnknownHandler``.
        """
        if presence not in SETTABLE_PRESENCES:
            raise ValueError(f"presence must be one of {SETTABLE_PRESENCES}, not {presence!r}")
        result, offers = self._run(
            "presence", now, handler_id, presence, (reason or "")[:200],
            dispatch=self._then(dispatch),
        )  # fmt: skip
        if result.get("unknown"):
            raise UnknownHandler(handler_id)
        return self._presence_change(result, offers)

    def presence(self, handler_id: str) -> tuple[str, str | None]:
        """(presence, reason or None); ("offline", None) for an unknown handler."""
        values = self.redis.hmget(f"{self.prefix}h:{handler_id}", "pr", "rsn")
        presence, reason = (v.decode() if isinstance(v, bytes) else v for v in values)
        return (presence or "offline", reason or None)

    def end_wrap_up(self, handler_id: str, now: float, *, dispatch: bool = False) -> PresenceChange:
        """wrap_up → available (or the presence asked for during the call); else nothing."""
        result, offers = self._run("end_wrap_up", now, handler_id, dispatch=self._then(dispatch))
        return self._presence_change(result, offers)

    def extend_wrap_up(self, handler_id: str, until: float) -> float | None:
        """More wrap-up: it lasts until ``until`` (Unix seconds) if that is later than its end
        so far, and ``end_wrap_up`` before then does nothing (whoever extends schedules another
        ``end_wrap_up`` at the new end). The end now in force; None unless in wrap-up."""
        result, _ = self._run(
            "extend_wrap_up", None, _check_id(handler_id, "handler_id"), _num(until, "until")
        )
        return float(result["until_s"]) if result["until_s"] else None

    def wrap_up_until(self, handler_id: str) -> float | None:
        """The end of an extended wrap-up (Unix seconds); None if it was not extended."""
        value = self.redis.hget(f"{self.prefix}h:{handler_id}", "wu")
        return float(value) if value else None

    # -- assignment --------------------------------------------------------------------------

    def dispatch(
        self, now: float, *, max_offers: int | None = None, seed: int | None = None
    ) -> list[Offer]:
        """Pair the best waiting callers with the best eligible available handlers (atomic)."""
        limit = self.max_offers_per_dispatch if max_offers is None else max_offers
        _, offers = self._run("dispatch", now, dispatch=max(0, limit), seed=seed)
        return list(offers)

    def accept(
        self, caller_id: str, handler_id: str, now: float, *, dispatch: bool = False
    ) -> AcceptResult:
        """First accept wins: caller connected, handler on_call, other ring-all handlers
        released; a late or stale accept returns ``won=False`` and changes nothing."""
        result, offers = self._run(
            "accept", now, caller_id, handler_id, dispatch=self._then(dispatch)
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
            dispatch=self._then(dispatch),
        )  # fmt: skip
        if not result["applied"]:
            return DeclineResult(False, offers=offers)
        return DeclineResult(True, result["handler"], result["caller"], offers)

    def expire_offers(
        self, now: float, *, older_than_s: float, dispatch: bool = False
    ) -> tuple[list[tuple[str, str]], tuple[Offer, ...]]:
        """Count offers pending longer than ``older_than_s`` as missed, so a lost no-answer
        callback cannot leave a handler "offered"; returns the (caller, handler) pairs."""
        result, offers = self._run(
            "expire", now, _num(older_than_s, "older_than_s"), dispatch=self._then(dispatch)
        )
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
        wrap_up (``wrap_up=False``: straight to available, or the presence asked for during the
        call). Falsy, nothing counted, unless that caller was connected to that handler."""
        result, offers = self._run(
            "complete", now, caller_id, handler_id, _num(talk_s, "talk_s"),
            "1" if wrap_up else "0", dispatch=self._then(dispatch),
        )  # fmt: skip
        return Completed(bool(result["done"]), result.get("presence"), offers)

    # -- conversations (SMS, WhatsApp, Telegram) ----------------------------------------------
    #
    # A conversation waits like a call (priority, language, kind; the same strategies, fallback
    # languages and global order), but is offered in the console, not by a ring: the dispatch
    # returns ``Offer(channel="chat")``; the handler accepts or declines; an offer not accepted
    # within the chat offer timeout is expired by ``expire_chat_offers`` (a miss). It never
    # times out or overflows in the queue. Ids are conversation ids (their own namespace).

    def enqueue_chat(
        self,
        conversation_id: str,
        *,
        language: str,
        kind: str,
        priority: float,
        enqueued_at: float,
        dispatch: bool = False,
    ) -> tuple[int, tuple[Offer, ...]]:
        """Queue a conversation: (its 1-based place among waiting conversations, or 0 if it
        is offered or open; the offers of the dispatch that follows with ``dispatch=True``).
        Idempotent: a conversation the core knows is left as it is. No ``max_queue``."""
        lang, kind_ = _names([language], "language"), _names([kind], "kind")
        prio, enq = _num(priority, "priority", 1e9), _num(enqueued_at, "enqueued_at")
        result, offers = self._run(
            "enqueue_chat", enqueued_at, _check_id(conversation_id, "conversation_id"), lang,
            kind_, prio, enq, repr(float(enqueued_at) - float(priority)),
            f"{lang}:{kind_}:{prio}:chat", dispatch=self._then(dispatch),
        )  # fmt: skip
        return int(result["position"]), offers

    def chat_state(self, conversation_id: str) -> str | None:
        """waiting, offered, connected (open, with a handler), or None if the core does not
        know it."""
        state = self.redis.hget(f"{self.prefix}m:{conversation_id}", "st")
        return state.decode() if isinstance(state, bytes) else state

    def chat_handler(self, conversation_id: str) -> str | None:
        """The handler holding an open conversation; None unless connected."""
        value = self.redis.hmget(f"{self.prefix}m:{conversation_id}", "st", "h")
        state, handler = (v.decode() if isinstance(v, bytes) else v for v in value)
        return handler if state == "connected" and handler else None

    def chat_load(self, handler_id: str) -> ChatLoad:
        """The handler's open and offered conversations (ids, sorted)."""
        result, _ = self._run("chat_load", None, handler_id)
        return ChatLoad(tuple(sorted(_seq(result["open"]))), tuple(sorted(_seq(result["offered"]))))

    def accept_chat(
        self, conversation_id: str, handler_id: str, now: float, *, dispatch: bool = False
    ) -> AcceptResult:
        """The handler accepts an offered conversation in the console: it is theirs (open)
        until ``end_chat``; other ring-all handlers' offers end (``released``). Idempotent: a
        repeat by the same handler wins again (nothing changes); a late or stale accept returns
        ``won=False`` and changes nothing."""
        result, offers = self._run(
            "accept_chat", now, conversation_id, handler_id, dispatch=self._then(dispatch)
        )
        waited = now - float(result["enq"]) if result.get("enq") else None
        return AcceptResult(bool(result["won"]), tuple(_seq(result["released"])), waited, offers)

    def decline_chat(
        self,
        conversation_id: str,
        handler_id: str,
        *,
        missed: bool = False,
        now: float,
        dispatch: bool = False,
    ) -> DeclineResult:
        """The handler declines an offered conversation (``missed``: it expired unanswered, a
        miss in a row as for calls; ``max_misses`` of them: a break, open conversations kept).
        The conversation waits again in its place unless offered to others. No such offer:
        ``applied`` False, nothing changes (so a repeat is harmless)."""
        result, offers = self._run(
            "decline_chat", now, conversation_id, handler_id, "1" if missed else "0",
            dispatch=self._then(dispatch),
        )  # fmt: skip
        if not result["applied"]:
            return DeclineResult(False, offers=offers)
        withdrawn = tuple(mid for mid, _ in _seq(result.get("withdrawn_chats")))
        return DeclineResult(True, result["handler"], result["caller"], offers, withdrawn)

    def expire_chat_offers(
        self, now: float, *, older_than_s: float, dispatch: bool = False
    ) -> ExpiredChats:
        """Conversation offers pending longer than ``older_than_s`` (ROUTING_CHAT_OFFER_TIMEOUT_S)
        count as missed and go back to the queue for someone else."""
        result, offers = self._run(
            "expire_chats", now, _num(older_than_s, "older_than_s"),
            dispatch=self._then(dispatch),
        )  # fmt: skip
        expired = _seq(result["expired"])
        return ExpiredChats(
            tuple((mid, hid) for mid, hid, *_ in expired),
            tuple(dict.fromkeys(hid for _, hid, presence, _ in expired if presence == "break")),
            tuple(mid for mid, _ in _seq(result["withdrawn_chats"])),
            offers,
        )

    def end_chat(
        self, conversation_id: str, handler_id: str, *, now: float, dispatch: bool = False
    ) -> ChatEnded:
        """The handler (or the app) closes an open conversation: it leaves the core and their
        load drops by one (no wrap-up). Falsy unless that handler held it (so a repeat is
        harmless)."""
        result, offers = self._run(
            "end_chat", now, conversation_id, handler_id, dispatch=self._then(dispatch)
        )
        return ChatEnded(bool(result["done"]), result.get("presence") or None, offers)

    def remove_chat(
        self, conversation_id: str, *, now: float | None = None, dispatch: bool = False
    ) -> RemovedCaller:
        """A waiting or offered conversation leaves the core (closed before a handler took it);
        ``handler_ids``: whose offers ended. An open one is not removed: ``end_chat``."""
        result, offers = self._run(
            "remove_chat", self._now(now), conversation_id, dispatch=self._then(dispatch)
        )
        handlers = tuple(_seq(result["handlers"]))
        return RemovedCaller(result["previous"] or None, handlers, bool(result["removed"]), offers)

    def requeue_chat(
        self, conversation_id: str, *, now: float | None = None, dispatch: bool = False
    ) -> Requeued:
        """An offered or open conversation waits again in its original place (a handler hands
        it back: transfer to whoever comes next, the end of a shift); ``released``: the
        handlers whose offer ended or who no longer hold it."""
        result, offers = self._run(
            "requeue_chat", self._now(now), conversation_id, dispatch=self._then(dispatch)
        )
        return Requeued(bool(result["requeued"]), tuple(_seq(result["released"])), offers)

    def restore_chat(
        self,
        conversation_id: str,
        handler_id: str,
        *,
        language: str,
        kind: str,
        priority: float,
        enqueued_at: float,
        now: float,
    ) -> bool:
        """After Redis lost its state: a conversation the database says a handler holds is
        theirs again (it counts towards their load whatever their presence). The handler must
        be known; a conversation the core knows stays as it is."""
        lang, kind_ = _names([language], "language"), _names([kind], "kind")
        prio, enq = _num(priority, "priority", 1e9), _num(enqueued_at, "enqueued_at")
        result, _ = self._run(
            "restore_chat", now, _check_id(conversation_id, "conversation_id"),
            _check_id(handler_id, "handler_id"), lang, kind_, prio, enq,
            repr(float(enqueued_at) - float(priority)), f"{lang}:{kind_}:{prio}:chat",
        )  # fmt: skip
        return bool(result["restored"])

    # -- whole state -------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Every routing key, decoded: ``callers``/``handlers``/``chats`` (their hashes),
        ``queues`` (members in order; a conversation queue's name ends ``:chat``), ``indexes``
        ([handler, score] pairs), ``offers``, ``chat_offers``, ``handler_chats`` (open and
        offered per handler), ``available``, ``chat_available``, ``meta``, ``counts`` of
        callers by state and handlers by presence, and ``chat_counts`` of chats by state."""
        result, _ = self._run("snapshot", None)
        snap = {key: (value or {}) for key, value in result.items()}
        snap["available"] = sorted(_seq(result["available"]))
        snap["chat_available"] = sorted(_seq(result["chat_available"]))
        snap["handler_chats"] = {
            hid: {"open": sorted(_seq(load["open"])), "offered": sorted(_seq(load["offered"]))}
            for hid, load in snap["handler_chats"].items()
        }
        snap["queues"] = {q: _seq(members) for q, members in snap["queues"].items()}
        snap["indexes"] = {sfx: _seq(entries) for sfx, entries in snap["indexes"].items()}
        callers: dict[str, int] = {}
        for caller in snap["callers"].values():
            callers[caller["st"]] = callers.get(caller["st"], 0) + 1
        handlers: dict[str, int] = {}
        for handler in snap["handlers"].values():
            handlers[handler["pr"]] = handlers.get(handler["pr"], 0) + 1
        chats: dict[str, int] = {}
        for chat in snap["chats"].values():
            chats[chat["st"]] = chats.get(chat["st"], 0) + 1
        snap["counts"] = {"callers": callers, "handlers": handlers}
        snap["chat_counts"] = chats
        return snap

    def reset(self) -> None:
        """Drop every routing key under the prefix (the reconciler then rebuilds)."""
        pattern = re.sub(r"([*?\[\]\\])", r"\\\1", self.prefix) + "*"
        batch: list[Any] = []
        for key in self.redis.scan_iter(match=pattern, count=1000):
            batch.append(key)
            if len(batch) >= 500:
                self.redis.unlink(*batch)
                batch.clear()
        if batch:
            self.redis.unlink(*batch)

    @staticmethod
    def _now(now: float | None) -> float:
        return time.time() if now is None else now

    @staticmethod
    def _presence_change(result: dict[str, Any], offers: tuple[Offer, ...]) -> PresenceChange:
        return PresenceChange(
            result["previous"] or None,
            result["current"] or None,
            result["withdrawn"] or None,
            bool(result["deferred"]),
            offers,
            tuple(mid for mid, _ in _seq(result.get("withdrawn_chats"))),
        )
