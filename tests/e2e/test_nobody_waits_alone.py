"""Nobody waits alone in a case's conference: a conference starts only with two participants in
it, so a participant alone hears the wait music and nothing else. When the handler who pressed 1
is gone before their conference TwiML runs (their leg ended while ``/routing/offer-key`` was
answered: Twilio then drops the TwiML), no participant-leave ever comes for them; the caller,
already moved into the conference, would wait there alone.

The emulator runs an answered document to its first wait before it notices a hang-up, so the
test plays the carrier for that one request: it sends the handler's ``/routing/offer-key``
(Digits=1) itself, signed as Twilio signs it, and then ends the handler's leg in the emulator.
The caller's side (moved out of the queue over REST, into the conference) is the emulator's.

Not covered here: the caller gone between the REST redirect and the conference (the emulator
cannot end a call while its next document is being fetched), see docs/ARCHITECTURE.md.
"""

from __future__ import annotations

import requests
from sqlalchemy import select

from db import db_session
from inquiries.models import Interaction
from routing.models import Offer
from services import services
from tests.conftest import ACCOUNT_SID, sign
from tests.e2e.test_call_ends import outcome
from tests.e2e.test_routing_calls import (
    FLOW,
    HANDLER_A,
    add_handler,
    drain,
    entry,
    names,
    queued_caller,
)

BOX_PROMPT = FLOW.text("ru", "operators_busy")


def carrier_post(url: str, params: dict[str, str]) -> requests.Response:
    reply = requests.post(
        url, data=params, headers={"X-Twilio-Signature": sign(url, params)}, timeout=10
    )
    assert reply.status_code == 200, (url, reply.status_code)
    return reply


def conference_statuses(hotline, iid: int) -> list[str]:
    with hotline.app.app_context():
        held = services().twilio.conferences.list(friendly_name=f"case-{iid}")
        return [c.status for c in held]


def accepted_then_gone(hotline):
    """A caller waits; the handler answers the offer, the carrier asks the app about their 1,
    and the handler's leg ends before the answer runs."""
    handler_id = add_handler(hotline, HANDLER_A, "Anna")
    call = queued_caller(hotline)
    drain(hotline)
    leg = hotline.emulator.phone(HANDLER_A).answer()
    assert leg.activity == "gather"
    action = leg.gather_options["action"]
    params = {
        "CallSid": leg.sid, "AccountSid": ACCOUNT_SID, "From": hotline.number, "To": HANDLER_A,
        "CallStatus": "in-progress", "Direction": "outbound-api", "ApiVersion": "2010-04-01",
        "Digits": "1",
    }  # fmt: skip
    reply = carrier_post(action, params)
    assert "<Conference" in reply.text  # what the handler's leg would have run
    hotline.emulator.settle()
    iid = entry(hotline, call.sid).interaction_id
    assert call.activity == "conference"  # the caller, moved in, waits for the handler
    assert conference_statuses(hotline, iid) == ["init"]
    leg.hang_up()
    hotline.emulator.settle()
    call.listen()  # what the caller hears next plays out
    return handler_id, call, leg, iid


def test_a_handler_gone_before_joining_leaves_no_caller_alone_in_the_conference(hotline):
    """The handler pressed 1 and hung up before reaching the conference; the caller had already
    been moved in. The end is recorded once as the handler's (COMPLETEAGENT), the handler goes
    to wrap-up once, the conference ends, and the caller gets the message box with a call-back
    request instead of the wait music forever."""
    handler_id, call, leg, iid = accepted_then_gone(hotline)
    assert leg.ended
    assert not call.ended and call.activity == "record"  # the message box, not the conference
    assert BOX_PROMPT in call.said_texts()
    assert conference_statuses(hotline, iid) == ["completed"]
    assert "CALLBACK_REQUESTED" in names(hotline, call.sid)
    ended = outcome(hotline, handler_id, call.sid)
    assert ended == {"ends": ["COMPLETEAGENT"], "entry": "done", "handler_calls": 1,
                     "presence": "wrap_up", "handled": 1, "connected": 1}  # fmt: skip
    call.hang_up()
    hotline.emulator.settle()
    assert outcome(hotline, handler_id, call.sid) == ended  # the caller's end adds nothing
    with hotline.app.app_context():
        assert db_session().scalar(select(Offer.state)) == "accepted"
        db_session().rollback()


def test_a_caller_reaching_the_conference_after_the_call_ended_gets_the_message_box(hotline):
    """The caller's ``/routing/join`` comes after the call was already ended (the handler was
    gone before either of them joined): no conference to wait alone in, the message box."""
    handler_id, call, _leg, iid = accepted_then_gone(hotline)
    with hotline.app.app_context():
        sid = db_session().scalar(select(Interaction.provider_sid).where(Interaction.id == iid))
        db_session().rollback()
    url = f"{hotline.settings.public_base_url}/routing/join?caller={iid}"
    params = {
        "CallSid": sid, "AccountSid": ACCOUNT_SID, "From": "+79161234567", "To": hotline.number,
        "CallStatus": "in-progress", "Direction": "inbound", "ApiVersion": "2010-04-01",
    }  # fmt: skip
    reply = carrier_post(url, params)
    assert "<Conference" not in reply.text and "<Record" in reply.text
    assert outcome(hotline, handler_id, call.sid)["ends"] == ["COMPLETEAGENT"]
    call.hang_up()
    hotline.emulator.settle()
