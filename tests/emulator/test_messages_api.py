"""Twilio's Messages REST API at the emulator, through twilio-python's own Client: create,
fetch, list, redact, delete (20009 while not final), Media list/fetch/delete."""

from __future__ import annotations

import pytest
from twilio.base.exceptions import TwilioRestException

from .conftest import CALLER, HOTLINE
from .scripted_app import http_get

PHOTO = b"\xff\xd8\xff\xe0 a jpeg, as far as the carrier cares"


def test_create_fetch_list_and_the_status_moves_with_the_clock(emu, twiml_app, twilio_client):
    twiml_app.route("/st", "")
    created = twilio_client.messages.create(
        to=CALLER, from_=HOTLINE, body="Мы на связи", status_callback=twiml_app.url("/st")
    )
    assert created.sid.startswith("SM") and len(created.sid) == 34
    assert (created.status, created.direction, created.num_segments) == (
        "queued",
        "outbound-api",
        "1",
    )
    emu.settle()
    assert twilio_client.messages(created.sid).fetch().status == "sent"
    emu.wait(1)
    fetched = twilio_client.messages(created.sid).fetch()
    assert fetched.status == "delivered" and fetched.date_sent is not None
    assert fetched.body == "Мы на связи" and fetched.error_code is None
    listed = twilio_client.messages.list(to=CALLER)
    assert [m.sid for m in listed] == [created.sid]
    assert twilio_client.messages.list(to="+19999999999") == []
    assert [f["MessageStatus"] for f in twiml_app.forms("/st")] == ["sent", "delivered"]


def test_delete_is_refused_while_not_final_then_204_and_gone(emu, twilio_client):
    created = twilio_client.messages.create(to=CALLER, from_=HOTLINE, body="x")
    emu.settle()  # sent, not yet delivered
    with pytest.raises(TwilioRestException) as caught:
        twilio_client.messages(created.sid).delete()
    assert caught.value.code == 20009 and caught.value.status == 400
    emu.wait(1)
    assert twilio_client.messages(created.sid).delete() is True
    with pytest.raises(TwilioRestException) as gone:
        twilio_client.messages(created.sid).fetch()
    assert gone.value.status == 404 and gone.value.code == 20404
    assert twilio_client.messages.list() == []


def test_redact_blanks_the_body_only(emu, twilio_client):
    created = twilio_client.messages.create(to=CALLER, from_=HOTLINE, body="secret")
    emu.wait(2)
    redacted = twilio_client.messages(created.sid).update(body="")
    assert redacted.body == "" and redacted.status == "delivered"
    assert twilio_client.messages(created.sid).fetch().body == ""
    with pytest.raises(TwilioRestException) as caught:
        twilio_client.messages(created.sid).update(body="other")
    assert caught.value.status == 400


def test_inbound_media_listed_fetched_with_basic_auth_and_deleted(
    emu, twiml_app, hotline, twilio_client
):
    twiml_app.route("/sms", "<Response/>")
    sid = emu.sms_phone(CALLER).send("фото", media=[(PHOTO, "image/jpeg")])
    assert sid.startswith("MM")
    (form,) = twiml_app.forms("/sms")
    media = twilio_client.messages(sid).media.list()
    assert len(media) == 1 and media[0].content_type == "image/jpeg"
    assert form["MediaUrl0"].endswith(f"/Messages/{sid}/Media/{media[0].sid}")
    assert http_get(form["MediaUrl0"]).status_code == 401  # HTTP auth for media is on
    got = http_get(form["MediaUrl0"], auth=(emu.account_sid, emu.auth_token))
    assert got.status_code == 200 and got.content == PHOTO
    assert got.headers["Content-Type"] == "image/jpeg"
    assert twilio_client.messages(sid).media(media[0].sid).fetch().parent_sid == sid
    assert twilio_client.messages(sid).media(media[0].sid).delete() is True
    assert twilio_client.messages(sid).media.list() == []
    again = http_get(form["MediaUrl0"], auth=(emu.account_sid, emu.auth_token))
    assert again.status_code == 404
    # an inbound message is final ("received"): it can be deleted at once
    assert twilio_client.messages(sid).delete() is True


def test_deleting_a_message_deletes_its_media(emu, twiml_app, hotline, twilio_client):
    twiml_app.route("/sms", "<Response/>")
    sid = emu.sms_phone(CALLER).send("", media=[(PHOTO, "image/jpeg"), (b"OggS", "audio/ogg")])
    (form,) = twiml_app.forms("/sms")
    assert form["NumMedia"] == "2" and form["MediaContentType1"] == "audio/ogg"
    twilio_client.messages(sid).delete()
    for index in (0, 1):
        url = form[f"MediaUrl{index}"]
        assert http_get(url, auth=(emu.account_sid, emu.auth_token)).status_code == 404


def test_bad_requests_answer_twilio_errors(emu, twilio_client):
    with pytest.raises(TwilioRestException) as no_body:
        twilio_client.messages.create(to=CALLER, from_=HOTLINE)
    assert no_body.value.code == 21602
    with pytest.raises(TwilioRestException) as too_long:
        twilio_client.messages.create(to=CALLER, from_=HOTLINE, body="x" * 1601)
    assert too_long.value.code == 21617
    with pytest.raises(TwilioRestException) as unknown:
        twilio_client.messages("SM" + "0" * 32).fetch()
    assert unknown.value.status == 404


def test_segments_count_gsm_and_ucs2(emu, twilio_client):
    gsm = twilio_client.messages.create(to=CALLER, from_=HOTLINE, body="a" * 161)
    ucs2 = twilio_client.messages.create(to=CALLER, from_=HOTLINE, body="я" * 71)
    short = twilio_client.messages.create(to=CALLER, from_=HOTLINE, body="я" * 70)
    assert (gsm.num_segments, ucs2.num_segments, short.num_segments) == ("2", "2", "1")
