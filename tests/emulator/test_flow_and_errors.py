"""Redirect, Hangup, Reject, the fallback URL, the generic error, status callbacks, debugger."""

from __future__ import annotations

import time

from emulator.errors import GENERIC_ERROR_TEXT

from .conftest import CALLER, HOTLINE
from .scripted_app import http_get, twiml


def test_redirect_with_method_get(emu, twiml_app, hotline):
    twiml_app.route("/voice", twiml('<Redirect method="GET">/menu?step=2</Redirect>'))
    twiml_app.route("/menu", twiml("<Say>step two</Say>"))
    call = emu.dial(CALLER, HOTLINE)
    call.wait_until_finished()
    (hit,) = twiml_app.hits_to("/menu")
    assert hit.method == "GET" and hit.valid
    assert hit.form["step"] == "2" and hit.form["CallSid"] == call.sid
    assert call.said_texts() == ["step two"]


def test_hangup_ends_the_call_and_skips_the_rest(emu, twiml_app, hotline):
    twiml_app.route("/voice", twiml("<Say>bye</Say>", "<Hangup/>", "<Say>never</Say>"))
    call = emu.dial(CALLER, HOTLINE)
    assert call.status == "completed"
    assert call.said_texts() == ["bye"]


def test_reject_first_verb_never_answers(emu, twiml_app, hotline):
    twiml_app.route("/voice", twiml('<Reject reason="busy"/>', "<Say>unreachable</Say>"))
    call = emu.dial(CALLER, HOTLINE)
    assert call.status == "busy"
    assert call.said_texts() == []
    emu.settle()
    (status,) = twiml_app.forms("/status")
    assert status["CallStatus"] == "busy"
    assert status["CallDuration"] == "0"


def test_reject_default_reason_is_rejected(emu, twiml_app, hotline, twilio_client):
    twiml_app.route("/voice", twiml("<Reject/>"))
    call = emu.dial(CALLER, HOTLINE)
    assert call.status == "no-answer"
    fetched = twilio_client.calls(call.sid).fetch()
    assert fetched.start_time is None  # never answered
    assert [h.text for h in call.heard if h.kind == "tone"] == ["rejected"]


def test_fallback_on_http_500(emu, twiml_app, hotline):
    twiml_app.route("/voice", "boom", status=500)
    twiml_app.route("/fallback", twiml("<Say>Fallback speaking</Say>"))
    call = emu.dial(CALLER, HOTLINE)
    assert call.said_texts() == ["Fallback speaking"]
    (form,) = twiml_app.forms("/fallback")
    assert form["ErrorCode"] == "11200"
    assert form["ErrorUrl"] == twiml_app.url("/voice")
    assert form["CallSid"] == call.sid
    (error,) = emu.debugger
    assert error["code"] == 11200 and error["call_sid"] == call.sid
    assert error["url"] == twiml_app.url("/voice")


def test_fallback_on_invalid_twiml(emu, twiml_app, hotline):
    twiml_app.route("/voice", "<Response><Say>unclosed</Response>")
    twiml_app.route("/fallback", twiml("<Say>fallback</Say>"))
    emu.dial(CALLER, HOTLINE)
    assert twiml_app.forms("/fallback")[0]["ErrorCode"] == "12100"
    assert [e["code"] for e in emu.debugger] == [12100]


def test_fallback_on_unknown_verb_and_bad_attribute(emu, twiml_app, hotline):
    twiml_app.route("/voice", twiml("<Sing>la la</Sing>"))
    twiml_app.route("/fallback", twiml("<Say>fallback</Say>"))
    emu.dial(CALLER, HOTLINE)
    assert twiml_app.forms("/fallback")[0]["ErrorCode"] == "12200"
    twiml_app.route("/voice", twiml('<Gather timeout="soon"/>'))
    emu.dial(CALLER, HOTLINE)
    assert twiml_app.forms("/fallback")[1]["ErrorCode"] == "12200"
    twiml_app.route("/voice", "<Reply><Say>wrong root</Say></Reply>")
    emu.dial(CALLER, HOTLINE)
    assert twiml_app.forms("/fallback")[2]["ErrorCode"] == "12200"


def test_fallback_on_timeout_with_fragment_override(emu, twiml_app):
    twiml_app.route("/slow", twiml("<Say>too late</Say>"), delay=1.0)
    twiml_app.route("/fallback", twiml("<Say>fallback after timeout</Say>"))
    emu.add_number(
        HOTLINE,
        voice_url=twiml_app.url("/slow") + "#rt=300&rc=0",
        voice_fallback_url=twiml_app.url("/fallback"),
    )
    started = time.monotonic()
    call = emu.dial(CALLER, HOTLINE)
    assert time.monotonic() - started < 1.0
    assert call.said_texts() == ["fallback after timeout"]
    form = twiml_app.forms("/fallback")[0]
    assert form["ErrorCode"] == "11205"
    assert form["ErrorUrl"] == twiml_app.url("/slow")  # the fragment is not part of it
    (slow,) = twiml_app.hits_to("/slow")
    assert slow.valid and "#" not in slow.url


def test_generic_error_without_fallback(emu, twiml_app):
    emu.add_number(HOTLINE, voice_url=twiml_app.url("/missing"))
    call = emu.dial(CALLER, HOTLINE)
    assert call.said_texts() == [GENERIC_ERROR_TEXT]
    assert call.status == "completed"
    assert emu.debugger[0]["code"] == 11200


def test_fallback_that_fails_too_gives_the_generic_error(emu, twiml_app, hotline):
    twiml_app.route("/voice", "x", status=503)
    twiml_app.route("/fallback", "<nope", status=200)
    call = emu.dial(CALLER, HOTLINE)
    assert call.said_texts() == [GENERIC_ERROR_TEXT]
    assert [e["code"] for e in emu.debugger] == [11200, 12100]


def test_failing_action_url_uses_the_fallback(emu, twiml_app, hotline):
    twiml_app.route("/voice", twiml('<Gather action="/broken"><Say>press</Say></Gather>'))
    twiml_app.route("/broken", "", status=500)
    twiml_app.route("/fallback", twiml("<Say>recovered</Say>"))
    call = emu.dial(CALLER, HOTLINE)
    call.press("1#")
    form = twiml_app.forms("/fallback")[0]
    assert form["ErrorUrl"] == twiml_app.url("/broken")
    assert call.said_texts() == ["press", "recovered"]


def test_debugger_over_http(emu, twiml_app):
    emu.add_number(HOTLINE, voice_url=twiml_app.url("/missing"))
    call = emu.dial(CALLER, HOTLINE)
    errors = http_get(emu.base_url + "/debugger").json()
    assert errors[0]["code"] == 11200 and errors[0]["call_sid"] == call.sid
    assert set(errors[0]) >= {"code", "message", "url", "call_sid"}


def test_number_status_callback_gets_completed_only(emu, twiml_app, hotline):
    twiml_app.route("/voice", twiml("<Say>hi</Say>", '<Pause length="7"/>'))
    call = emu.dial(CALLER, HOTLINE)
    assert call.wait_until_finished() == "completed"
    emu.settle()
    (form,) = twiml_app.forms("/status")
    assert form["CallStatus"] == "completed"
    assert form["CallSid"] == call.sid
    assert form["CallbackSource"] == "call-progress-events"
    assert form["SequenceNumber"] == "0"
    assert int(form["CallDuration"]) == 8  # "hi" (0.5 s) + 7 s, rounded
    assert form["Timestamp"].endswith("+0000")


def test_caller_hangs_up_during_gather(emu, twiml_app, hotline):
    twiml_app.route("/voice", twiml('<Gather action="/g"><Say>menu</Say></Gather>'))
    call = emu.dial(CALLER, HOTLINE)
    call.hang_up()
    assert call.status == "completed"
    assert twiml_app.hits_to("/g") == []
    emu.settle()
    assert twiml_app.forms("/status")[0]["CallStatus"] == "completed"


def test_redirect_loop_is_stopped(emu, twiml_app, hotline):
    twiml_app.route("/voice", twiml("<Redirect>/voice</Redirect>"))
    call = emu.dial(CALLER, HOTLINE)
    assert call.status == "completed"
    assert emu.debugger[-1]["code"] == 12400
