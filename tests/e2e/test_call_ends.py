"""How routed calls end, end to end: a handler's answered offer leg is really hung up when the
offer goes away (Twilio's ``Status=canceled`` leaves an answered call up), and a connected call's
end is recorded once whichever of the carrier's end-of-call requests arrive, in whatever order.

Twilio's documentation does not say whether a caller who hangs up inside a conference reached by
``<Dial>`` makes it request that ``<Dial>``'s action (``/routing/caller-done``); the emulator's
``dial_action_on_caller_hangup`` sends it or not, before or after the call's status callback,
and the tests run each way. Every webhook the emulator sent is then sent again, in reverse order
(the carrier may repeat and reorder them): nothing is counted twice.
"""

from __future__ import annotations

import datetime as dt
import time
from urllib.parse import urlsplit

import pytest
import requests
from sqlalchemy import select, update

from db import db_session
from inquiries.models import Interaction, utcnow
from routing.jobs import tick
from routing.metrics import queue_metrics
from routing.models import Offer, QueueEntry
from routing.prompts import text as routing_text
from routing.service import routing_core
from tests.conftest import sign
from tests.e2e.test_callbacks import CALLER, ask_for_callback, callbacks_now
from tests.e2e.test_routing_calls import (
    HANDLER_A,
    add_handler,
    drain,
    entry,
    events,
    names,
    queued_caller,
)
from tests.support import handles


def offered_and_answered(hotline):
    """A caller waits, the handler's phone rings, they answer: the whisper, waiting for 1."""
    add_handler(hotline, HANDLER_A, "Anna")
    call = queued_caller(hotline)
    drain(hotline)
    leg = hotline.emulator.phone(HANDLER_A).answer()
    assert leg.activity == "gather" and "нажмите 1" in " ".join(leg.said_texts())
    return call, leg


def offer_states(hotline) -> list[str]:
    with hotline.app.app_context():
        return [o.state for o in db_session().scalars(select(Offer).order_by(Offer.id))]


def test_the_caller_abandoning_during_the_whisper_hangs_up_the_handlers_leg(hotline):
    """The caller hangs up while the handler hears the whisper: the offer is withdrawn and the
    handler's answered leg ends at the carrier (``canceled`` alone would leave it up, and 1
    would then say the call was taken by someone else)."""
    call, leg = offered_and_answered(hotline)
    call.hang_up()
    hotline.emulator.settle()
    assert "ABANDON" in names(hotline, call.sid) and "RINGCANCELED" in names(hotline, call.sid)
    assert offer_states(hotline) == ["canceled"]
    assert leg.ended and hotline.emulator.call(leg.sid).status == "completed"
    assert "CONNECT" not in names(hotline, call.sid)


def test_an_offer_expiring_during_the_whisper_hangs_up_the_handlers_leg(hotline):
    """The offer outlives its ring time plus grace (its end never reported) while the handler
    is still in the whisper: the tick counts it missed and ends the answered leg."""
    svc = handles(hotline.app)
    svc.settings = svc.settings.replace(routing_offer_timeout_s=1, routing_offer_grace_s=0)
    call, leg = offered_and_answered(hotline)
    time.sleep(1.2)  # expiry runs on the app's (real) clock
    with hotline.app.app_context():
        assert tick()["expired"] == 1
    hotline.emulator.settle()
    assert offer_states(hotline)[0] == "missed"
    expired = [e for e in events(hotline, call.sid) if e.event == "RINGNOANSWER"]
    assert [e.data.get("why") for e in expired] == ["expired"]
    assert leg.ended and hotline.emulator.call(leg.sid).status == "completed"
    call.hang_up()


END_EVENTS = ("COMPLETECALLER", "COMPLETEAGENT")
FLOW_TEXT_GONE = routing_text("ru", "caller_gone")
#: The app's webhooks that may tell a connected call's end.
END_PATHS = ("/routing/caller-done", "/routing/conference", "/routing/offer-status",
             "/routing/callback-status", "/voice/status")  # fmt: skip


def connected(hotline, kind: str):
    """A caller and a handler talking in the case's conference: the caller's call (whose
    case it is), the caller's leg in the conference (that call, or the call-back) and the
    handler's leg."""
    if kind == "callback":
        callbacks_now(hotline)
    handler_id = add_handler(hotline, HANDLER_A, "Anna")
    call = ask_for_callback(hotline) if kind == "callback" else queued_caller(hotline)
    drain(hotline)
    leg = hotline.emulator.phone(HANDLER_A).answer()
    leg.press("1")
    hotline.emulator.settle()
    caller_leg = call
    if kind == "callback":
        phone = hotline.emulator.phone(CALLER)
        caller_leg = phone.answer(phone.wait_for_ring())
        caller_leg.press("1")
        hotline.emulator.settle()
    assert caller_leg.activity == "conference" and leg.activity == "conference"
    return handler_id, call, caller_leg, leg


def outcome(hotline, handler_id: int, sid: str) -> dict[str, object]:
    """What the end of the call left: its end events, the entry, the handler in the core and
    the day's metrics."""
    ends = [n for n in names(hotline, sid) if n in END_EVENTS]
    state = entry(hotline, sid).state
    with hotline.app.app_context():
        svc = handles(hotline.app)
        handler = routing_core(svc.settings, svc.redis).snapshot()["handlers"][str(handler_id)]
        now = dt.datetime.now(dt.UTC)
        session = db_session()
        metrics = queue_metrics(session, now - dt.timedelta(hours=1), now, now=now)
        session.rollback()  # read only: no lock kept
    return {
        "ends": ends, "entry": state, "handler_calls": int(handler["calls"]),
        "presence": handler["pr"], "handled": metrics.handled,
        "connected": metrics.answered + metrics.callbacks_connected,
    }  # fmt: skip


def replay_reversed(sent: list[tuple[str, dict[str, str]]]) -> int:
    """Send the end-of-call webhooks again, signed as the carrier signs them, last first."""
    again = [(url, params) for url, params in sent if urlsplit(url).path in END_PATHS]
    for url, params in reversed(again):
        reply = requests.post(url, data=params, headers={"X-Twilio-Signature": sign(url, params)},
                              timeout=10)  # fmt: skip
        assert reply.status_code == 200, (url, reply.status_code)
    return len(again)


@pytest.mark.parametrize("dial_action", [False, "before-status", "after-status"])
@pytest.mark.parametrize("who", ["caller", "handler"])
@pytest.mark.parametrize("kind", ["live", "callback"])
def test_a_connected_calls_end_is_recorded_once(hotline, kind, who, dial_action):
    """A live caller or a call-back; whoever hangs up; whether the caller's ``<Dial>`` action
    comes after a caller's hang-up, before or after the call's status callback: the call ends
    once: one
    COMPLETECALLER or COMPLETEAGENT naming who hung up, the queue entry done, the handler to
    wrap-up once and one call counted for them and in the metrics; every end-of-call webhook
    sent again in reverse order changes nothing."""
    hotline.emulator.dial_action_on_caller_hangup = dial_action
    sent: list[tuple[str, dict[str, str]]] = []
    hotline.emulator.observe(webhook_answer=lambda url, params, reply: sent.append((url, params)))
    handler_id, call, caller_leg, leg = connected(hotline, kind)
    (caller_leg if who == "caller" else leg).hang_up()
    hotline.emulator.settle()
    assert caller_leg.ended and leg.ended
    paths = [urlsplit(url).path for url, _ in sent]
    assert ("/routing/caller-done" in paths) == (who == "handler" or bool(dial_action))
    expected_end = "COMPLETECALLER" if who == "caller" else "COMPLETEAGENT"
    ended = outcome(hotline, handler_id, call.sid)
    assert ended == {"ends": [expected_end], "entry": "done", "handler_calls": 1,
                     "presence": "wrap_up", "handled": 1, "connected": 1}  # fmt: skip
    drain(hotline)  # the wrap-up (0 s here) ends
    assert outcome(hotline, handler_id, call.sid)["presence"] == "available"

    assert replay_reversed(sent) >= 3
    drain(hotline)
    assert outcome(hotline, handler_id, call.sid) == {**ended, "presence": "available"}


def test_an_accept_racing_the_callers_hang_up_ends_the_call_once(hotline):
    """The caller hangs up at the moment the handler presses 1: the Enqueue action has claimed
    the queue entry (ABANDON) but not yet taken the caller out of the routing core, so the core
    still grants the accept. (The interleaving is made here by writing the entry's claim as the
    Enqueue action would, before the key.) The call ended once, as an abandon: no CONNECT and
    no COMPLETE*, the handler hears that the caller has gone and is free again, the caller is
    out of the core; the Enqueue action arriving afterwards changes nothing."""
    call, leg = offered_and_answered(hotline)
    with hotline.app.app_context():
        session = db_session()
        session.execute(
            update(QueueEntry)
            .where(QueueEntry.interaction_id == select(Interaction.id)
                   .where(Interaction.provider_sid == call.sid).scalar_subquery())
            .values(state="abandoned", ended_at=utcnow())
        )  # fmt: skip
        session.commit()
    leg.press("1")
    hotline.emulator.settle()
    assert FLOW_TEXT_GONE in leg.said_texts() and leg.ended
    assert entry(hotline, call.sid).state == "abandoned"
    got = names(hotline, call.sid)
    assert "CONNECT" not in got and not set(END_EVENTS) & set(got)
    assert offer_states(hotline) == ["lost"]
    caller_id = entry(hotline, call.sid).interaction_id
    with hotline.app.app_context():
        svc = handles(hotline.app)
        core = routing_core(svc.settings, svc.redis)
        handler_id = db_session().scalar(select(Offer.handler_id))
        db_session().rollback()
        assert core.presence(str(handler_id))[0] == "available"
        assert core.caller_state(str(caller_id)) is None
    call.hang_up()
    hotline.emulator.settle()
    assert entry(hotline, call.sid).state == "abandoned"
    assert "CONNECT" not in names(hotline, call.sid)


def test_the_handler_leaving_while_the_called_back_caller_hears_the_greeting_ends_that_leg(
    hotline,
):
    """A call-back: the caller has answered and hears the neutral greeting when the handler
    hangs up. The attempt fails (``handler-left``) and the caller's answered leg is ended at
    the carrier, not left to press 1 into nothing."""
    callbacks_now(hotline)
    add_handler(hotline, HANDLER_A, "Anna")
    first = ask_for_callback(hotline)
    drain(hotline)
    leg = hotline.emulator.phone(HANDLER_A).answer()
    leg.press("1")
    hotline.emulator.settle()
    phone = hotline.emulator.phone(CALLER)
    back = phone.answer(phone.wait_for_ring())
    assert back.activity == "gather"  # the greeting waits for 1
    leg.hang_up()
    hotline.emulator.settle()
    tries = [e.data for e in events(hotline, first.sid) if e.event == "CALLBACK_ATTEMPT"]
    assert [t["result"] for t in tries] == ["handler-left"]
    assert back.ended and hotline.emulator.call(back.sid).status == "completed"
