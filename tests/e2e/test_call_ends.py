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

import time

from sqlalchemy import select

from db import db_session
from routing.jobs import tick
from routing.models import Offer
from tests.e2e.test_routing_calls import (
    HANDLER_A,
    add_handler,
    drain,
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
