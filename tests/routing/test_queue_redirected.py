"""The Enqueue action with ``QueueResult=redirected``: the caller was taken out of the queue
over REST (on Twilio: "In the case where a call is dequeued due to a REST API request or the
<Leave> verb, the action URL is requested right away"). The hotline does that only after an
accept; it is never a leave, an abandon or the message box."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from inquiries.models import CallEvent
from routing.models import QueueEntry
from routing.service import routing_core
from tests.conftest import call_params, new_call_sid, path_of

from .test_queue import CALLER, ask_for_a_person, entries, on_duty


@pytest.fixture
def core(svc):
    return routing_core(svc.settings, svc.redis)


QUEUE_EXITS = ("ABANDON", "EXITWITHKEY", "EXITWITHTIMEOUT", "OVERFLOW")


def _events(svc, interaction_id: int) -> list[str]:
    with svc.session_factory() as session:
        return list(
            session.scalars(
                select(CallEvent.event).where(CallEvent.interaction_id == interaction_id)
            )
        )


def test_redirected_while_still_waiting_records_nothing_and_keeps_the_place(
    app, carrier, svc, core
):
    """No accept yet (a redirect the hotline did not make, or a late request): the caller is
    not marked as left or abandoned, stays in the routing core, and the answer is empty TwiML
    (Twilio runs the redirect's URL and ignores it); no message box, no call-back request."""
    on_duty(app, svc, core)
    sid = new_call_sid()
    ask_for_a_person(carrier, sid)
    (entry,) = entries(svc)
    action = carrier.twiml(
        "/routing/queue-action",
        call_params(sid, CALLER, QueueResult="redirected", QueueSid="QU" + "1" * 32, QueueTime="9"),
    )
    assert list(action) == []
    (after,) = entries(svc)
    assert after.state == "waiting" and after.ended_at is None
    assert core.caller_state(str(entry.interaction_id)) == "waiting"
    assert not set(QUEUE_EXITS) & set(_events(svc, entry.interaction_id))


def test_redirected_after_an_accept_answers_the_same_conference_join(app, carrier, svc, core):
    """After an accept (the entry committed ``connected`` before the REST redirect), the
    action's answer is the conference join ``/routing/join`` gives: ignored by Twilio, and
    harmless were it used. Nothing is recorded; a retried request changes nothing."""
    on_duty(app, svc, core)
    sid = new_call_sid()
    ask_for_a_person(carrier, sid)
    (entry,) = entries(svc)
    with svc.session_factory() as session:
        session.execute(
            update(QueueEntry).where(QueueEntry.id == entry.id).values(state="connected")
        )
        session.commit()
    params = call_params(sid, CALLER, QueueResult="redirected", QueueTime="12")
    joined = carrier.twiml(f"/routing/join?caller={entry.interaction_id}", call_params(sid))
    for _ in range(2):
        action = carrier.twiml("/routing/queue-action", params)
        dial = action.find("Dial")
        assert dial is not None
        conference = dial.find("Conference")
        assert conference.text == joined.find("Dial").find("Conference").text
        assert conference.get("participantLabel") == "caller"
        assert path_of(dial.get("action")) == f"/routing/caller-done?caller={entry.interaction_id}"
        assert action.find("Record") is None
    (after,) = entries(svc)
    assert after.state == "connected"
    assert not set(QUEUE_EXITS) & set(_events(svc, entry.interaction_id))
