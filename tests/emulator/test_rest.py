"""twilio-python's own Client against the emulator: Calls, IncomingPhoneNumbers, Messages, errors."""

from __future__ import annotations

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from .conftest import CALLER, HOTLINE
from .scripted_app import http_get, twiml

HANDLER = "+15557770001"


def test_bad_credentials_get_401(emu, hotline):
    bad = Client(emu.account_sid, "wrong-token")
    bad.api.base_url = emu.base_url
    with pytest.raises(TwilioRestException) as caught:
        bad.calls("CA" + "0" * 32).fetch()
    bad.http_client.session.close()
    assert caught.value.status == 401
    assert caught.value.code == 20003
    raw = http_get(f"{emu.base_url}/2010-04-01/Accounts/{emu.account_sid}/Calls.json")
    assert raw.status_code == 401
    assert raw.json()["code"] == 20003
    assert raw.headers["WWW-Authenticate"].startswith("Basic")


def test_404_has_twilio_error_shape(emu, twilio_client):
    with pytest.raises(TwilioRestException) as caught:
        twilio_client.calls("CA" + "0" * 32).fetch()
    assert caught.value.status == 404 and caught.value.code == 20404
    raw = http_get(
        f"{emu.base_url}/2010-04-01/Accounts/{emu.account_sid}/Nothing/Here.json",
        auth=(emu.account_sid, emu.auth_token),
    )
    body = raw.json()
    assert raw.status_code == 404
    assert body == {
        "code": 20404,
        "message": f"The requested resource /2010-04-01/Accounts/{emu.account_sid}"
        "/Nothing/Here.json was not found",
        "more_info": "https://www.twilio.com/docs/errors/20404",
        "status": 404,
    }


def test_create_call_rings_answers_and_runs_url(emu, twiml_app, twilio_client):
    twiml_app.route(
        "/outbound", twiml('<Gather numDigits="1" action="/accept"><Say>Accept?</Say></Gather>')
    )
    twiml_app.route("/accept", twiml("<Say>Connected</Say>"))
    twiml_app.route("/cb", "")
    created = twilio_client.calls.create(
        to=HANDLER,
        from_=HOTLINE,
        url=twiml_app.url("/outbound"),
        status_callback=twiml_app.url("/cb"),
        status_callback_event=["initiated", "ringing", "answered", "completed"],
        timeout=20,
    )
    assert created.sid.startswith("CA") and created.direction == "outbound-api"
    assert created.to == HANDLER and created._from == HOTLINE
    handler = emu.phone(HANDLER)
    ringing = handler.wait_for_ring()
    assert ringing.sid == created.sid
    assert twilio_client.calls(created.sid).fetch().status == "ringing"
    leg = ringing.answer()
    assert leg.said_texts() == ["Accept?"]
    first = twiml_app.forms("/outbound")[0]
    assert first["CallStatus"] == "in-progress" and first["Direction"] == "outbound-api"
    leg.press("1")
    assert leg.said_texts() == ["Accept?", "Connected"]
    assert leg.status == "completed"
    emu.settle()
    events = [f["CallStatus"] for f in twiml_app.forms("/cb")]
    assert events == ["initiated", "ringing", "in-progress", "completed"]
    assert [f["SequenceNumber"] for f in twiml_app.forms("/cb")] == ["0", "1", "2", "3"]
    fetched = twilio_client.calls(created.sid).fetch()
    assert fetched.status == "completed" and fetched.start_time is not None
    assert fetched.end_time is not None and fetched.duration is not None


def test_create_call_no_answer_after_timeout(emu, twiml_app, twilio_client):
    twiml_app.route("/cb", "")
    created = twilio_client.calls.create(
        to=HANDLER, from_=HOTLINE, twiml="<Response><Say>hi</Say></Response>",
        status_callback=twiml_app.url("/cb"), timeout=15,
    )  # fmt: skip
    emu.phone(HANDLER).wait_for_ring()
    emu.wait(15)
    emu.settle()
    assert twilio_client.calls(created.sid).fetch().status == "no-answer"
    (form,) = twiml_app.forms("/cb")  # default event: completed only
    assert form["CallStatus"] == "no-answer"


def test_create_call_with_inline_twiml_and_rejected(emu, twilio_client):
    created = twilio_client.calls.create(
        to=HANDLER, from_=HOTLINE, twiml="<Response><Say>Hello handler</Say></Response>"
    )
    leg = emu.phone(HANDLER).wait_for_ring().answer()
    assert leg.said_texts() == ["Hello handler"]
    second = twilio_client.calls.create(to=HANDLER, from_=HOTLINE, twiml="<Response/>")
    emu.phone(HANDLER).wait_for_ring().reject()
    assert twilio_client.calls(second.sid).fetch().status == "busy"
    assert created.sid != second.sid


def test_create_call_validation_errors(twilio_client):
    with pytest.raises(TwilioRestException) as caught:
        twilio_client.calls.create(to=HANDLER, from_=HOTLINE)
    assert caught.value.status == 400 and caught.value.code == 21205


def test_list_calls_with_filters_and_paging(emu, twiml_app, hotline, twilio_client):
    twiml_app.route("/voice", twiml("<Say>x</Say>"))
    sids = [emu.dial(f"+38050000000{i}", HOTLINE).sid for i in range(3)]
    listed = twilio_client.calls.list()
    assert {c.sid for c in listed} == set(sids)
    assert [c.sid for c in twilio_client.calls.list(from_="+380500000001")] == [sids[1]]
    paged = list(twilio_client.calls.stream(page_size=2))
    assert len(paged) == 3
    assert twilio_client.calls.list(status="completed", to=HOTLINE)[0].direction == "inbound"


def test_update_live_call_redirect_and_end(emu, twiml_app, hotline, twilio_client):
    twiml_app.route("/voice", twiml('<Gather action="/g" timeout="30"><Say>Hold on</Say></Gather>'))
    twiml_app.route("/moved", twiml('<Say>Moved</Say><Pause length="60"/>'))
    call = emu.dial(CALLER, HOTLINE)
    twilio_client.calls(call.sid).update(url=twiml_app.url("/moved"), method="POST")
    call.listen()
    assert call.said_texts() == ["Hold on", "Moved"]
    updated = twilio_client.calls(call.sid).update(status="completed")
    assert updated.status == "completed"
    emu.settle()
    assert call.status == "completed"
    with pytest.raises(TwilioRestException) as caught:
        twilio_client.calls(call.sid).update(url=twiml_app.url("/moved"))
    assert caught.value.code == 21220


def test_update_call_with_twiml(emu, twiml_app, hotline, twilio_client):
    twiml_app.route("/voice", twiml('<Gather timeout="100"/>'))
    call = emu.dial(CALLER, HOTLINE)
    twilio_client.calls(call.sid).update(twiml="<Response><Say>Inline</Say></Response>")
    call.listen()
    assert call.said_texts() == ["Inline"]
    assert call.status == "completed"


def test_delete_an_ended_call_removes_it_from_the_api(emu, twiml_app, hotline, twilio_client):
    """Twilio: "once the record is deleted, it will no longer appear in the API": fetch, list
    (filtered or not) and update answer as for a call that never was; a second delete is 404."""
    twiml_app.route("/voice", twiml("<Say>x</Say>"))
    gone = emu.dial(CALLER, HOTLINE)
    kept = emu.dial("+380500000009", HOTLINE)
    emu.settle()
    assert gone.status == "completed"
    assert twilio_client.calls(gone.sid).delete() is True
    with pytest.raises(TwilioRestException) as caught:
        twilio_client.calls(gone.sid).fetch()
    assert (caught.value.status, caught.value.code) == (404, 20404)
    assert [c.sid for c in twilio_client.calls.list()] == [kept.sid]
    assert twilio_client.calls.list(from_=CALLER) == []
    with pytest.raises(TwilioRestException) as caught:
        twilio_client.calls(gone.sid).update(status="completed")
    assert caught.value.status == 404
    with pytest.raises(TwilioRestException) as caught:
        twilio_client.calls(gone.sid).delete()
    assert caught.value.status == 404
    assert emu.call(gone.sid).said_texts() == ["x"]  # the phone's own view stays


def test_a_call_not_yet_complete_cannot_be_deleted(emu, twiml_app, hotline, twilio_client):
    """Twilio error 20009: "Cannot delete this resource before it is complete" (in progress,
    ringing or queued); once it has ended, the same request deletes it."""
    twiml_app.route("/voice", twiml('<Gather timeout="100"><Say>Hold on</Say></Gather>'))
    live = emu.dial(CALLER, HOTLINE)
    ringing = twilio_client.calls.create(to=HANDLER, from_=HOTLINE, twiml="<Response/>")
    emu.phone(HANDLER).wait_for_ring()
    for sid in (live.sid, ringing.sid):
        with pytest.raises(TwilioRestException) as caught:
            twilio_client.calls(sid).delete()
        assert (caught.value.status, caught.value.code) == (400, 20009)
        assert twilio_client.calls(sid).fetch().sid == sid
    live.hang_up()
    emu.phone(HANDLER).reject()
    emu.settle()
    for sid in (live.sid, ringing.sid):
        assert twilio_client.calls(sid).delete() is True
    assert twilio_client.calls.list() == []


def test_cancel_a_ringing_call(emu, twilio_client):
    created = twilio_client.calls.create(to=HANDLER, from_=HOTLINE, twiml="<Response/>")
    emu.phone(HANDLER).wait_for_ring()
    twilio_client.calls(created.sid).update(status="canceled")
    emu.settle()
    assert twilio_client.calls(created.sid).fetch().status == "canceled"
    assert emu.phone(HANDLER).ringing() == []


def test_incoming_phone_numbers_list_and_update(emu, twiml_app, hotline, twilio_client):
    (number,) = twilio_client.incoming_phone_numbers.list(phone_number=HOTLINE)
    assert number.phone_number == HOTLINE and number.sid.startswith("PN")
    assert number.voice_url == twiml_app.url("/voice")
    assert number.voice_fallback_url == twiml_app.url("/fallback")
    assert number.status_callback == twiml_app.url("/status")
    assert number.sms_url == twiml_app.url("/sms")
    updated = twilio_client.incoming_phone_numbers(number.sid).update(
        voice_url=twiml_app.url("/v2"),
        voice_fallback_url=twiml_app.url("/f2"),
        status_callback=twiml_app.url("/s2"),
        sms_url=twiml_app.url("/m2"),
    )
    assert updated.voice_url == twiml_app.url("/v2") and updated.sms_url == twiml_app.url("/m2")
    twiml_app.route("/v2", twiml("<Say>new voice url</Say>"))
    twiml_app.route("/s2", "")
    call = emu.dial(CALLER, HOTLINE)
    assert call.said_texts() == ["new voice url"]
    emu.settle()
    assert twiml_app.forms("/s2")[0]["CallStatus"] == "completed"
    assert twilio_client.incoming_phone_numbers(number.sid).fetch().status_callback.endswith("/s2")


def test_messages_create_and_fetch(emu, twiml_app, twilio_client):
    twiml_app.route("/msg-status", "")
    message = twilio_client.messages.create(
        to=CALLER,
        from_=HOTLINE,
        body="Мы перезвоним вам",
        status_callback=twiml_app.url("/msg-status"),
    )
    assert message.sid.startswith("SM") and message.status == "queued"
    assert message.body == "Мы перезвоним вам" and message.direction == "outbound-api"
    emu.wait(5)  # sent at once, delivered a second later (virtual time)
    fetched = twilio_client.messages(message.sid).fetch()
    assert fetched.status == "delivered" and fetched.date_sent is not None
    assert emu.phone(CALLER).messages[0]["body"] == "Мы перезвоним вам"
    statuses = [f["MessageStatus"] for f in twiml_app.forms("/msg-status")]
    assert statuses == ["sent", "delivered"]
    with pytest.raises(TwilioRestException) as caught:
        twilio_client.messages.create(to=CALLER, from_=HOTLINE)
    assert caught.value.code == 21602


def test_inbound_sms_reaches_sms_url_and_reply_is_delivered(emu, twiml_app, hotline):
    twiml_app.route("/sms", lambda f: f"<Response><Message>Got: {f['Body']}</Message></Response>")
    sid = emu.phone(CALLER).send_sms(HOTLINE, "help")
    (form,) = twiml_app.forms("/sms")
    assert form["MessageSid"] == sid and form["Body"] == "help" and form["From"] == CALLER
    assert form["NumMedia"] == "0"
    assert emu.phone(CALLER).messages == []  # sent, delivered a second later (virtual time)
    emu.wait(1)
    assert emu.phone(CALLER).messages[-1]["body"] == "Got: help"


def test_observers_see_each_answered_webhook_and_each_rest_request(emu, twiml_app, twilio_client):
    answers, requests = [], []
    emu.observe(
        webhook_answer=lambda url, params, reply: answers.append((url, params, reply.content)),
        rest_request=lambda *seen: requests.append(seen),
    )
    twiml_app.route("/outbound", twiml("<Say>Hello</Say>"))
    call = twilio_client.calls.create(to=HANDLER, from_=HOTLINE, url=twiml_app.url("/outbound"))
    emu.phone(HANDLER).answer()
    emu.settle()
    _url, params, content = next(a for a in answers if a[0].endswith("/outbound"))
    assert params["CallSid"] == call.sid and b"<Say>Hello</Say>" in content
    arrived, method, path, form, status, body = requests[0]
    assert (method, status) == ("POST", 201) and path.endswith("/Calls.json")
    assert form["To"] == HANDLER and body["sid"] == call.sid and arrived > 0
