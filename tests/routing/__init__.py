"""Tests of the routing core: shared helpers to staff a core and to check its invariants."""

from __future__ import annotations

from typing import Any

from routing.core import HandlerProfile, RoutingCore

ALL_KINDS = ("surrender", "family", "pow_info", "other")
LEVEL = 1e13  # the index score's level unit (routing/lua/state.lua)
LOAD = 1e12  # a conversation index score's load unit


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


def chat_index_keys(handler: dict[str, str]) -> set[str]:
    """The conversation indexes (``cx:``/``cf:``) matching the call indexes (``ix:``/``fx:``)."""
    return {("cx" if key.startswith("ix:") else "cf") + key[2:] for key in index_keys(handler)}


def check_chats(core: RoutingCore, snap: dict[str, Any], queued: dict[str, tuple[str, str]]):
    """The conversations' invariants: each is exactly where its state says, every handler's
    load matches, offers only to handlers on duty and within capacity, no call holder offered
    one."""
    chats, handlers, held = snap["chats"], snap["handlers"], snap["handler_chats"]
    assert set(queued) <= set(chats), "a conversation queue holds one the core does not know"
    pending = set()
    for mid, chat in chats.items():
        state = chat["st"]
        assert state in ("waiting", "offered", "connected"), (mid, state)
        if state == "waiting":
            assert queued.get(mid) == (chat["q"], chat["seq"]), f"{mid} waits off its queue"
            assert chat["hs"] == "" and chat["h"] == ""
            assert not any(mid in c["open"] + c["offered"] for c in held.values()), mid
            continue
        assert mid not in queued, f"{mid} is {state} and waiting"
        if state == "offered":
            offered_to = chat["hs"].split(",")
            assert offered_to and len(set(offered_to)) == len(offered_to), (mid, offered_to)
            for hid in offered_to:
                assert mid in held[hid]["offered"], (mid, hid)
                pending.add(f"{hid}/{mid}")
        else:
            assert mid in held[chat["h"]]["open"], (mid, chat["h"])
    for hid, load in held.items():
        for mid in load["open"]:
            assert chats[mid]["st"] == "connected" and chats[mid]["h"] == hid, (hid, mid)
        for mid in load["offered"]:
            assert chats[mid]["st"] == "offered" and hid in chats[mid]["hs"].split(","), hid
        if load["offered"]:
            assert handlers[hid]["pr"] == "available", f"{hid} ({handlers[hid]['pr']}) offered"
            assert len(load["open"]) + len(load["offered"]) <= core.chat_capacity, (hid, load)
    assert pending == set(snap["chat_offers"]), "offered conversations != pending chat offers"
    waiting = core.waiting("chat")
    order = [(float(chats[m]["sc"]), chats[m]["seq"]) for m in waiting]
    assert order == sorted(order), "waiting('chat') out of score/arrival order"
    assert set(waiting) == {m for m, v in chats.items() if v["st"] == "waiting"}
    assert core.waiting_count("chat") == len(waiting)
    for place, mid in enumerate(waiting[:5], start=1):
        assert core.position(mid, "chat") == place


def check_invariants(core: RoutingCore) -> dict[str, Any]:
    """Assert every structural invariant of the routing state; returns the snapshot."""
    snap = core.snapshot()
    callers, handlers = snap["callers"], snap["handlers"]

    queued: dict[str, tuple[str, str]] = {}
    chat_queued: dict[str, tuple[str, str]] = {}
    for queue, members in snap["queues"].items():
        into = chat_queued if queue.endswith(":chat") else queued
        for member in members:
            seq, cid = member.split(":", 1)
            assert cid not in into, f"{cid} queued twice"
            into[cid] = (queue, seq)
    assert set(queued) <= set(callers), "a queue holds a caller the core does not know"
    check_chats(core, snap, chat_queued)

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
    loads = {hid: len(c["open"]) + len(c["offered"]) for hid, c in snap["handler_chats"].items()}
    on_duty = {hid for hid, h in handlers.items() if h["pr"] == "available"}
    available = {  # a conversation offer pending, or too many: no call
        hid
        for hid in on_duty
        if not snap["handler_chats"][hid]["offered"] and loads[hid] <= core.call_max_chats
    }
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

    chat_available = {hid for hid in on_duty if loads[hid] < core.chat_capacity}
    assert chat_available == set(snap["chat_available"])
    for pattern in ("cx:*", "cf:*"):
        for key in redis.scan_iter(match=core.prefix + pattern):
            sfx = key.decode()[len(core.prefix) :]
            for hid, score in redis.zrange(key, 0, -1, withscores=True):
                hid = hid.decode()
                assert hid in chat_available, f"{hid} ({handlers[hid]['pr']}) left in {sfx}"
                assert sfx in chat_index_keys(handlers[hid]), f"{hid} in a stale index {sfx}"
                assert int(score // LEVEL) == int(handlers[hid]["lvl"]), (hid, score)
                assert int(score % LEVEL // LOAD) == loads[hid], (hid, score, loads[hid])
    for hid in chat_available:
        for sfx in chat_index_keys(handlers[hid]):
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
