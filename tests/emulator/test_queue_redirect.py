"""A queued call taken out of its queue over REST requests its ``<Enqueue action>`` with
``QueueResult=redirected`` (and the answer is ignored); ``Calls.create`` answers ``queued``.

Twilio's ``<Enqueue>`` page: "In the case where a call is dequeued due to a REST API request or
the <Leave> verb, the action URL is requested right away", and among the QueueResult values
"redirected: The call was redirected out of the queue, typically by a REST API request".
"""

from __future__ import annotations

import pytest

from .conftest import CALLER, HOTLINE
from .scripted_app import twiml

HANDLER = "+15557770001"
ENQUEUE = twiml('<Enqueue waitUrl="/wait" action="/queue-action">support</Enqueue>')
WAIT = twiml('<Say>Please hold</Say><Pause length="20"/>')


def _queued_caller(emu, twiml_app):
    twiml_app.route("/voice", ENQUEUE)
    twiml_app.route("/wait", WAIT)
    twiml_app.route("/queue-action", twiml("<Say>from the action</Say>"))
    twiml_app.route("/picked", twiml("<Say>You are connected</Say>"))
    caller = emu.dial(CALLER, HOTLINE)
    assert caller.activity == "queue"
    caller.wait(7)
    return caller


@pytest.mark.parametrize("order", ["before", "after"])
def test_a_calls_redirect_requests_the_enqueue_action_with_redirected(
    emu, twiml_app, hotline, twilio_client, order
):
    """ "In the case where a call is dequeued due to a REST API request or the <Leave> verb,
    the action URL is requested right away" — ``QueueResult=redirected`` ("the call was
    redirected out of the queue, typically by a REST API request"), with ``QueueSid`` and
    ``QueueTime`` ("only available if the call was actually enqueued"). The call runs the
    redirect's URL, not the action's answer; the order of the two requests, which Twilio does
    not document, is the emulator's option."""
    emu.queue_redirect_action = order
    caller = _queued_caller(emu, twiml_app)
    twilio_client.calls(caller.sid).update(url=twiml_app.url("/picked"), method="POST")
    caller.listen()
    emu.settle()
    (action,) = twiml_app.forms("/queue-action")
    assert action["QueueResult"] == "redirected"
    assert action["QueueSid"] == twiml_app.forms("/wait")[0]["QueueSid"]
    assert int(action["QueueTime"]) >= 7
    assert action["CallSid"] == caller.sid and action["CallStatus"] == "in-progress"
    paths = [h.path for h in twiml_app.hits if h.path in ("/queue-action", "/picked")]
    expected = ["/queue-action", "/picked"] if order == "before" else ["/picked", "/queue-action"]
    assert paths == expected
    assert "from the action" not in caller.said_texts()
    assert caller.said_texts()[-1] == "You are connected"
    assert twilio_client.queues.list()[0].current_size == 0


def test_a_members_dequeue_requests_the_enqueue_action_with_redirected(
    emu, twiml_app, hotline, twilio_client
):
    """ "Updating a Member resource dequeues the member to begin executing the TwiML document at
    that URL" (Member resource), and "In the case where a call is dequeued due to a REST API
    request ... the action URL is requested right away" (``<Enqueue>``): QueueResult
    ``redirected``, the action's own TwiML not played."""
    caller = _queued_caller(emu, twiml_app)
    (queue,) = twilio_client.queues.list()
    twilio_client.queues(queue.sid).members(caller.sid).update(
        url=twiml_app.url("/picked"), method="POST"
    )
    caller.listen()
    emu.settle()
    (action,) = twiml_app.forms("/queue-action")
    assert action["QueueResult"] == "redirected" and action["QueueSid"] == queue.sid
    assert caller.said_texts()[-1] == "You are connected"
    assert "from the action" not in caller.said_texts()


def test_an_inline_twiml_redirect_also_requests_the_action(emu, twiml_app, hotline, twilio_client):
    """A REST update with ``Twiml`` takes the call out of the queue as a ``Url`` does: the
    action is requested "right away" with ``redirected``; the call runs the given TwiML."""
    emu.queue_redirect_action = "after"
    caller = _queued_caller(emu, twiml_app)
    twilio_client.calls(caller.sid).update(twiml="<Response><Say>Inline</Say></Response>")
    caller.listen()
    emu.settle()
    assert [f["QueueResult"] for f in twiml_app.forms("/queue-action")] == ["redirected"]
    assert caller.said_texts()[-1] == "Inline"


def test_a_failing_action_does_not_disturb_the_redirect(emu, twiml_app, hotline, twilio_client):
    """The action's answer is not used after a REST redirect, so its failure (HTTP 500) is
    only a warning in the debugger: the call still runs the redirect's URL."""
    caller = _queued_caller(emu, twiml_app)
    twiml_app.route("/queue-action", "boom", status=500)
    twilio_client.calls(caller.sid).update(url=twiml_app.url("/picked"), method="POST")
    caller.listen()
    emu.settle()
    assert caller.said_texts()[-1] == "You are connected"
    assert any(e["url"] and e["url"].endswith("/queue-action") for e in emu.debugger)


def test_leave_still_runs_the_actions_twiml(emu, twiml_app, hotline):
    """``<Leave>`` is the other "right away" case, but there the call continues with the
    action's TwiML (QueueResult ``leave``), unlike a REST redirect."""
    twiml_app.route("/voice", ENQUEUE)
    twiml_app.route("/wait", twiml("<Leave/>"))
    twiml_app.route("/queue-action", lambda f: twiml(f"<Say>result {f['QueueResult']}</Say>"))
    caller = emu.dial(CALLER, HOTLINE)
    assert caller.said_texts() == ["result leave"]


def test_the_order_option_takes_only_known_values(emu):
    """Only the two orders the tests try."""
    with pytest.raises(ValueError):
        emu.queue_redirect_action = "sometimes"
    assert emu.queue_redirect_action == "before"


def test_calls_create_answers_queued_then_the_call_rings(emu, twiml_app, twilio_client):
    """ "All new calls are created with a status of queued, indicating Twilio plans to make the
    dial", then "A short time later Twilio dials the call, and the status is updated to
    ringing" (Twilio, "What do the call statuses mean?"). Status callbacks only for the events
    asked for ("For every call progress event specified in the StatusCallbackEvent parameter,
    Twilio will make an asynchronous webhook"): by default ``completed`` only."""
    twiml_app.route("/cb", "")
    created = twilio_client.calls.create(
        to=HANDLER, from_=HOTLINE, twiml="<Response><Say>hi</Say></Response>",
        status_callback=twiml_app.url("/cb"),
    )  # fmt: skip
    assert created.status == "queued"
    leg = emu.phone(HANDLER).wait_for_ring()
    assert twilio_client.calls(created.sid).fetch().status == "ringing"
    leg.answer()
    emu.settle()
    assert twilio_client.calls(created.sid).fetch().status == "completed"
    assert [f["CallStatus"] for f in twiml_app.forms("/cb")] == ["completed"]


def test_calls_create_answers_queued_with_every_event_requested(emu, twiml_app, twilio_client):
    """ "Outbound calls initiated via the REST API cycle through these states in order: Queued
    ... Initiated ... Ringing ... In-progress ... Completed" (Twilio support, "Tracking the
    Status of an Outbound Twilio Voice Call"): the create answer is ``queued``, the callbacks
    asked for follow in order."""
    twiml_app.route("/cb", "")
    created = twilio_client.calls.create(
        to=HANDLER, from_=HOTLINE, twiml="<Response><Say>hi</Say></Response>",
        status_callback=twiml_app.url("/cb"),
        status_callback_event=["initiated", "ringing", "answered", "completed"],
    )  # fmt: skip
    assert created.status == "queued"
    emu.phone(HANDLER).wait_for_ring().answer()
    emu.settle()
    statuses = [f["CallStatus"] for f in twiml_app.forms("/cb")]
    assert statuses == ["initiated", "ringing", "in-progress", "completed"]
