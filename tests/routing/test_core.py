"""The routing core on a real Redis: strategies, caller order, eligibility, offers and their
outcomes, idempotence, and concurrent workers."""

from __future__ import annotations

import random
import threading
from collections import Counter, defaultdict

import pytest
import redis

from routing.core import HandlerProfile, QueueFull, RoutingCore, UnknownHandler
from tests.routing import add_handler, check_invariants, join, serve


def offered_to(offers) -> list[tuple[str, tuple[str, ...]]]:
    return [(o.caller_id, o.handler_ids) for o in offers]


def next_handler(core: RoutingCore, caller_id: str, now: float) -> str:
    """Queue one caller, dispatch, and return the single handler it was offered to."""
    join(core, caller_id, now)
    (offer,) = core.dispatch(now)
    assert offer.caller_id == caller_id and len(offer.handler_ids) == 1
    return offer.handler_ids[0]


def only_available(core: RoutingCore, handler_id: str, others: list[str], now: float) -> None:
    for other in others:
        core.set_presence(other, "offline", now=now)
    core.set_presence(handler_id, "available", now=now)


# -- strategies ------------------------------------------------------------------------------


def test_longest_idle_takes_lowest_level_then_oldest_idle(make_core):
    core = make_core(strategy="longest-idle")
    add_handler(core, "h1", level=1, now=10)
    add_handler(core, "h2", level=1, now=5)
    add_handler(core, "h3", level=2, now=0)  # idle longest, but a higher level
    assert next_handler(core, "c1", 20) == "h2"
    assert next_handler(core, "c2", 21) == "h1"
    assert next_handler(core, "c3", 22) == "h3"
    check_invariants(core)


def test_longest_idle_counts_from_the_last_call_end(make_core):
    core = make_core(strategy="longest-idle")
    add_handler(core, "h1", now=0)
    assert next_handler(core, "c1", 10) == "h1"
    serve(core, "c1", "h1", now=10, talk_s=100)  # idle since the call ended at 110
    add_handler(core, "h2", now=50)  # never called: idle since 50
    add_handler(core, "h3", now=130)
    assert next_handler(core, "c2", 120) == "h2"
    core.decline("c2", "h2", missed=False, now=140)  # letting an offer go resets the idle clock
    assert offered_to(core.dispatch(141)) == [("c2", ("h1",))]
    check_invariants(core)


def test_round_robin_remembers_the_last_handler(make_core):
    core = make_core(strategy="round-robin")
    for i, hid in enumerate(["h1", "h2", "h3"], start=1):
        add_handler(core, hid, order=i, now=0)
    add_handler(core, "h0", order=0, level=2, now=0)  # first by order, but level 2
    seen = []
    for n in range(5):
        hid = next_handler(core, f"c{n}", 10 + n)
        serve(core, f"c{n}", hid, now=10 + n, talk_s=0.1)  # back to available before the next
        seen.append(hid)
    assert seen == ["h1", "h2", "h3", "h1", "h2"]
    check_invariants(core)


def test_linear_starts_from_the_top_every_time(make_core):
    core = make_core(strategy="linear")
    for hid, order in (("h1", 3), ("h2", 1), ("h3", 2)):
        add_handler(core, hid, order=order, now=0)
    seen = []
    for n in range(3):
        hid = next_handler(core, f"c{n}", 10 + n)
        serve(core, f"c{n}", hid, now=10 + n, talk_s=0.1)
        seen.append(hid)
    assert seen == ["h2", "h2", "h2"]
    assert next_handler(core, "c9", 20) == "h2"
    assert next_handler(core, "c10", 21) == "h3"  # h2 is ringing now


def give_calls(core: RoutingCore, plan: list[tuple[str, float]], handlers: list[str]) -> float:
    """Route one call to each (handler, talk time) in turn; returns the time after them."""
    t = 100.0
    for n, (hid, talk_s) in enumerate(plan):
        only_available(core, hid, [h for h in handlers if h != hid], t)
        assert next_handler(core, f"w{n}", t) == hid
        serve(core, f"w{n}", hid, now=t, talk_s=talk_s)
        t += 1000
    for hid in handlers:
        core.set_presence(hid, "available", now=t)
    return t


@pytest.mark.parametrize(
    ("strategy", "plan"),
    [
        # h2 and h3 tie on one call; h2's ended first, so h2 has been idle longer
        ("fewest-calls", [("h1", 30), ("h1", 30), ("h2", 30), ("h3", 30)]),
        ("least-talk-time", [("h1", 300), ("h3", 40), ("h2", 20)]),
    ],
)
def test_stats_strategies_prefer_the_least_loaded_of_the_lowest_level(make_core, strategy, plan):
    core = make_core(strategy=strategy)
    handlers = ["h1", "h2", "h3", "h4"]
    for hid in handlers[:3]:
        add_handler(core, hid, now=0)
    add_handler(core, "h4", level=2, now=0)  # no calls at all, but level 2
    t = give_calls(core, plan, handlers)
    assert next_handler(core, "c1", t + 1) == "h2"
    assert next_handler(core, "c2", t + 2) == "h3"
    snap = check_invariants(core)
    calls = Counter(hid for hid, _ in plan)
    for hid in ("h1", "h2", "h3"):
        assert snap["handlers"][hid]["calls"] == str(calls[hid])
        talk = sum(talk_s for h, talk_s in plan if h == hid)
        assert float(snap["handlers"][hid]["talk"]) == pytest.approx(talk)


def test_fewest_calls_counts_today_only(make_core):
    core = make_core(strategy="fewest-calls")
    add_handler(core, "h1", now=0)
    add_handler(core, "h2", now=0, available=False)
    for n in range(2):
        assert next_handler(core, f"y{n}", 100 + n) == "h1"
        serve(core, f"y{n}", "h1", now=100 + n, talk_s=1)
    core.set_presence("h2", "available", now=1000)
    assert next_handler(core, "c1", 2000) == "h2"  # today: h1 has 2 calls
    serve(core, "c1", "h2", now=2000, talk_s=1)
    tomorrow = 86400 + 10
    assert next_handler(core, "c2", tomorrow) == "h1"  # new day: 0 each; h1 idle longer
    assert check_invariants(core)["handlers"]["h2"]["calls"] == "1"


def test_ring_all_offers_the_best_level_and_the_first_accept_wins(make_core):
    core = make_core(strategy="ring-all", ring_all_max=3)
    for i in range(4):
        add_handler(core, f"h{i}", order=i, now=0)
    add_handler(core, "h9", level=2, now=0)
    join(core, "c1", 5)
    (offer,) = core.dispatch(10)
    assert offer.handler_ids == ("h0", "h1", "h2")  # capped by ring_all_max, by order
    check_invariants(core)
    won = core.accept("c1", "h1", 11)
    assert won.won and set(won.released) == {"h0", "h2"}
    assert won.waited_s == pytest.approx(6)
    late = core.accept("c1", "h0", 12)
    assert not late.won and late.released == ()
    snap = check_invariants(core)
    assert {h: snap["handlers"][h]["pr"] for h in ("h0", "h1", "h2", "h3")} == {
        "h0": "available",
        "h1": "on_call",
        "h2": "available",
        "h3": "available",
    }
    assert snap["offers"] == {}


def test_ring_all_declines_keep_the_caller_offered_until_the_last(make_core):
    core = make_core(strategy="ring-all")
    for i in range(2):
        add_handler(core, f"h{i}", order=i, now=0)
    join(core, "c1", 5)
    core.dispatch(10)
    first = core.decline("c1", "h0", missed=True, now=20)
    assert (first.applied, first.caller_state, first.handler_presence) == (
        True,
        "offered",
        "available",
    )
    assert core.dispatch(21) == []  # h0 is free, but c1 still rings at h1
    last = core.decline("c1", "h1", missed=False, now=22)
    assert last.caller_state == "waiting"
    assert core.position("c1") == 1
    check_invariants(core)


def test_random_picks_uniformly_within_the_best_level(make_core, rds):
    seen = Counter()
    for seed in range(40):
        rds.flushdb()
        core = make_core(strategy="random")
        for i in range(4):
            add_handler(core, f"h{i}", now=0)
        add_handler(core, "h9", level=3, now=0)
        join(core, "c1", 1)
        (offer,) = core.dispatch(2, seed=seed)
        seen[offer.handler_ids[0]] += 1
    assert set(seen) == {"h0", "h1", "h2", "h3"}
    rds.flushdb()
    core = make_core(strategy="random")
    for i in range(4):
        add_handler(core, f"h{i}", now=0)
    join(core, "c1", 1)
    join(core, "c2", 1)
    first = offered_to(core.dispatch(2, seed=7))
    core.requeue("c1", now=3)
    core.requeue("c2", now=3)
    assert offered_to(core.dispatch(2, seed=7)) == first  # the seed makes it reproducible


def test_unknown_strategy_is_refused(rds):
    with pytest.raises(ValueError, match="round-robin"):
        RoutingCore(rds, strategy="roundrobin")


# -- caller order ----------------------------------------------------------------------------


def test_a_long_wait_beats_a_higher_class(core):
    join(core, "old", 0, kind="other", priority=0)  # score at t: t
    join(core, "urgent", 150, kind="surrender", priority=120)  # score at t: t - 30
    join(core, "mid", 100, kind="family", priority=30)  # score at t: t - 70
    assert core.waiting() == ["old", "urgent", "mid"]
    assert [core.position(c) for c in ("old", "urgent", "mid")] == [1, 2, 3]
    assert core.longest_wait(300) == 300
    add_handler(core, "h1", now=300)
    add_handler(core, "h2", now=300)
    assert [o.caller_id for o in core.dispatch(300)] == ["old", "urgent"]
    check_invariants(core)


def test_equal_scores_are_first_come_first_served(core):
    join(core, "a", 100, language="ru", priority=0)
    join(core, "b", 130, language="uk", kind="family", priority=30)  # the same score: 100
    join(core, "c", 100, language="ru", priority=0)
    join(core, "d", 99.5, language="uk", priority=0)
    assert core.waiting() == ["d", "a", "b", "c"]
    for n in range(4):
        add_handler(core, f"h{n}", languages=("ru", "uk"), now=0)
    assert [o.caller_id for o in core.dispatch(200)] == ["d", "a", "b", "c"]


def test_a_caller_nobody_can_serve_does_not_block_the_others(core):
    join(core, "en1", 0, language="en")
    join(core, "en2", 1, language="en")
    join(core, "fam", 2, kind="family")
    join(core, "ru", 3)
    add_handler(core, "h1", skills=("other",), now=5)
    add_handler(core, "h2", skills=("other",), now=5)
    assert offered_to(core.dispatch(10)) == [("ru", ("h1",))]
    assert core.waiting() == ["en1", "en2", "fam"]
    check_invariants(core)


def test_unservable_heads_are_skipped_with_many_handlers_free(core):
    for n in range(10):  # more than a few free handlers: dispatch looks at every queue
        add_handler(core, f"h{n}", skills=("other",), fallback=("en",), now=0)
    join(core, "en1", 100, language="en")  # a fallback only after 60 s of waiting
    join(core, "fam", 101, kind="family")  # nobody has the skill
    join(core, "ru1", 102)
    join(core, "ru2", 103)
    assert [o.caller_id for o in core.dispatch(110)] == ["ru1", "ru2"]
    (late,) = core.dispatch(160)
    assert late.caller_id == "en1" and late.language_fallback


def test_a_fallback_head_still_waiting_does_not_block(core):
    add_handler(core, "h1", languages=("uk",), fallback=("en",), now=0)
    join(core, "en1", 100, language="en")
    join(core, "uk1", 101, language="uk")
    assert offered_to(core.dispatch(110)) == [("uk1", ("h1",))]


# -- eligibility -----------------------------------------------------------------------------


def test_fallback_language_only_after_the_wait_and_flagged(make_core):
    core = make_core(language_fallback_after_s=60)
    add_handler(core, "uk", languages=("uk",), fallback=("ru",), now=0)
    join(core, "c1", 100)
    assert core.dispatch(159.9) == []
    (offer,) = core.dispatch(160)
    assert (offer.caller_id, offer.handler_ids, offer.language_fallback) == ("c1", ("uk",), True)
    assert offer.waited_s == pytest.approx(60)


def test_own_language_handlers_come_before_fallback_ones(make_core):
    core = make_core(language_fallback_after_s=60)
    add_handler(core, "uk", languages=("uk",), fallback=("ru",), level=1, now=0)
    add_handler(core, "ru", languages=("ru",), level=3, now=10)
    join(core, "c1", 0)
    (offer,) = core.dispatch(500)
    assert offer.handler_ids == ("ru",) and not offer.language_fallback


def test_skills_decide_who_may_take_which_inquiry(core):
    add_handler(core, "fam", skills=("family",), now=0)
    add_handler(core, "pow", skills=("pow_info", "surrender"), now=0)
    join(core, "c1", 1, kind="surrender")
    join(core, "c2", 2, kind="other")
    join(core, "c3", 3, kind="family")
    assert sorted(offered_to(core.dispatch(10))) == [("c1", ("pow",)), ("c3", ("fam",))]
    assert core.waiting() == ["c2"]


def test_profile_change_reindexes_an_available_handler(core):
    add_handler(core, "h1", languages=("ru",), now=0)
    core.upsert_handler(HandlerProfile("h1", ("uk",), ("other",), 2, 0), now=1)
    join(core, "c1", 2, language="ru")
    assert core.dispatch(3) == []
    join(core, "c2", 2, language="uk")
    assert offered_to(core.dispatch(4)) == [("c2", ("h1",))]
    check_invariants(core)


# -- offers and their outcomes ---------------------------------------------------------------


def test_missed_offers_send_the_handler_on_break_after_max_misses(make_core):
    core = make_core(max_misses=2)
    add_handler(core, "h1", now=0)
    join(core, "c1", 0)
    core.dispatch(1)
    assert core.decline("c1", "h1", missed=True, now=16).handler_presence == "available"
    core.dispatch(17)
    core.decline("c1", "h1", missed=False, now=20)  # a reject is not a miss
    core.dispatch(21)
    result = core.decline("c1", "h1", missed=True, now=36)
    assert (result.handler_presence, result.caller_state) == ("break", "waiting")
    assert core.presence("h1") == ("break", "missed 2 offers in a row")
    assert core.dispatch(37) == []
    core.set_presence("h1", "available", now=100)
    core.dispatch(101)
    assert core.decline("c1", "h1", missed=True, now=116).handler_presence == "available"
    core.dispatch(117)
    assert core.accept("c1", "h1", 118).won  # an accept resets the count
    assert check_invariants(core)["handlers"]["h1"]["miss"] == "0"


def test_requeue_keeps_the_original_place(core):
    add_handler(core, "h1", now=0)
    join(core, "c1", 10)
    join(core, "c2", 20)
    core.dispatch(30)
    assert core.caller_state("c1") == "offered"
    result = core.requeue("c1", now=31)
    assert result and result.released == ("h1",)
    assert core.waiting() == ["c1", "c2"] and core.position("c1") == 1
    assert core.presence("h1") == ("available", None)
    assert not core.requeue("c1", now=32)  # already waiting: nothing to do
    (offer,) = core.dispatch(33)
    assert offer.caller_id == "c1" and offer.waited_s == pytest.approx(23)
    core.accept("c1", "h1", 34)
    assert core.requeue("c1", now=35).released == ("h1",)  # the bridge failed after accept
    check_invariants(core)


def test_remove_while_offered_returns_the_handlers_to_cancel(make_core):
    core = make_core(strategy="ring-all")
    for i in range(3):
        add_handler(core, f"h{i}", order=i, now=0)
    join(core, "c1", 0)
    join(core, "c2", 1)
    core.dispatch(2)
    removed = core.remove("c1", now=3)
    assert (removed.previous, removed.removed) == ("offered", True)
    assert set(removed.handler_ids) == {"h0", "h1", "h2"}
    assert core.caller_state("c1") is None
    assert not core.accept("c1", "h0", 4).won
    assert core.remove("c1", now=5) == core.remove("c1", now=6)  # nothing left to remove
    assert core.remove("c2", now=7).previous == "waiting"
    assert check_invariants(core)["counts"]["handlers"] == {"available": 3}


def test_remove_leaves_a_connected_call_to_complete(core):
    add_handler(core, "h1", now=0)
    join(core, "c1", 0)
    core.dispatch(1)
    core.accept("c1", "h1", 2)
    removed = core.remove("c1", now=3)
    assert (removed.previous, removed.handler_ids, removed.removed) == ("connected", ("h1",), False)
    assert core.complete("c1", "h1", talk_s=5, now=7)


def test_expired_offers_count_as_misses(core):
    add_handler(core, "h1", now=0)
    join(core, "c1", 0)
    core.dispatch(100)
    assert core.expire_offers(120, older_than_s=30) == ([], ())
    expired, offers = core.expire_offers(131, older_than_s=30, dispatch=True)
    assert expired == [("c1", "h1")]
    assert offered_to(offers) == [("c1", ("h1",))]  # re-offered in the same step
    assert check_invariants(core)["handlers"]["h1"]["miss"] == "1"


def test_a_break_while_ringing_withdraws_the_offer(core):
    add_handler(core, "h1", now=0)
    add_handler(core, "h2", now=0, available=False)
    join(core, "c1", 0)
    core.dispatch(1)
    assert core.set_presence("h1", "available", now=2).withdrawn is None  # the phone rings on
    change = core.set_presence("h1", "break", reason="lunch", now=3)
    assert (change.previous, change.current, change.withdrawn) == ("offered", "break", "c1")
    assert core.caller_state("c1") == "waiting"
    change = core.set_presence("h2", "available", now=4, dispatch=True)
    assert offered_to(change.offers) == [("c1", ("h2",))]
    check_invariants(core)


def test_presence_asked_for_during_a_call_applies_after_the_wrap_up(core):
    add_handler(core, "h1", now=0)
    join(core, "c1", 0)
    core.dispatch(1)
    core.accept("c1", "h1", 2)
    change = core.set_presence("h1", "break", reason="shift over", now=3)
    assert change.deferred and core.presence("h1") == ("on_call", None)
    completed = core.complete("c1", "h1", talk_s=10, now=12)
    assert completed and completed.presence == "wrap_up"
    assert core.end_wrap_up("h1", 20).current == "break"
    assert core.presence("h1") == ("break", "shift over")
    assert core.end_wrap_up("h1", 21).current == "break"  # not in wrap-up: nothing


def test_auto_ready_complete_dispatches_the_next_caller(core):
    add_handler(core, "h1", now=0)
    join(core, "c1", 0)
    join(core, "c2", 1)
    core.dispatch(2)
    core.accept("c1", "h1", 3)
    done = core.complete("c1", "h1", talk_s=5, now=8, wrap_up=False, dispatch=True)
    assert done.presence == "available" and offered_to(done.offers) == [("c2", ("h1",))]


def test_unknown_handler_and_bad_input_are_refused(core):
    with pytest.raises(UnknownHandler):
        core.set_presence("nobody", "available", now=0)
    with pytest.raises(ValueError):
        core.set_presence("nobody", "on_call", now=0)
    with pytest.raises(ValueError, match="opaque id"):
        join(core, "+79161234567", 0)
    with pytest.raises(ValueError):
        join(core, "c1", 0, language="r u")
    with pytest.raises(ValueError):
        join(core, "c1", float("nan"))
    assert core.presence("nobody") == ("offline", None)


# -- queue limits, idempotence, whole state --------------------------------------------------


def test_max_queue(make_core):
    core = make_core(max_queue=2)
    assert join(core, "c1", 0) == 1
    assert join(core, "c2", 1) == 2
    with pytest.raises(QueueFull):
        join(core, "c3", 2)
    assert join(core, "c2", 1) == 2  # a known caller is never refused
    core.remove("c1", now=3)
    assert join(core, "c3", 2) == 2


def test_every_call_is_idempotent(core):
    add_handler(core, "h1", now=0)
    add_handler(core, "h1", now=0)  # upsert + available twice
    assert join(core, "c1", 0) == 1
    assert join(core, "c1", 50, language="uk") == 1  # changes nothing
    assert core.snapshot()["callers"]["c1"]["lang"] == "ru"
    first = core.dispatch(1)
    assert core.dispatch(1) == []
    assert join(core, "c1", 0) == 0  # offered: no place in the queue
    assert core.accept("c1", "h1", 2).won
    assert core.accept("c1", "h1", 2).won  # the same accept again: same answer, no change
    assert not core.decline("c1", "h1", missed=True, now=3).applied
    assert core.complete("c1", "h1", talk_s=30, now=32)
    assert not core.complete("c1", "h1", talk_s=30, now=32)
    assert core.end_wrap_up("h1", 40).current == "available"
    assert core.end_wrap_up("h1", 41).previous == "available"
    snap = check_invariants(core)
    assert snap["handlers"]["h1"]["calls"] == "1" and float(snap["handlers"]["h1"]["talk"]) == 30
    assert snap["callers"] == {} and len(first) == 1


def test_calls_out_of_order_do_nothing(core):
    add_handler(core, "h1", now=0)
    assert not core.accept("c1", "h1", 1).won
    assert not core.decline("c1", "h1", missed=True, now=1).applied
    assert not core.complete("c1", "h1", talk_s=1, now=1)
    assert not core.requeue("c1", now=1)
    assert core.remove("c1", now=1).previous is None
    join(core, "c1", 0)
    assert not core.accept("c1", "h1", 2).won  # waiting, never offered
    core.dispatch(3)
    assert not core.complete("c1", "h1", talk_s=1, now=4)  # offered, not connected
    assert core.accept("c1", "h1", 5).won
    assert not core.complete("c1", "h2", talk_s=1, now=6)  # connected to someone else
    assert core.requeue("c1", now=7)
    core.dispatch(8)
    assert not core.accept("c1", "h2", 5).won  # offered to someone else
    assert check_invariants(core)["counts"]["handlers"] == {"offered": 1}


def test_snapshot_and_reset(core, rds):
    add_handler(core, "h1", now=0)
    join(core, "c1", 0)
    join(core, "c2", 0)
    core.dispatch(1)
    snap = check_invariants(core)
    assert snap["counts"] == {
        "callers": {"offered": 1, "waiting": 1},
        "handlers": {"offered": 1},
    }
    assert snap["meta"]["strategy"] == "longest-idle"
    rds.set("other:key", "kept")
    core.reset()
    assert rds.keys(core.prefix + "*") == [] and rds.get("other:key") == b"kept"
    assert core.waiting() == [] and core.caller_state("c1") is None


def test_no_personal_data_and_only_prefixed_keys(make_core, rds):
    core = make_core(prefix="hl:test:")
    add_handler(core, "h1", now=0)
    join(core, "c1", 0)
    core.dispatch(1)
    assert all(key.startswith(b"hl:test:") for key in rds.keys("*"))


# -- concurrency -----------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["longest-idle", "ring-all", "round-robin"])
def test_concurrent_workers_never_double_assign(redis_url, rds, strategy):
    handlers = [f"h{i:02d}" for i in range(24)]
    setup = RoutingCore(rds, strategy=strategy, max_queue=10_000)
    for i, hid in enumerate(handlers):
        langs = ("ru", "uk") if i % 3 else ("ru",)
        add_handler(setup, hid, languages=langs, level=1 + i % 2, order=i, now=0)
    for n in range(300):
        join(setup, f"c{n:03d}", n * 0.1, language="uk" if n % 4 == 0 else "ru")

    lock = threading.Lock()
    won: list[tuple[str, str]] = []
    completed: list[tuple[str, str]] = []
    errors: list[BaseException] = []

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        client = redis.Redis.from_url(redis_url)
        core = RoutingCore(client, strategy=strategy, max_queue=10_000)
        mine: list[tuple[str, str]] = []

        def answer(offers, now: float) -> None:
            for offer in offers:
                for hid in rng.sample(offer.handler_ids, len(offer.handler_ids)):
                    roll = rng.random()
                    if roll < 0.7:
                        if core.accept(offer.caller_id, hid, now).won:
                            mine.append((offer.caller_id, hid))
                            with lock:
                                won.append((offer.caller_id, hid))
                    else:
                        core.decline(offer.caller_id, hid, missed=roll < 0.85, now=now)

        try:
            for step in range(120):
                now = 100 + step
                answer(core.dispatch(now, max_offers=rng.randint(1, 6)), now)
                while mine and rng.random() < 0.6:
                    cid, hid = mine.pop(rng.randrange(len(mine)))
                    if core.complete(cid, hid, talk_s=1.0, now=now):
                        with lock:
                            completed.append((cid, hid))
                    answer(core.end_wrap_up(hid, now, dispatch=rng.random() < 0.5).offers, now)
                for hid in rng.sample(handlers, 2):  # supervisors put people back on duty
                    if core.presence(hid)[0] == "break":
                        core.set_presence(hid, "available", now=now)
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)
        finally:
            client.close()

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors

    callers_won = Counter(cid for cid, _ in won)
    assert max(callers_won.values()) == 1, "a caller was connected to two handlers"
    assert len(won) > 50, check_invariants(setup)["counts"]
    per_handler = defaultdict(list)
    for cid, hid in won:
        per_handler[hid].append(cid)
    finished = set(completed)
    snap = check_invariants(setup)
    for hid, cids in per_handler.items():
        open_calls = [cid for cid in cids if (cid, hid) not in finished]
        assert len(open_calls) <= 1, f"{hid} held {open_calls} at once"
        if open_calls:
            assert snap["handlers"][hid]["pr"] == "on_call"
            assert snap["handlers"][hid]["c"] == open_calls[0]
        assert int(snap["handlers"][hid]["calls"]) == len(cids) - len(open_calls)
    assert len(completed) == len(set(completed))
