"""Tests of the routing core: shared helpers to staff a core and to check its invariants."""

from __future__ import annotations

from typing import Any

from routing.core import HandlerProfile, RoutingCore

ALL_KINDS = ("surrender", "family", "pow_info", "other")
LEVEL = 1e13  # the index score's level unit (routing/lua/state.lua)


def add_handler(
    core: RoutingCore,
    handler_id: str,
    *,
    languages: tuple[str, ...] = ("ru",),
    skills: tuple[str, ...] = ALL_KINDS,
    level: int = 1,
    order: int = 0,
    fallback: tuple[str, ...] = (),
    available: bool = True,
    now: float = 0.0,
) -> None:
    """Upsert a handler and (by default) put them on duty at ``now``."""
    core.upsert_handler(
        HandlerProfile(handler_id, languages, skills, level, order, fallback), now=now
    )
    if available:
        core.set_presence(handler_id, "available", now=now)


def join(
    core: RoutingCore,
    caller_id: str,
    at: float,
    *,
    language: str = "ru",
    kind: str = "other",
    priority: float = 0,
) -> int:
    return core.enqueue(caller_id, language=language, kind=kind, priority=priority, enqueued_at=at)


def serve(core: RoutingCore, caller_id: str, handler_id: str, *, now: float, talk_s: float = 60.0):
    """Accept, complete and end the wrap-up of an offered call."""
    assert core.accept(caller_id, handler_id, now).won
    assert core.complete(caller_id, handler_id, talk_s=talk_s, now=now + talk_s)
    core.end_wrap_up(handler_id, now + talk_s)


def index_keys(handler: dict[str, str]) -> set[str]:
    skills = [s for s in handler["skills"].split(",") if s]
    own = {f"ix:{lang}:{s}" for lang in handler["langs"].split(",") if lang for s in skills}
    fallback = {f"fx:{lang}:{s}" for lang in handler["fbl"].split(",") if lang for s in skills}
    return own | fallback


def check_invariants(core: RoutingCore) -> dict[str, Any]:
    """Assert every structural invariant of the routing state; returns the snapshot."""
    snap = core.snapshot()
    callers, handlers = snap["callers"], snap["handlers"]

    queued: dict[str, tuple[str, str]] = {}
    for queue, members in snap["queues"].items():
        for member in members:
            seq, cid = member.split(":", 1)
            assert cid not in queued, f"{cid} queued twice"
            queued[cid] = (queue, seq)
    assert set(queued) <= set(callers), "a queue holds a caller the core does not know"

    for cid, caller in callers.items():
        state = caller["st"]
        assert state in ("waiting", "offered", "connected"), (cid, state)
        if state == "waiting":
            assert queued.get(cid) == (caller["q"], caller["seq"]), f"{cid} waits off its queue"
            assert caller["hs"] == "" and caller["h"] == ""
            continue
        assert cid not in queued, f"{cid} is {state} and waiting"
        if state == "offered":
            offered_to = caller["hs"].split(",")
            assert offered_to and len(set(offered_to)) == len(offered_to), (cid, offered_to)
            for hid in offered_to:
                assert handlers[hid]["pr"] == "offered" and handlers[hid]["c"] == cid, (cid, hid)
        else:
            hid = caller["h"]
            assert handlers[hid]["pr"] == "on_call" and handlers[hid]["c"] == cid, (cid, hid)

    for hid, handler in handlers.items():
        if handler["pr"] in ("offered", "on_call"):
            caller = callers.get(handler["c"])
            assert caller is not None, f"{hid} holds a caller that is gone"
            if handler["pr"] == "offered":
                assert caller["st"] == "offered" and hid in caller["hs"].split(","), hid
            else:
                assert caller["st"] == "connected" and caller["h"] == hid, hid
        else:
            assert handler["c"] == "", f"{hid} is {handler['pr']} but holds {handler['c']}"

    offered = {hid for hid, h in handlers.items() if h["pr"] == "offered"}
    assert offered == set(snap["offers"]), "offered handlers != pending offers (stuck reserved)"
    available = {hid for hid, h in handlers.items() if h["pr"] == "available"}
    assert available == set(snap["available"])

    redis = core.redis
    for pattern in ("ix:*", "fx:*"):
        for key in redis.scan_iter(match=core.prefix + pattern):
            sfx = key.decode()[len(core.prefix) :]
            for hid, score in redis.zrange(key, 0, -1, withscores=True):
                hid = hid.decode()
                assert hid in available, f"{hid} ({handlers[hid]['pr']}) left in {sfx}"
                assert sfx in index_keys(handlers[hid]), f"{hid} in a stale index {sfx}"
                assert int(score // LEVEL) == int(handlers[hid]["lvl"]), (hid, score)
    for hid in available:
        for sfx in index_keys(handlers[hid]):
            assert redis.zscore(core.prefix + sfx, hid) is not None, f"{hid} missing from {sfx}"

    waiting = core.waiting()
    order = [(float(callers[c]["sc"]), callers[c]["seq"]) for c in waiting]
    assert order == sorted(order), "waiting() out of score/arrival order"
    assert set(waiting) == {c for c, v in callers.items() if v["st"] == "waiting"}
    assert core.waiting_count() == len(waiting)
    for place, cid in enumerate(waiting[:5], start=1):
        assert core.position(cid) == place

    counts = snap["counts"]
    assert sum(counts["callers"].values()) == len(callers)
    assert counts["callers"].get("waiting", 0) == len(waiting)
    assert counts["callers"].get("connected", 0) == counts["handlers"].get("on_call", 0)
    assert sum(counts["handlers"].values()) == len(handlers)
    return snap
