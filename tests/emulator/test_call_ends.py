"""How calls end: ``Status=canceled|completed`` on a call in each state, and the emulator's option
for what Twilio's documentation leaves open, the ``<Dial>`` action when a caller hangs up inside
a conference reached by ``<Dial>``."""

from __future__ import annotations

import pytest

from emulator import Emulator

from .conftest import CALLER, HOTLINE
from .scripted_app import twiml

HANDLER = "+15557770001"
WHISPER = twiml('<Gather timeout="60"><Say>A caller waits. Press 1.</Say></Gather>')


def test_canceled_does_not_end_an_answered_call_completed_does(emu, twiml_app, twilio_client):
    """Twilio's Call resource, ``Status``: "Specifying `canceled` will attempt to hang up calls
    that are queued or ringing; however, it will not affect calls already in progress.
    Specifying `completed` will attempt to hang up a call even if it's already in progress."
    (https://www.twilio.com/docs/voice/api/call-resource#update-a-call-resource)"""
    twiml_app.route("/whisper", WHISPER)
    created = twilio_client.calls.create(to=HANDLER, from_=HOTLINE, url=twiml_app.url("/whisper"))
    leg = emu.phone(HANDLER).wait_for_ring().answer()
    assert leg.activity == "gather"
    updated = twilio_client.calls(created.sid).update(status="canceled")
    emu.settle()
    assert updated.sid == created.sid  # a success, without effect
    assert not leg.ended and twilio_client.calls(created.sid).fetch().status == "in-progress"
    twilio_client.calls(created.sid).update(status="completed")
    emu.settle()
    assert leg.ended and twilio_client.calls(created.sid).fetch().status == "completed"


def test_completed_also_ends_a_ringing_call(emu, twilio_client):
    """Same sentence: ``completed`` hangs up a call "even if it's already in progress", so a
    call still ringing too; it was never answered, and ends ``canceled`` as a ringing call
    hung up before an answer does."""
    created = twilio_client.calls.create(to=HANDLER, from_=HOTLINE, twiml="<Response/>")
    emu.phone(HANDLER).wait_for_ring()
    twilio_client.calls(created.sid).update(status="completed")
    emu.settle()
    assert emu.phone(HANDLER).ringing() == []
    assert twilio_client.calls(created.sid).fetch().status == "canceled"


def conference_app(twiml_app) -> None:
    twiml_app.route(
        "/voice", twiml('<Dial action="/dial-done"><Conference>room-9</Conference></Dial>')
    )
    twiml_app.route("/dial-done", twiml("<Say>ignored</Say>"))


def test_by_default_a_caller_hanging_up_in_a_dialed_conference_requests_no_action(
    emu, twiml_app, hotline
):
    """Twilio's ``<Dial>``: "Twilio will make a GET or POST request to the action URL (if
    provided) when the <Dial> call ends." It does not say whether the caller's own hang-up
    inside a ``<Conference>`` ends "the <Dial> call" in that sense; by default the emulator
    requests no action then (``dial_action_on_caller_hangup=False``)."""
    conference_app(twiml_app)
    caller = emu.dial(CALLER, HOTLINE)
    assert caller.activity == "conference"
    caller.hang_up()
    emu.settle()
    assert twiml_app.hits_to("/dial-done") == []
    assert [f["CallStatus"] for f in twiml_app.forms("/status")] == ["completed"]


@pytest.mark.parametrize("when", [True, "before-status", "after-status"])
def test_the_option_requests_the_action_before_or_after_the_status_callback(
    emu, twiml_app, hotline, when
):
    """The other reading of the same sentence: with ``dial_action_on_caller_hangup`` the
    action is requested once, ``CallStatus=completed`` (the caller is gone: what it answers
    is ignored) and ``DialCallStatus=answered`` (the value Twilio's ``<Dial>`` page lists for a
    call that was connected to a conference), on
    the call's own ordered callbacks before (``True``, ``"before-status"``) or after
    (``"after-status"``) its ``completed`` status callback, so an app's tests try both."""
    emu.dial_action_on_caller_hangup = when
    conference_app(twiml_app)
    caller = emu.dial(CALLER, HOTLINE)
    assert caller.activity == "conference"
    caller.hang_up()
    emu.settle()
    (action,) = twiml_app.forms("/dial-done")
    assert action["CallSid"] == caller.sid
    assert action["CallStatus"] == "completed" and action["DialCallStatus"] == "answered"
    assert caller.said_texts() == []  # its TwiML is not run: the caller is gone
    order = [h.path for h in twiml_app.hits if h.path in ("/dial-done", "/status")]
    expected = ["/status", "/dial-done"] if when == "after-status" else ["/dial-done", "/status"]
    assert order == expected
    assert caller.wait_until_finished() == "completed"


def test_the_option_takes_only_its_values():
    with pytest.raises(ValueError):
        Emulator(dial_action_on_caller_hangup="sometimes")


def test_the_standalone_emulator_takes_the_option():
    """``python -m emulator --dial-action-on-caller-hangup no|before-status|after-status``."""
    from emulator.cli import serve_parser

    assert serve_parser().parse_args([]).dial_action_on_caller_hangup == "no"
    args = serve_parser().parse_args(["--dial-action-on-caller-hangup", "after-status"])
    assert args.dial_action_on_caller_hangup == "after-status"
    with pytest.raises(SystemExit):
        serve_parser().parse_args(["--dial-action-on-caller-hangup", "yes"])
