"""The routing core as a state machine on the real Redis: any sequence of joins, leaves,
presence changes, dispatches, accepts, misses, rejects, completes and wrap-up ends, in any order
and repeated, with conversations beside the calls (joins, accepts, declines, expiries, ends,
hand-backs), keeps every invariant (``check_invariants``) and agrees with a small model of who
is in the core, which handler holds which conversation and how many calls each completed."""

from __future__ import annotations

from collections import Counter

import redis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from routing.core import HandlerProfile, QueueFull, RoutingCore
from routing.strategies import STRATEGIES
from tests.routing import ALL_KINDS, check_invariants

CALLERS = [f"c{i}" for i in range(12)]
CHATS = [f"m{i}" for i in range(8)]
HANDLERS = [f"h{i}" for i in range(5)]

callers = st.sampled_from(CALLERS)
chats = st.sampled_from(CHATS)
handlers = st.sampled_from(HANDLERS)
# staff who overlap often (ring-all, levels and fallbacks need several eligible handlers)
profiles = st.builds(
    HandlerProfile,
    handler_id=handlers,
    languages=st.sampled_from([("ru",), ("ru",), ("ru", "uk"), ("uk",), ("en", "ru")]),
    skills=st.sampled_from([ALL_KINDS, ALL_KINDS, ("other", "family"), ("surrender",)]),
    level=st.sampled_from([1, 1, 1, 2]),
    order=st.integers(0, 4),
    fallback_languages=st.sampled_from([(), (), ("en",), ("uk",)]),
)


class RoutingMachine(RuleBasedStateMachine):
    def __init__(self, redis_url: str):
        super().__init__()
        self.client = redis.Redis.from_url(redis_url)
        self.client.flushdb()
        self.core: RoutingCore | None = None
        self.now = 1_000.0
        self.alive: set[str] = set()  # callers the core should know
        self.connected: dict[str, str] = {}  # caller -> handler, from accepts that won
        self.completed: Counter[str] = Counter()  # calls completed per handler
        self.chats_alive: set[str] = set()  # conversations the core should know
        self.chats_open: dict[str, str] = {}  # conversation -> handler, from accepts that won
        self.chats_accepted: Counter[str] = Counter()  # accepted conversations per handler

    def teardown(self) -> None:
        self.client.flushdb()
        self.client.close()

    @initialize(
        strategy=st.sampled_from(STRATEGIES),
        max_misses=st.integers(1, 3),
        staff=st.lists(profiles, min_size=1, max_size=6),
        chat_capacity=st.sampled_from([0, 1, 2, 3]),
        call_max_chats=st.sampled_from([None, None, 0, 1]),
    )
    def start(self, strategy, max_misses, staff, chat_capacity, call_max_chats):
        self.core = RoutingCore(
            self.client,
            strategy=strategy,
            max_misses=max_misses,
            ring_all_max=3,
            max_queue=10,
            language_fallback_after_s=30,
            chat_capacity=chat_capacity,
            call_max_chats=call_max_chats,
        )
        for profile in staff:
            self.core.upsert_handler(profile, now=self.now)
            self.core.set_presence(profile.handler_id, "available", now=self.now)

    def pick(self, data, pairs: list[tuple[str, str]]) -> tuple[str, str]:
        """A real pair, a real caller with any handler, or anyone with anyone.

        The same draws whatever the pairs are: under the random strategy the core's choices
        differ between runs, and hypothesis needs the data drawn not to depend on them."""
        mode = data.draw(st.sampled_from(["real", "real", "caller", "any"]))
        index = data.draw(st.integers(0, 63))
        any_caller, any_handler = data.draw(callers), data.draw(handlers)
        if pairs and mode != "any":
            caller, handler = sorted(pairs)[index % len(pairs)]
            return (caller, handler) if mode == "real" else (caller, any_handler)
        return any_caller, any_handler

    def pick_chat(self, data, pairs: list[tuple[str, str]]) -> tuple[str, str]:
        """As ``pick``, for conversations."""
        mode = data.draw(st.sampled_from(["real", "real", "chat", "any"]))
        index = data.draw(st.integers(0, 63))
        any_chat, any_handler = data.draw(chats), data.draw(handlers)
        if pairs and mode != "any":
            chat, handler = sorted(pairs)[index % len(pairs)]
            return (chat, handler) if mode == "real" else (chat, any_handler)
        return any_chat, any_handler

    def chat_offers(self) -> list[tuple[str, str]]:
        held = self.core.snapshot()["handler_chats"]
        return [(mid, hid) for hid, load in held.items() for mid in load["offered"]]

    def offers(self) -> list[tuple[str, str]]:
        snap = self.core.snapshot()
        return [(h["c"], hid) for hid, h in snap["handlers"].items() if h["pr"] == "offered"]

    # -- time and people -----------------------------------------------------------------

    @rule(seconds=st.sampled_from([0.0, 1.0, 15.0, 40.0]))
    def wait(self, seconds):
        self.now += seconds

    @rule(
        caller=callers,
        language=st.sampled_from(["ru", "ru", "uk", "en"]),
        kind=st.sampled_from(ALL_KINDS),
        priority=st.sampled_from([0, 30, 120]),
        ago=st.sampled_from([0.0, 5.0, 60.0]),
        twice=st.booleans(),
    )
    def join(self, caller, language, kind, priority, ago, twice):
        for _ in range(2 if twice else 1):
            try:
                position = self.core.enqueue(
                    caller, language=language, kind=kind, priority=priority,
                    enqueued_at=self.now - ago,
                )  # fmt: skip
            except QueueFull:
                assert caller not in self.alive and self.core.waiting_count() >= 10
                return
            self.alive.add(caller)
            state = self.core.caller_state(caller)
            assert (position >= 1) == (state == "waiting")

    @rule(caller=callers, twice=st.booleans())
    def leave(self, caller, twice):
        for _ in range(2 if twice else 1):
            before = self.core.caller_state(caller)
            removed = self.core.remove(caller, now=self.now)
            assert removed.previous == before
            if before in ("waiting", "offered"):
                self.alive.discard(caller)
                assert removed.removed and self.core.caller_state(caller) is None
            for hid in removed.handler_ids if removed.removed else ():
                assert self.core.presence(hid)[0] == "available"

    @rule(profile=profiles)
    def change_profile(self, profile):
        self.core.upsert_handler(profile, now=self.now)

    @rule(
        handler=handlers,
        presence=st.sampled_from(["available", "available", "break", "offline", "wrap_up"]),
        dispatch=st.booleans(),
    )
    def set_presence(self, handler, presence, dispatch):
        if self.core.redis.exists(self.core.prefix + "h:" + handler):
            change = self.core.set_presence(handler, presence, now=self.now, dispatch=dispatch)
            if change.withdrawn:
                assert self.core.caller_state(change.withdrawn) in ("waiting", "offered")

    # -- routing -------------------------------------------------------------------------

    @rule(seed=st.integers(0, 2**31 - 1), max_offers=st.integers(1, 4), twice=st.booleans())
    def dispatch(self, seed, max_offers, twice):
        for _ in range(2 if twice else 1):
            for offer in self.core.dispatch(self.now, max_offers=max_offers, seed=seed):
                if offer.channel == "chat":
                    assert offer.caller_id in self.chats_alive
                    assert self.core.chat_state(offer.caller_id) == "offered"
                    continue
                assert offer.caller_id in self.alive
                assert self.core.caller_state(offer.caller_id) == "offered"
                if self.core.strategy != "ring-all":
                    assert len(offer.handler_ids) == 1

    @rule(data=st.data(), twice=st.booleans())
    def accept(self, data, twice):
        caller, handler = self.pick(data, self.offers())
        for _ in range(2 if twice else 1):
            result = self.core.accept(caller, handler, self.now)
            if result.won:
                assert self.connected.get(caller, handler) == handler
                self.connected[caller] = handler
                for other in result.released:
                    assert self.core.presence(other)[0] == "available"

    @rule(data=st.data(), missed=st.booleans(), twice=st.booleans(), dispatch=st.booleans())
    def decline(self, data, missed, twice, dispatch):
        caller, handler = self.pick(data, self.offers())
        first = self.core.decline(caller, handler, missed=missed, now=self.now, dispatch=dispatch)
        if twice:  # the same decline again: nothing, unless the dispatch offered it anew
            again = self.core.decline(caller, handler, missed=missed, now=self.now)
            assert not again.applied or (dispatch and first.offers)
        if first.applied:
            assert first.handler_presence in ("available", "break")

    @rule(data=st.data(), twice=st.booleans(), wrap_up=st.booleans(), talk=st.floats(0, 600))
    def complete(self, data, twice, wrap_up, talk):
        caller, handler = self.pick(data, list(self.connected.items()))
        for _ in range(2 if twice else 1):
            done = self.core.complete(caller, handler, talk_s=talk, now=self.now, wrap_up=wrap_up)
            if done:
                assert self.connected.pop(caller) == handler
                self.alive.discard(caller)
                self.completed[handler] += 1

    @rule(handler=handlers, twice=st.booleans(), dispatch=st.booleans())
    def end_wrap_up(self, handler, twice, dispatch):
        for _ in range(2 if twice else 1):
            self.core.end_wrap_up(handler, self.now, dispatch=dispatch)

    @rule(caller=callers)
    def requeue(self, caller):
        before = self.core.caller_state(caller)
        result = self.core.requeue(caller, now=self.now)
        assert bool(result) == (before in ("offered", "connected"))
        if result:
            self.connected.pop(caller, None)

    @rule(older_than=st.sampled_from([0.0, 20.0]))
    def expire(self, older_than):
        self.core.expire_offers(self.now, older_than_s=older_than)

    # -- conversations ---------------------------------------------------------------------

    @rule(
        chat=chats,
        language=st.sampled_from(["ru", "ru", "uk", "en"]),
        kind=st.sampled_from(ALL_KINDS),
        priority=st.sampled_from([0, 30, 120]),
        ago=st.sampled_from([0.0, 5.0, 60.0]),
        twice=st.booleans(),
        dispatch=st.booleans(),
    )
    def chat_join(self, chat, language, kind, priority, ago, twice, dispatch):
        for _ in range(2 if twice else 1):
            position, _ = self.core.enqueue_chat(
                chat, language=language, kind=kind, priority=priority,
                enqueued_at=self.now - ago, dispatch=dispatch,
            )  # fmt: skip
            self.chats_alive.add(chat)
            state = self.core.chat_state(chat)
            assert (position >= 1) == (state == "waiting") or dispatch

    @rule(data=st.data(), twice=st.booleans())
    def chat_accept(self, data, twice):
        chat, handler = self.pick_chat(data, self.chat_offers())
        for _ in range(2 if twice else 1):
            result = self.core.accept_chat(chat, handler, self.now)
            if result.won:
                assert self.chats_open.get(chat, handler) == handler
                if chat not in self.chats_open:
                    self.chats_accepted[handler] += 1
                self.chats_open[chat] = handler
                assert self.core.presence(handler)[0] == "available"

    @rule(data=st.data(), missed=st.booleans(), twice=st.booleans(), dispatch=st.booleans())
    def chat_decline(self, data, missed, twice, dispatch):
        chat, handler = self.pick_chat(data, self.chat_offers())
        first = self.core.decline_chat(
            chat, handler, missed=missed, now=self.now, dispatch=dispatch
        )
        if twice:
            again = self.core.decline_chat(chat, handler, missed=missed, now=self.now)
            assert not again.applied or (dispatch and first.offers)
        if first.applied:
            assert first.handler_presence in ("available", "break")
            assert first.caller_state in ("waiting", "offered")

    @rule(data=st.data(), twice=st.booleans(), dispatch=st.booleans())
    def chat_end(self, data, twice, dispatch):
        chat, handler = self.pick_chat(data, list(self.chats_open.items()))
        for _ in range(2 if twice else 1):
            if self.core.end_chat(chat, handler, now=self.now, dispatch=dispatch):
                assert self.chats_open.pop(chat) == handler
                self.chats_alive.discard(chat)

    @rule(chat=chats)
    def chat_leave(self, chat):
        before = self.core.chat_state(chat)
        removed = self.core.remove_chat(chat, now=self.now)
        assert removed.previous == before
        if before in ("waiting", "offered"):
            self.chats_alive.discard(chat)
            assert removed.removed and self.core.chat_state(chat) is None

    @rule(chat=chats)
    def chat_requeue(self, chat):
        before = self.core.chat_state(chat)
        result = self.core.requeue_chat(chat, now=self.now)
        assert bool(result) == (before in ("offered", "connected"))
        if result:
            self.chats_open.pop(chat, None)
            assert self.core.chat_state(chat) == "waiting"

    @rule(older_than=st.sampled_from([0.0, 20.0]), dispatch=st.booleans())
    def chat_expire(self, older_than, dispatch):
        self.core.expire_chat_offers(self.now, older_than_s=older_than, dispatch=dispatch)

    # -- invariants ----------------------------------------------------------------------

    @invariant()
    def consistent(self):
        if self.core is None:
            return
        snap = check_invariants(self.core)
        assert set(snap["callers"]) == self.alive
        connected = {c: v["h"] for c, v in snap["callers"].items() if v["st"] == "connected"}
        assert connected == self.connected
        for hid, handler in snap["handlers"].items():
            assert int(handler["calls"]) == self.completed[hid], "a call counted twice or lost"
            accepted = int(handler.get("cn") or 0)
            assert accepted == self.chats_accepted[hid], "a conversation counted twice or lost"
        assert set(snap["chats"]) == self.chats_alive
        held = {m: v["h"] for m, v in snap["chats"].items() if v["st"] == "connected"}
        assert held == self.chats_open


def test_routing_state_machine(redis_url):
    run_state_machine_as_test(
        lambda: RoutingMachine(redis_url),
        settings=settings(
            max_examples=150,
            stateful_step_count=40,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
