"""Phones that write (SMS and WhatsApp): signed webhooks with Twilio's parameters, replies by
TwiML or REST, status callbacks in order on the clock, failures on demand, WhatsApp's 24 h
window, duplicated and reordered callbacks."""

from __future__ import annotations

import pytest
from twilio.request_validator import RequestValidator

from .conftest import CALLER, HOTLINE

PERSON = "+79161234567"


def test_sms_webhook_has_twilios_parameters_and_a_valid_signature(emu, twiml_app, hotline):
    twiml_app.route("/sms", "<Response/>")
    sid = emu.sms_phone(PERSON).send("Мне нужна помощь")
    (hit,) = twiml_app.hits_to("/sms")
    assert hit.valid and RequestValidator(emu.auth_token).validate(hit.url, hit.form, hit.signature)
    assert not RequestValidator("another-token").validate(hit.url, hit.form, hit.signature)
    form = hit.form
    assert sid.startswith("SM") and len(sid) == 34
    assert form["MessageSid"] == form["SmsMessageSid"] == form["SmsSid"] == sid
    assert (form["From"], form["To"], form["Body"]) == (PERSON, HOTLINE, "Мне нужна помощь")
    assert (form["AccountSid"], form["NumMedia"], form["NumSegments"]) == (
        emu.account_sid,
        "0",
        "1",
    )
    assert "WaId" not in form and "MediaUrl0" not in form


def test_whatsapp_webhook_and_twiml_reply(emu, twiml_app, hotline):
    twiml_app.route("/sms", lambda f: f"<Response><Message>Ответ: {f['Body']}</Message></Response>")
    twiml_app.route("/st", "")
    phone = emu.whatsapp_phone(PERSON, profile_name="Ира")
    phone.send("Здравствуйте", media=[(b"OggS voice", "audio/ogg")])
    (form,) = twiml_app.forms("/sms")
    assert form["From"] == "whatsapp:" + PERSON and form["To"] == "whatsapp:" + HOTLINE
    assert form["WaId"] == PERSON[1:] and form["ProfileName"] == "Ира"
    assert form["MessageSid"].startswith("MM") and form["NumMedia"] == "1"
    assert form["MediaContentType0"] == "audio/ogg"
    assert form["MediaUrl0"].startswith(emu.base_url + "/2010-04-01/Accounts/")
    assert phone.received() == []
    assert phone.wait_for_message() == "Ответ: Здравствуйте"
    assert phone.inbox()[0]["from"] == "whatsapp:" + HOTLINE
    assert emu.sms_phone(PERSON).received() == []  # not an SMS


def test_rest_reply_status_callbacks_in_order_with_read_for_whatsapp(
    emu, twiml_app, hotline, twilio_client
):
    twiml_app.route("/sms", "<Response/>")
    twiml_app.route("/st", "")
    phone = emu.whatsapp_phone(PERSON)
    phone.send("hi")
    sent = twilio_client.messages.create(
        to="whatsapp:" + PERSON,
        from_="whatsapp:" + HOTLINE,
        body="Мы здесь",
        status_callback=twiml_app.url("/st"),
    )
    emu.wait(10)
    hits = twiml_app.hits_to("/st")
    assert all(h.valid for h in hits)
    assert [h.form["MessageStatus"] for h in hits] == ["sent", "delivered", "read"]
    assert all(h.form["MessageSid"] == sent.sid for h in hits)
    assert hits[-1].form["EventType"] == "READ" and hits[-1].form["ChannelPrefix"] == "whatsapp"
    assert "ErrorCode" not in hits[0].form
    assert phone.received() == ["Мы здесь"]
    assert twilio_client.messages(sent.sid).fetch().status == "read"


def test_sms_gets_no_read_status(emu, twiml_app, twilio_client):
    twiml_app.route("/st", "")
    twilio_client.messages.create(
        to=PERSON, from_=HOTLINE, body="x", status_callback=twiml_app.url("/st")
    )
    emu.wait(10)
    forms = twiml_app.forms("/st")
    assert [f["MessageStatus"] for f in forms] == ["sent", "delivered"]
    assert len(forms[-1]["RawDlrDoneDate"]) == 10


def test_failure_on_demand(emu, twiml_app, twilio_client):
    twiml_app.route("/st", "")
    emu.fail_next_message(PERSON)  # undelivered, 30003
    emu.fail_next_message(PERSON, error_code=30007, status="failed")
    one = twilio_client.messages.create(
        to=PERSON, from_=HOTLINE, body="1", status_callback=twiml_app.url("/st")
    )
    two = twilio_client.messages.create(
        to=PERSON, from_=HOTLINE, body="2", status_callback=twiml_app.url("/st")
    )
    three = twilio_client.messages.create(
        to=PERSON, from_=HOTLINE, body="3", status_callback=twiml_app.url("/st")
    )
    emu.wait(5)
    by_sid: dict[str, list[tuple[str, str | None]]] = {}
    for form in twiml_app.forms("/st"):
        by_sid.setdefault(form["MessageSid"], []).append(
            (form["MessageStatus"], form.get("ErrorCode"))
        )
    assert by_sid[one.sid] == [("sent", None), ("undelivered", "30003")]
    assert by_sid[two.sid] == [("failed", "30007")]
    assert by_sid[three.sid] == [("sent", None), ("delivered", None)]
    fetched = twilio_client.messages(one.sid).fetch()
    assert (fetched.status, fetched.error_code) == ("undelivered", 30003)
    assert emu.sms_phone(PERSON).received() == ["3"]
    assert twilio_client.messages(two.sid).delete() is True  # failed is final


def test_whatsapp_outside_the_24_hour_window_fails_with_63016(
    emu, twiml_app, hotline, twilio_client
):
    twiml_app.route("/sms", "<Response/>")
    twiml_app.route("/st", "")

    def send(body: str, **extra):
        return twilio_client.messages.create(
            to="whatsapp:" + PERSON,
            from_="whatsapp:" + HOTLINE,
            status_callback=twiml_app.url("/st"),
            body=body,
            **extra,
        )

    never_wrote = send("free-form")
    emu.wait(5)
    assert twilio_client.messages(never_wrote.sid).fetch().error_code == 63016
    emu.whatsapp_phone(PERSON).send("hi")
    emu.wait(23 * 3600)
    inside = send("still inside")
    emu.wait(3600 + 5)
    outside = send("outside now")
    template = twilio_client.messages.create(
        to="whatsapp:" + PERSON,
        from_="whatsapp:" + HOTLINE,
        content_sid="HX" + "0" * 32,
        content_variables='{"1": "x"}',
    )
    emu.wait(5)
    statuses = {sid: [] for sid in (never_wrote.sid, inside.sid, outside.sid)}
    for form in twiml_app.forms("/st"):
        statuses[form["MessageSid"]].append((form["MessageStatus"], form.get("ErrorCode")))
    assert statuses[never_wrote.sid] == [("failed", "63016")]
    assert statuses[inside.sid] == [("sent", None), ("delivered", None), ("read", None)]
    assert statuses[outside.sid] == [("failed", "63016")]
    assert twilio_client.messages(template.sid).fetch().status == "read"


def test_duplicated_and_reversed_status_callbacks(emu, twiml_app, twilio_client):
    twiml_app.route("/st", "")
    emu.status_callback_chaos(duplicate=True, reverse=True)
    sent = twilio_client.messages.create(
        to=PERSON, from_=HOTLINE, body="x", status_callback=twiml_app.url("/st")
    )
    emu.wait(5)
    forms = twiml_app.forms("/st")
    assert [f["MessageStatus"] for f in forms] == ["delivered", "delivered", "sent", "sent"]
    assert {f["MessageSid"] for f in forms} == {sent.sid}
    assert twilio_client.messages(sent.sid).fetch().status == "delivered"


def test_duplicated_inbound_webhook_keeps_its_message_sid(emu, twiml_app, hotline):
    twiml_app.route("/sms", "<Response/>")
    sid = emu.sms_phone(PERSON).send("once", duplicate=True)
    forms = twiml_app.forms("/sms")
    assert [f["MessageSid"] for f in forms] == [sid, sid]


def test_message_timing_is_configurable(emu, twiml_app, twilio_client):
    twiml_app.route("/st", "")
    emu.message_timing(sent_after=2, delivered_after=3)
    twilio_client.messages.create(
        to=PERSON, from_=HOTLINE, body="x", status_callback=twiml_app.url("/st")
    )
    emu.wait(1.9)
    assert twiml_app.forms("/st") == []
    emu.wait(0.2)
    assert [f["MessageStatus"] for f in twiml_app.forms("/st")] == ["sent"]
    emu.wait(3)
    assert [f["MessageStatus"] for f in twiml_app.forms("/st")] == ["sent", "delivered"]


def test_a_number_without_an_sms_url_gets_nothing_and_unknown_numbers_are_refused(emu, twiml_app):
    emu.add_number(HOTLINE)
    emu.sms_phone(CALLER).send("hello")
    assert twiml_app.hits == []
    with pytest.raises(ValueError):
        emu.sms_phone(CALLER).send("hello", to="+15550009999")


def test_twiml_message_with_body_media_and_status_callback(emu, twiml_app, hotline):
    twiml_app.route(
        "/sms",
        '<Response><Message action="/st"><Body>Текст</Body>'
        "<Media>https://example.org/a.png</Media></Message></Response>".replace(
            "/st", twiml_app.url("/st")
        ),
    )
    twiml_app.route("/st", "")
    phone = emu.sms_phone(PERSON)
    phone.send("?")
    emu.wait(2)
    (got,) = phone.inbox()
    assert got["body"] == "Текст" and got["media_urls"] == ["https://example.org/a.png"]
    assert got["sid"].startswith("MM")
    assert [f["MessageStatus"] for f in twiml_app.forms("/st")] == ["sent", "delivered"]
