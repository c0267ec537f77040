"""Attachments and the carrier's copies, end to end with the emulator: media fetched with the
account's credentials (or getFile), stored encrypted, then the message deleted at Twilio."""

from __future__ import annotations

import os

import pytest
from twilio.base.exceptions import TwilioRestException

from inquiries import message_models as m
from messaging.media import open_media
from tests.messaging.support import messages, rows
from tests.messaging.test_replies_e2e import work
from tests.support import handles

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + os.urandom(150_000)


def gone_at_twilio(app, sid: str) -> bool:
    try:
        handles(app).twilio.messages(sid).fetch()
    except TwilioRestException as exc:
        return exc.status == 404
    return False


def stored_raw(app) -> bytes:
    """Every file of the media store, read raw."""
    root = handles(app).settings.instance_path / "message-media"
    return b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())


def test_an_mms_photo_is_stored_encrypted_and_the_message_deleted_at_twilio(texting):
    app = texting.app
    phone = texting.emulator.sms_phone("+79161230606")
    sid = phone.send("фото", media=[(JPEG, "image/jpeg")])
    work(texting)
    (media,) = rows(app, m.MessageMedia)
    assert (media.state, media.size, media.content_type) == ("carrier_deleted", len(JPEG),
                                                             "image/jpeg")  # fmt: skip
    with app.app_context():
        assert open_media(media.id) == JPEG
        raw = stored_raw(app)
    assert raw and JPEG[:12] not in raw and JPEG[-64:] not in raw
    assert gone_at_twilio(app, sid)


def test_texts_and_delivered_replies_are_deleted_at_twilio(texting):
    app = texting.app
    phone = texting.emulator.sms_phone("+79161230707")
    sid = phone.send("просто текст")
    work(texting)
    phone.wait_for_message()
    texting.emulator.carrier.clock.advance(10)
    work(texting)
    assert gone_at_twilio(app, sid)
    (reply,) = messages(app, m.OUTBOUND)
    assert reply.status == "delivered"
    assert gone_at_twilio(app, reply.carrier_key.removeprefix("twilio:"))


@pytest.mark.parametrize("caption", ["підпис", None])
def test_a_telegram_photo_is_fetched_by_get_file_and_stored_encrypted(texting, caption):
    app = texting.app
    user = texting.emulator.telegram_user(555_000_333, "Петро")
    user.send_photo(JPEG, caption=caption)
    work(texting)
    (media,) = rows(app, m.MessageMedia)
    assert media.state == "stored"  # nothing of Telegram's the bot could delete
    with app.app_context():
        assert open_media(media.id) == JPEG
        assert JPEG[:12] not in stored_raw(app)
    assert len(user.received()) == 1  # the greeting
