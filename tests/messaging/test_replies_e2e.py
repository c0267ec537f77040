"""Replies end to end: the app on a live port, the emulator as Twilio and as Telegram. The number
and the bot are configured by the app's own commands (``configure-number``,
``configure-telegram``); the people write from emulated phones and a Telegram chat; the send
jobs run as a worker runs them (``run_queued_jobs``)."""

from __future__ import annotations

from inquiries import message_models as m
from jobs import run_queued_jobs
from tests.e2e.conftest import Hotline
from tests.messaging.support import events, inquiries, messages, rows


def work(hotline: Hotline) -> None:
    """Run the queued jobs, then let the carrier's (virtual) time deliver and call back."""
    run_queued_jobs(hotline.app)
    hotline.emulator.settle()


def menu_text(hotline: Hotline, lang: str, key: str) -> str:
    return hotline.app.extensions["messaging_menu"].text(lang, key)


def test_an_sms_walks_the_menu_and_every_reply_is_delivered(texting):
    phone = texting.emulator.sms_phone("+79161230303")
    phone.send("Здравствуйте")
    work(texting)
    greeting = phone.wait_for_message()
    assert menu_text(texting, "ru", "greeting") in greeting
    assert menu_text(texting, "uk", "greeting") in greeting
    phone.send("1")
    work(texting)
    assert phone.wait_for_message() == menu_text(texting, "ru", "topic_question")
    phone.send("4")
    work(texting)
    assert menu_text(texting, "ru", "person_will_answer") in phone.wait_for_message()
    assert len(phone.received()) == 3
    texting.emulator.carrier.clock.advance(10)
    work(texting)
    out = messages(texting.app, m.OUTBOUND)
    assert [o.status for o in out] == ["delivered"] * 3
    assert all(o.carrier_key.startswith("twilio:SM") for o in out)
    (inquiry,) = inquiries(texting.app)
    assert (inquiry.language, inquiry.kind) == ("ru", "other")


def test_a_reply_the_carrier_cannot_deliver_is_marked_undelivered_with_its_code(texting):
    phone = texting.emulator.sms_phone("+79161230404")
    texting.emulator.fail_next_message(phone.address, 30003, "undelivered")
    phone.send("hello")
    work(texting)
    texting.emulator.carrier.clock.advance(10)
    work(texting)
    (greeting,) = messages(texting.app, m.OUTBOUND)
    assert (greeting.status, greeting.error_code) == ("undelivered", "30003")


def test_reordered_and_repeated_status_callbacks_end_at_the_last_status(texting):
    texting.emulator.status_callback_chaos(duplicate=True, reverse=True)
    phone = texting.emulator.whatsapp_phone("+79161230505", profile_name="Марина")
    phone.send("Добрый день")
    work(texting)
    texting.emulator.carrier.clock.advance(30)
    work(texting)
    (greeting,) = messages(texting.app, m.OUTBOUND)
    assert greeting.status in ("delivered", "read")  # reversed: never moved back to "sent"
    assert menu_text(texting, "ru", "greeting") in phone.received()[-1]
    statuses = [e.data["status"] for e in events(texting.app, "MESSAGE_STATUS")]
    assert "sent" in statuses  # it came, after "delivered", and was not applied


def test_telegram_buttons_walk_the_menu_and_every_press_is_answered(texting):
    user = texting.emulator.telegram_user(555_000_111, "Олег", username="oleg_writes")
    user.write("Здравствуйте")
    work(texting)
    (greeting,) = user.received()
    assert ("Українська", "menu:language:2") in [b for row in greeting["buttons"] for b in row]
    user.press("menu:language:2")
    work(texting)
    topic = user.received()[-1]
    assert topic["text"] == menu_text(texting, "uk", "topic_question")
    assert ("Здатися в полон", "menu:topic:1") in [b for row in topic["buttons"] for b in row]
    user.press("menu:topic:1", duplicate=True)  # delivered twice: one answer
    work(texting)
    assert menu_text(texting, "uk", "delete_advice") in user.received()[-1]["text"]
    assert len(user.received()) == 3
    assert len(user.callback_answers) == 2  # each press answered (the spinner stops)
    (inquiry,) = inquiries(texting.app)
    assert (inquiry.language, inquiry.kind, inquiry.priority) == ("uk", "surrender", 100)
    out = messages(texting.app, m.OUTBOUND)
    assert [o.status for o in out] == ["sent"] * 3  # Telegram reports no delivery
    assert all(o.chat_message_id for o in out)
    user.press("menu:language:1")  # an old message's button: answered, changes nothing
    work(texting)
    assert inquiries(texting.app)[0].language == "uk"
    assert len(user.received()) == 3


def test_telegram_updates_repeated_and_reordered_are_one_message_each(texting):
    user = texting.emulator.telegram_user(555_000_222, "Ірина")
    texting.emulator.hold_updates()
    user.write("перше")
    user.write("друге")
    texting.emulator.release_updates(reverse=True, duplicate=True)
    work(texting)
    inbound = messages(texting.app, m.INBOUND)
    assert len(inbound) == 2
    assert len(rows(texting.app, m.Conversation)) == 1
    assert len(events(texting.app, "MESSAGE_IN")) == 2
    assert len(user.received()) >= 1
