"""Conversations (SMS, WhatsApp, Telegram) in the routing core on a real Redis: channel
capacity, a call's exclusivity, the same order and strategies as calls, offers accepted or
declined in the console, their timeout, breaks that keep conversations, idempotence."""

from __future__ import annotations

import pytest

from routing.core import RoutingCore
from routing.strategies import STRATEGIES
from tests.routing import add_handler, check_invariants, join, serve


def chat(core: RoutingCore, conversation_id: str, at: float, **attrs) -> int:
    attrs = {"language": "ru", "kind": "other", "priority": 0, **attrs}
    position, offers = core.enqueue_chat(conversation_id, enqueued_at=at, **attrs)
    assert offers == ()
    return position


def offered(offers) -> list[tuple[str, str, tuple[str, ...]]]:
    return [(o.channel, o.caller_id, o.handler_ids) for o in offers]


def hold(core: RoutingCore, handler_id: str, conversations: list[str], now: float) -> None:
    """Give ``handler_id`` these conversations (offered to them, accepted)."""
    for mid in conversations:
        chat(core, mid, now)
    offers = core.dispatch(now)
    assert {(o.caller_id, o.handler_ids) for o in offers} == {
        (mid, (handler_id,)) for mid in conversations
    }
    for mid in conversations:
        assert core.accept_chat(mid, handler_id, now).won


# -- capacity ----------------------------------------------------------------------------------


def test_a_handler_takes_up_to_capacity_conversations_offers_included(make_core):
    core = make_core(chat_capacity=3)
    add_handler(core, "h1", now=0)
    for n in range(4):
        assert chat(core, f"m{n}", n) == n + 1
    offers = core.dispatch(10)
    assert offered(offers) == [("chat", f"m{n}", ("h1",)) for n in range(3)]
    assert core.chat_state("m3") == "waiting" and core.position("m3", "chat") == 1
    assert core.chat_load("h1").offered == ("m0", "m1", "m2")
    for n in range(3):
        assert core.accept_chat(f"m{n}", "h1", 11).won
    load = core.chat_load("h1")
    assert load.open == ("m0", "m1", "m2") and load.offered == () and len(load) == 3
    assert core.dispatch(12) == []  # full: no fourth
    assert core.presence("h1") == ("available", None)  # still on duty (for calls)
    check_invariants(core)
    ended = core.end_chat("m1", "h1", now=13, dispatch=True)
    assert ended and ended.presence == "available"
    assert offered(ended.offers) == [("chat", "m3", ("h1",))]
    assert core.chat_handler("m0") == "h1" and core.chat_handler("m3") is None
    check_invariants(core)


def test_capacity_zero_turns_conversations_off(make_core):
    core = make_core(chat_capacity=0)
    add_handler(core, "h1", now=0)
    chat(core, "m1", 0)
    join(core, "c1", 1)
    assert offered(core.dispatch(5)) == [("voice", "c1", ("h1",))]
    assert core.chat_state("m1") == "waiting"
    check_invariants(core)


@pytest.mark.parametrize("capacity", [-1, 10])
def test_capacity_out_of_range_is_refused(make_core, capacity):
    with pytest.raises(ValueError, match="chat_capacity"):
        make_core(chat_capacity=capacity)


def test_a_call_is_exclusive(make_core):
    core = make_core()
    add_handler(core, "h1", now=0)
    join(core, "c1", 0)
    chat(core, "m1", 1)
    assert offered(core.dispatch(2)) == [("voice", "c1", ("h1",))]
    assert core.dispatch(3) == []  # offered a call: no conversation
    assert core.accept("c1", "h1", 4).won
    assert core.dispatch(5) == []  # on the call: none
    assert core.complete("c1", "h1", talk_s=10, now=14)
    assert core.dispatch(15) == []  # in its wrap-up: none
    check_invariants(core)
    change = core.end_wrap_up("h1", 20, dispatch=True)
    assert offered(change.offers) == [("chat", "m1", ("h1",))]
    check_invariants(core)


def test_a_pending_conversation_offer_keeps_calls_away_until_answered(make_core):
    core = make_core()
    add_handler(core, "h1", now=0)
    chat(core, "m1", 0)
    assert offered(core.dispatch(1)) == [("chat", "m1", ("h1",))]
    join(core, "c1", 2)
    assert core.dispatch(3) == []  # the offer shown in the console stays; the call waits
    check_invariants(core)
    result = core.accept_chat("m1", "h1", 4, dispatch=True)
    assert result.won and offered(result.offers) == [("voice", "c1", ("h1",))]
    assert core.chat_load("h1").open == ("m1",)  # an open conversation does not block a call
    check_invariants(core)


def test_calls_to_handlers_with_conversations_up_to_call_max_chats(make_core):
    core = make_core(chat_capacity=3, call_max_chats=1)
    add_handler(core, "h1", now=0)
    hold(core, "h1", ["m1", "m2"], 1)
    join(core, "c1", 2)
    assert core.dispatch(3) == []  # two conversations: more than call_max_chats
    check_invariants(core)
    done = core.end_chat("m2", "h1", now=4, dispatch=True)
    assert offered(done.offers) == [("voice", "c1", ("h1",))]
    assert core.chat_load("h1").open == ("m1",)  # the call leaves the conversation open
    assert core.accept("c1", "h1", 5).won
    check_invariants(core)


def test_by_default_conversations_never_keep_a_call_from_a_handler(make_core):
    core = make_core(chat_capacity=3)
    add_handler(core, "h1", now=0)
    hold(core, "h1", ["m1", "m2", "m3"], 1)
    join(core, "c1", 2)
    assert offered(core.dispatch(3)) == [("voice", "c1", ("h1",))]
    check_invariants(core)


# -- order and strategies across channels ------------------------------------------------------


def test_priority_then_age_across_channels(make_core):
    core = make_core(chat_capacity=1, call_max_chats=0)
    add_handler(core, "h1", available=False, now=0)
    join(core, "c1", 10)
    chat(core, "m1", 5)
    chat(core, "m2", 20, priority=120)  # score -100: first
    join(core, "c2", 30)
    assert core.waiting() == ["c1", "c2"] and core.waiting("chat") == ["m2", "m1"]
    assert core.position("c1") == 1 and core.position("m1", "chat") == 2  # places per channel
    assert core.waiting_count() == 2 and core.waiting_count("chat") == 2
    assert core.longest_wait(40) == 30 and core.longest_wait(40, "chat") == 35
    seen = []
    core.set_presence("h1", "available", now=40)
    for t in range(41, 45):
        (offer,) = core.dispatch(t)
        seen.append(offer.caller_id)
        if offer.channel == "chat":
            assert core.accept_chat(offer.caller_id, "h1", t).won
            assert core.end_chat(offer.caller_id, "h1", now=t)
        else:
            serve(core, offer.caller_id, "h1", now=t, talk_s=0.1)
    assert seen == ["m2", "m1", "c1", "c2"]
    check_invariants(core)


def test_a_conversation_and_a_call_share_ids_without_clashing(core):
    add_handler(core, "h1", now=0)
    join(core, "5", 0)
    chat(core, "5", 1)
    assert core.caller_state("5") == "waiting" and core.chat_state("5") == "waiting"
    assert offered(core.dispatch(2)) == [("voice", "5", ("h1",))]
    assert core.remove_chat("5", now=3).removed
    assert core.caller_state("5") == "offered" and core.chat_state("5") is None
    check_invariants(core)


def test_language_kind_level_and_fallback_as_for_calls(make_core):
    core = make_core(language_fallback_after_s=60)
    add_handler(core, "uk", languages=("uk",), fallback=("ru",), now=0)
    add_handler(core, "fam", skills=("family",), now=0)
    chat(core, "m1", 0, kind="surrender")
    assert core.dispatch(10) == []  # no ru+surrender handler; uk only after 60 s
    fallback = core.dispatch(61)
    assert offered(fallback) == [("chat", "m1", ("uk",))] and fallback[0].language_fallback
    add_handler(core, "l2", skills=("family",), level=2, now=0)
    chat(core, "m2", 62, kind="family")
    assert offered(core.dispatch(63)) == [("chat", "m2", ("fam",))]
    check_invariants(core)


def test_fewer_conversations_first_within_a_level(make_core):
    core = make_core(strategy="linear")
    add_handler(core, "h1", order=1, now=0)
    add_handler(core, "h2", order=2, now=0)
    add_handler(core, "h3", order=0, level=2, now=0)  # first by order, but level 2
    chats = [f"m{n}" for n in range(5)]
    for n, mid in enumerate(chats):
        chat(core, mid, n)
    offers = core.dispatch(10)
    # linear would give h1 everything; the load comes first: h1, h2, h1, h2, h1 (h1 now full)
    assert [o.handler_ids for o in offers] == [("h1",), ("h2",), ("h1",), ("h2",), ("h1",)]
    chat(core, "m5", 11)
    chat(core, "m6", 12)
    chat(core, "m7", 13)
    assert [o.handler_ids for o in core.dispatch(14)] == [("h2",), ("h3",), ("h3",)]
    check_invariants(core)


@pytest.mark.parametrize("strategy", [s for s in STRATEGIES if s != "ring-all"])
def test_every_strategy_spreads_conversations(make_core, strategy):
    core = make_core(strategy=strategy, chat_capacity=2)
    for n, hid in enumerate(["h1", "h2", "h3"]):
        add_handler(core, hid, order=n, now=n)
    for n in range(6):
        chat(core, f"m{n}", 10 + n)
    offers = core.dispatch(20, seed=7)
    assert len(offers) == 6 and all(o.channel == "chat" for o in offers)
    first_round = sorted(o.handler_ids[0] for o in offers[:3])
    assert first_round == ["h1", "h2", "h3"]  # nobody gets a second before all have one
    assert all(len(core.chat_load(h)) == 2 for h in ("h1", "h2", "h3"))
    check_invariants(core)


def test_longest_idle_counts_the_last_conversation_offered(make_core):
    core = make_core(strategy="longest-idle", chat_capacity=2)
    add_handler(core, "h1", now=0)
    add_handler(core, "h2", now=5)
    hold(core, "h1", ["m1"], 10)  # h1 was idle longest, so it took m1 ...
    assert core.end_chat("m1", "h1", now=11)
    chat(core, "m2", 12)  # ... and now h2 has been idle longer
    assert offered(core.dispatch(13)) == [("chat", "m2", ("h2",))]
    check_invariants(core)


def test_ring_all_offers_a_conversation_to_all_and_the_first_accept_wins(make_core):
    core = make_core(strategy="ring-all")
    for n, hid in enumerate(["h1", "h2", "h3"]):
        add_handler(core, hid, order=n, now=0)
    add_handler(core, "h4", level=2, now=0)
    chat(core, "m1", 0)
    (offer,) = core.dispatch(1)
    assert offer.channel == "chat" and offer.handler_ids == ("h1", "h2", "h3")
    check_invariants(core)
    won = core.accept_chat("m1", "h2", 2)
    assert won.won and set(won.released) == {"h1", "h3"}
    assert not core.accept_chat("m1", "h1", 3).won
    assert core.chat_load("h1") == core.chat_load("h3") and len(core.chat_load("h1")) == 0
    assert core.chat_load("h2").open == ("m1",)
    check_invariants(core)


# -- offers: decline, timeout, idempotence -----------------------------------------------------


def test_a_declined_offer_goes_to_someone_else_in_its_place(make_core):
    core = make_core(strategy="longest-idle")
    add_handler(core, "h1", now=0)
    add_handler(core, "h2", now=1)
    chat(core, "m1", 2)
    chat(core, "m2", 3)
    assert offered(core.dispatch(4)) == [("chat", "m1", ("h1",)), ("chat", "m2", ("h2",))]
    assert core.accept_chat("m2", "h2", 5).won
    result = core.decline_chat("m1", "h1", now=6, dispatch=True)
    assert result.applied and result.handler_presence == "available"
    assert result.caller_state == "waiting"
    # the fewest conversations first: h1 again (the only one with none) ...
    assert offered(result.offers) == [("chat", "m1", ("h1",))]
    assert not core.decline_chat("m1", "h2", now=7).applied  # not theirs: nothing changes
    assert core.decline_chat("m1", "h1", now=7).applied
    assert not core.decline_chat("m1", "h1", now=7).applied  # a repeat changes nothing
    assert core.end_chat("m2", "h2", now=8)
    # ... but with equal loads, letting an offer go resets the idle clock: h2 now
    assert offered(core.dispatch(9)) == [("chat", "m1", ("h2",))]
    assert core.snapshot()["handlers"]["h1"]["miss"] == "0"  # declined, not missed
    check_invariants(core)


def test_an_offer_not_accepted_in_time_goes_to_someone_else(make_core):
    core = make_core(max_misses=3)
    add_handler(core, "h1", now=0)
    add_handler(core, "h2", available=False, now=0)
    chat(core, "m1", 0)
    assert offered(core.dispatch(10)) == [("chat", "m1", ("h1",))]
    early = core.expire_chat_offers(69, older_than_s=60)
    assert early.expired == () and core.chat_state("m1") == "offered"
    core.set_presence("h2", "available", now=70)
    expired = core.expire_chat_offers(71, older_than_s=60, dispatch=True)
    assert expired.expired == (("m1", "h1"),) and expired.breaks == ()
    assert offered(expired.offers) == [("chat", "m1", ("h2",))]
    assert core.snapshot()["handlers"]["h1"]["miss"] == "1"
    assert core.expire_chat_offers(72, older_than_s=60).expired == ()  # once
    check_invariants(core)


def test_misses_in_a_row_send_to_a_break_that_keeps_open_conversations(make_core):
    core = make_core(max_misses=2, chat_capacity=4)
    add_handler(core, "h1", now=0)
    hold(core, "h1", ["m0"], 0)
    for mid in ("m1", "m2", "m3"):
        chat(core, mid, 1)
    assert len(core.dispatch(2)) == 3
    assert core.decline_chat("m1", "h1", missed=True, now=3).handler_presence == "available"
    result = core.decline_chat("m2", "h1", missed=True, now=4)
    assert result.handler_presence == "break" and result.withdrawn_chats == ("m3",)
    assert core.presence("h1") == ("break", "missed 2 offers in a row")
    assert core.chat_load("h1").open == ("m0",) and core.chat_load("h1").offered == ()
    assert core.waiting("chat") == ["m1", "m2", "m3"]
    check_invariants(core)


def test_accept_end_and_their_repeats(make_core):
    core = make_core()
    add_handler(core, "h1", now=0)
    add_handler(core, "h2", now=0)
    assert not core.accept_chat("m1", "h1", 1).won  # unknown
    chat(core, "m1", 0)
    assert not core.accept_chat("m1", "h1", 1).won  # waiting, never offered
    (offer,) = core.dispatch(2)
    other = "h2" if offer.handler_ids == ("h1",) else "h1"
    assert not core.accept_chat("m1", other, 3).won  # offered to someone else
    first = core.accept_chat("m1", offer.handler_ids[0], 3)
    again = core.accept_chat("m1", offer.handler_ids[0], 4)
    assert first.won and again.won and first.waited_s == 3 and again.released == ()
    assert len(core.chat_load(offer.handler_ids[0]).open) == 1
    assert core.snapshot()["handlers"][offer.handler_ids[0]]["cn"] == "1"  # counted once
    assert not core.decline_chat("m1", offer.handler_ids[0], now=5).applied  # open now
    assert not core.end_chat("m1", other, now=5)
    assert core.end_chat("m1", offer.handler_ids[0], now=6)
    assert not core.end_chat("m1", offer.handler_ids[0], now=7)  # once
    assert core.chat_state("m1") is None and len(core.chat_load(offer.handler_ids[0])) == 0
    position, _ = core.enqueue_chat("m2", language="ru", kind="other", priority=0, enqueued_at=8)
    again_position, _ = core.enqueue_chat(
        "m2", language="uk", kind="family", priority=60, enqueued_at=9
    )
    assert position == again_position == 1  # a repeat keeps the first attributes
    assert core.snapshot()["chats"]["m2"]["lang"] == "ru"
    check_invariants(core)


# -- presence ----------------------------------------------------------------------------------


def test_a_break_keeps_open_conversations_but_gets_no_new_offer(make_core):
    core = make_core()
    add_handler(core, "h1", now=0)
    hold(core, "h1", ["m1"], 0)
    chat(core, "m2", 1)
    assert offered(core.dispatch(2)) == [("chat", "m2", ("h1",))]
    change = core.set_presence("h1", "break", reason="tea", now=3)
    assert change.withdrawn_chats == ("m2",) and change.withdrawn is None
    assert core.chat_load("h1").open == ("m1",) and core.chat_state("m2") == "waiting"
    chat(core, "m3", 4)
    join(core, "c1", 4)
    assert core.dispatch(5) == []
    assert core.end_chat("m1", "h1", now=6)  # they may still close a conversation on a break
    assert core.presence("h1") == ("break", "tea")
    check_invariants(core)
    back = core.set_presence("h1", "available", now=7, dispatch=True)
    assert offered(back.offers)[0] == ("chat", "m2", ("h1",))  # first in order
    check_invariants(core)


def test_offline_during_a_call_keeps_conversations_for_after(make_core):
    core = make_core()
    add_handler(core, "h1", now=0)
    hold(core, "h1", ["m1"], 0)
    join(core, "c1", 1)
    core.dispatch(2)
    assert core.accept("c1", "h1", 3).won
    assert core.set_presence("h1", "offline", now=4).deferred
    assert core.complete("c1", "h1", talk_s=5, now=8, wrap_up=False).presence == "offline"
    assert core.chat_load("h1").open == ("m1",)
    check_invariants(core)


def test_a_conversation_handed_back_or_closed_while_waiting(make_core):
    core = make_core()
    add_handler(core, "h1", now=0)
    chat(core, "m1", 0)
    chat(core, "m2", 1)
    core.dispatch(2)
    assert core.accept_chat("m1", "h1", 3).won
    back = core.requeue_chat("m1", now=4)
    assert back and back.released == ("h1",) and core.waiting("chat") == ["m1"]
    assert core.chat_load("h1").offered == ("m2",) and core.chat_load("h1").open == ()
    gone = core.remove_chat("m2", now=5)
    assert gone.removed and gone.previous == "offered" and gone.handler_ids == ("h1",)
    assert core.remove_chat("m2", now=6).previous is None
    assert not core.requeue_chat("m2", now=6)
    assert core.remove_chat("m1", now=7).previous == "waiting"
    check_invariants(core)
    hold(core, "h1", ["m3"], 8)
    kept = core.remove_chat("m3", now=9)
    assert not kept.removed and kept.handler_ids == ("h1",)  # open: end_chat closes it


def test_upsert_reindexes_conversations_too(core):
    add_handler(core, "h1", languages=("uk",), now=0)
    chat(core, "m1", 0)
    assert core.dispatch(1) == []
    add_handler(core, "h1", languages=("ru",), available=False, now=2)
    assert offered(core.dispatch(3)) == [("chat", "m1", ("h1",))]
    check_invariants(core)


def test_a_new_capacity_reindexes_on_the_first_call(make_core, rds):
    small = make_core(chat_capacity=1)
    add_handler(small, "h1", now=0)
    hold(small, "h1", ["m1"], 0)
    chat(small, "m2", 1)
    assert small.dispatch(2) == []
    larger = make_core(chat_capacity=2)
    assert offered(larger.dispatch(3)) == [("chat", "m2", ("h1",))]
    check_invariants(larger)


def test_no_personal_data_in_conversation_ids(core):
    with pytest.raises(ValueError, match="opaque id"):
        core.enqueue_chat("+380501234567", language="ru", kind="other", priority=0, enqueued_at=0)
