"""More wrap-up (the handler's page, "More time"): an extended wrap-up is not ended by the
end-of-wrap-up job that was due before it, so no caller is offered to the handler until its new
end; then the same step makes them available and offers the next caller."""

from __future__ import annotations

from routing.core import RoutingCore
from tests.routing import add_handler, check_invariants, join


def on_a_call_until(core: RoutingCore, caller_id: str, handler_id: str, end: float) -> None:
    join(core, caller_id, end - 20)
    core.dispatch(end - 19)
    assert core.accept(caller_id, handler_id, end - 18).won
    assert core.complete(caller_id, handler_id, talk_s=18, now=end).presence == "wrap_up"


def test_an_extended_wrap_up_delays_the_next_offer(core):
    add_handler(core, "h1", now=0)
    on_a_call_until(core, "c1", "h1", 100)
    join(core, "c2", 101)  # waits: h1 is the only handler
    assert core.wrap_up_until("h1") is None
    assert core.extend_wrap_up("h1", 190) == 190
    assert core.extend_wrap_up("h1", 150) == 190  # an earlier end never shortens it
    assert core.wrap_up_until("h1") == 190

    early = core.end_wrap_up("h1", 130, dispatch=True)  # the job due at the old end
    assert (early.previous, early.current, early.offers) == ("wrap_up", "wrap_up", ())
    assert core.presence("h1") == ("wrap_up", None) and core.caller_state("c2") == "waiting"
    assert core.dispatch(160) == []

    late = core.end_wrap_up("h1", 189.5, dispatch=True)  # a second of slack for clocks
    assert late.current == "available" and core.presence("h1")[0] == "offered"
    assert [(o.caller_id, o.handler_ids) for o in late.offers] == [("c2", ("h1",))]
    check_invariants(core)


def test_only_a_wrap_up_is_extended_and_the_next_one_starts_afresh(core):
    add_handler(core, "h1", now=0)
    assert core.extend_wrap_up("h1", 50) is None  # available: nothing to extend
    assert core.presence("h1") == ("available", None) and core.wrap_up_until("h1") is None
    on_a_call_until(core, "c1", "h1", 100)
    core.extend_wrap_up("h1", 400)
    assert core.set_presence("h1", "available", now=120).current == "available"  # back early
    on_a_call_until(core, "c2", "h1", 200)
    assert core.wrap_up_until("h1") is None  # the old extension does not hold the new wrap-up
    assert core.end_wrap_up("h1", 230).current == "available"
    check_invariants(core)
