"""SMS and WhatsApp in: one message per MessageSid, one open thread per person and channel, the
person's open case (their calls' too), the text menu, statuses that only move forward."""

from __future__ import annotations

from inquiries import message_models as m
from messaging.menu import load_menu
from messaging.views import twilio_key
from tests.conftest import call_params, new_call_sid
from tests.ivr.test_signatures import effects
from tests.messaging.support import (
    Texter,
    address_of,
    callers,
    events,
    inquiries,
    interactions,
    messages,
    new_message_sid,
    queued_job_ids,
    rows,
    sms_params,
    text_of,
)
from tests.support import handles

NUMBER = "+79161230101"


def menu_texts(app):
    return app.extensions["messaging_menu"]


def test_a_first_sms_opens_a_thread_and_queues_the_bilingual_greeting(app, carrier):
    Texter(carrier, NUMBER).send("Здравствуйте, мне нужна помощь")
    inbound, outbound = messages(app, m.INBOUND), messages(app, m.OUTBOUND)
    assert len(inbound) == 1 and len(outbound) == 1
    assert inbound[0].status == m.RECEIVED and inbound[0].channel == "sms"
    assert text_of(app, inbound[0]) == "Здравствуйте, мне нужна помощь"
    greeting = text_of(app, outbound[0])
    texts = menu_texts(app)
    for lang in ("ru", "uk"):
        assert texts.text(lang, "greeting") in greeting
        assert texts.text(lang, "choose_language") in greeting
    assert outbound[0].status == "pending" and outbound[0].menu_node == "language"
    assert outbound[0].staff_id is None
    assert f"message-send-{outbound[0].id}" in queued_job_ids(app)
    (interaction,) = interactions(app)
    assert (interaction.channel, interaction.status) == ("sms", "open")
    (conversation,) = rows(app, m.Conversation)
    assert conversation.interaction_id == interaction.id
    assert address_of(app, conversation) == NUMBER
    assert conversation.menu_node == "language"


def test_a_text_is_kept_as_written_line_breaks_and_all(app, carrier):
    Texter(carrier, NUMBER).send("Рядок один\nРядок два\tі табуляція")
    (inbound,) = messages(app, m.INBOUND)
    assert text_of(app, inbound) == "Рядок один\nРядок два\tі табуляція"


def test_the_same_message_sid_delivered_five_times_is_one_message(app, carrier):
    sid = new_message_sid()
    texter = Texter(carrier, NUMBER)
    texter.send("one", sid=sid)
    after_first = effects(app)
    for _ in range(4):
        texter.send("one", sid=sid)
    assert effects(app) == after_first
    assert len(messages(app, m.INBOUND)) == 1 and len(messages(app, m.OUTBOUND)) == 1


def test_the_menu_by_digit_then_by_word_sets_the_cases_language_and_topic(app, carrier):
    texter = Texter(carrier, NUMBER)
    texter.send("привіт")
    texter.send("2")  # Ukrainian
    (inquiry,) = inquiries(app)
    assert inquiry.language == "uk"
    topic_question = messages(app, m.OUTBOUND)[-1]
    assert topic_question.menu_node == "topic"
    assert text_of(app, topic_question) == menu_texts(app).text("uk", "topic_question")
    texter.send("Хочу здатися в полон")  # by word
    (inquiry,) = inquiries(app)
    assert (inquiry.kind, inquiry.priority) == ("surrender", 100)
    closing = text_of(app, messages(app, m.OUTBOUND)[-1])
    assert menu_texts(app).text("uk", "delete_advice") in closing
    assert menu_texts(app).text("uk", "person_will_answer") in closing
    (interaction,) = interactions(app)
    path = [(s["node"], s["answer"], s.get("choice")) for s in interaction.ivr_path]
    assert path == [("language", "2", "2"), ("topic", "word", "1")]
    (conversation,) = rows(app, m.Conversation)
    assert conversation.menu_node is None
    texter.send("Я в селі під Бахмутом")  # after the menu: kept, no automatic reply
    assert len(messages(app, m.OUTBOUND)) == 3 and len(messages(app, m.INBOUND)) == 4
    assert len(events(app, "MENU_DONE")) == 1


def test_an_answer_not_understood_is_asked_again_then_the_default_is_taken(app, carrier):
    texter = Texter(carrier, NUMBER)
    texter.send("hello")
    for _ in range(3):
        texter.send("???")
    (inquiry,) = inquiries(app)
    assert inquiry.language == "ru"  # the default after three tries
    out = messages(app, m.OUTBOUND)
    assert [o.menu_node for o in out] == ["language", "language", "language", "topic"]
    assert menu_texts(app).text("ru", "invalid") in text_of(app, out[1])
    (interaction,) = interactions(app)
    problems = [s.get("problem") for s in interaction.ivr_path]
    assert problems == ["invalid", "invalid", "invalid"]


def test_a_person_who_called_and_then_writes_on_whatsapp_joins_their_open_case(app, carrier):
    carrier.twiml("/voice/incoming", call_params(new_call_sid(), NUMBER))
    Texter(carrier, "whatsapp:" + NUMBER).send("Я звонил вам вчера")
    Texter(carrier, NUMBER).send("и по СМС тоже")
    assert len(callers(app)) == 1
    assert len(inquiries(app)) == 1
    channels = sorted(i.channel for i in interactions(app))
    assert channels == ["sms", "voice", "whatsapp"]  # one thread per channel, one case
    whatsapp = next(c for c in rows(app, m.Conversation) if c.channel == "whatsapp")
    assert address_of(app, whatsapp) == "whatsapp:" + NUMBER
    assert inquiries(app)[0].status == "open"


def test_two_people_are_two_cases_and_a_thread_stays_one_thread(app, carrier):
    first, second = Texter(carrier, NUMBER), Texter(carrier, "+380501234567")
    first.send("a")
    second.send("b")
    first.send("1")
    assert len(inquiries(app)) == 2 and len(interactions(app)) == 2


def test_a_sender_id_that_is_no_number_is_kept_alone_and_never_answered(app, carrier):
    Texter(carrier, "BANK").send("promo")
    Texter(carrier, "BANK").send("promo again")
    assert len(inquiries(app)) == 2  # nothing links them
    assert messages(app, m.OUTBOUND) == []


def test_media_of_an_mms_is_noted_with_its_source_sealed(app, carrier):
    url = "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1"
    Texter(carrier, NUMBER).send("", NumMedia="1", MediaUrl0=url, MediaContentType0="image/jpeg")
    (media,) = rows(app, m.MessageMedia)
    assert (media.content_type, media.state) == ("image/jpeg", "pending")
    assert url.encode() not in media.source_ciphertext


def test_a_photo_without_words_during_the_menu_is_no_answer(app, carrier):
    texter = Texter(carrier, NUMBER)
    texter.send("hello")
    texter.send("", NumMedia="1", MediaUrl0="https://api.twilio.com/x/Media/ME2",
                MediaContentType0="image/jpeg")  # fmt: skip
    assert len(messages(app, m.OUTBOUND)) == 1  # not asked again
    (conversation,) = rows(app, m.Conversation)
    assert (conversation.menu_node, conversation.menu_attempt) == ("language", 1)


def test_statuses_only_move_forward_whatever_their_order(app, carrier):
    Texter(carrier, NUMBER).send("hi")
    (greeting,) = messages(app, m.OUTBOUND)
    sid = "SM" + "b" * 32
    with app.app_context():  # what the send job does once Twilio has accepted the message
        from messaging.service import conversations

        assert conversations().mark_sent(greeting.id, twilio_key(sid), "queued")
        assert not conversations().mark_sent(greeting.id, twilio_key("SM" + "c" * 32), "queued")
        from db import db_session

        db_session().commit()

    def status(value: str, **extra: str):
        params = sms_params(sid, "+15005550006", "", MessageStatus=value, To=NUMBER, **extra)
        response = carrier.post("/messaging/status", params)
        assert response.status_code == 200

    status("delivered")
    status("sent")  # late
    status("queued")  # later still
    status("delivered")  # repeated
    assert messages(app, m.OUTBOUND)[0].status == "delivered"
    assert len([e for e in events(app, "MESSAGE_STATUS") if e.data["status"] == "delivered"]) == 1
    status("read")
    status("undelivered", ErrorCode="30003")  # cannot follow "read"'s… but is final
    final = messages(app, m.OUTBOUND)[0]
    assert (final.status, final.error_code) == ("undelivered", "30003")
    status("delivered")
    assert messages(app, m.OUTBOUND)[0].status == "undelivered"


def test_a_status_for_an_unknown_sid_is_kept_for_the_send_job(app, carrier):
    sid = new_message_sid()
    params = sms_params(sid, "+15005550006", "", MessageStatus="delivered", To=NUMBER)
    assert carrier.post("/messaging/status", params).status_code == 200
    (event,) = events(app, "MESSAGE_STATUS")
    assert event.data == {"sid": sid, "status": "delivered", "error_code": None, "applied": False}


def test_a_channel_turned_off_is_ignored(app, carrier):
    handles(app).settings = handles(app).settings.replace(messaging_channels=("telegram",))
    before = effects(app)
    Texter(carrier, NUMBER).send("hello")
    assert effects(app) == before


def test_a_missing_translation_stops_the_start_up(tmp_path):
    import shutil

    import pytest

    from messaging.menu import PROMPTS_DIR, MenuError

    for lang in ("ru", "uk", "en"):
        shutil.copy(PROMPTS_DIR / f"{lang}.toml", tmp_path / f"{lang}.toml")
    uk = (tmp_path / "uk.toml").read_text().replace('\ninvalid = "', '\nnot_a_key = "')
    (tmp_path / "uk.toml").write_text(uk)
    with pytest.raises(MenuError) as raised:
        load_menu(("ru", "uk", "en"), {"surrender": 1, "family": 1, "pow_info": 1, "other": 1},
                  tmp_path)  # fmt: skip
    assert "text 'invalid' has no uk translation" in str(raised.value)
    assert "uk: unknown text 'not_a_key'" in str(raised.value)
