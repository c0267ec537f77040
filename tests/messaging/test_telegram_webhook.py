"""Telegram's webhook with the test client: what is kept of an update and what is ignored."""

from __future__ import annotations

from inquiries import message_models as m
from tests.ivr.test_signatures import effects
from tests.messaging.support import (
    SECRET_HEADER,
    events,
    messages,
    post_telegram,
    rows,
    telegram_message,
)
from tests.support import handles

USER = 700_100_200


def test_a_private_message_opens_a_thread_with_the_greeting_and_its_buttons(app, client):
    update = telegram_message(USER, "Добрый день")
    assert post_telegram(client, app, update).status_code == 200
    (inbound,) = messages(app, m.INBOUND)
    assert inbound.carrier_key == f"telegram:update:{update['update_id']}"
    assert inbound.chat_message_id == update["message"]["message_id"]
    (greeting,) = messages(app, m.OUTBOUND)
    assert greeting.menu_node == "language"
    buttons = app.extensions["messaging_menu"].buttons("language", None)
    assert [b["callback_data"] for row in buttons for b in row] == [
        "menu:language:1", "menu:language:2", "menu:language:3",
    ]  # fmt: skip


def test_groups_bots_and_updates_of_no_known_kind_are_ignored(app, client):
    before = effects(app)
    group = telegram_message(USER, "hi")
    group["message"]["chat"] = {"id": -100123, "type": "supergroup"}
    bot = telegram_message(USER, "hi")
    bot["message"]["from"]["is_bot"] = True
    for update in (group, bot, {"update_id": 5, "edited_message": {}}, {"no": "id"}, [1, 2]):
        assert post_telegram(client, app, update).status_code == 200
    assert client.post("/messaging/telegram", data=b"\xff{not json",
                       headers={SECRET_HEADER: handles(app).settings.telegram_webhook_secret,
                                "Content-Type": "application/json"}).status_code == 200  # fmt: skip
    assert effects(app) == before


def test_blocking_and_unblocking_the_bot_is_noted_on_the_open_thread_once(app, client):
    post_telegram(client, app, telegram_message(USER, "hi"))

    def member(status: str, update_id: int):
        return {
            "update_id": update_id,
            "my_chat_member": {
                "chat": {"id": USER, "type": "private"},
                "from": {"id": USER, "is_bot": False, "first_name": "X"},
                "date": 1, "old_chat_member": {"status": "member"},
                "new_chat_member": {"status": status, "user": {"id": 1, "is_bot": True}},
            },
        }  # fmt: skip

    post_telegram(client, app, member("kicked", 1))
    post_telegram(client, app, member("kicked", 1))
    (conversation,) = rows(app, m.Conversation)
    assert conversation.blocked_at is not None
    assert len(events(app, "BOT_BLOCKED")) == 1
    post_telegram(client, app, member("member", 2))
    assert rows(app, m.Conversation)[0].blocked_at is None


def test_telegram_turned_off_answers_404_and_a_wrong_secret_403(app, client):
    assert (
        post_telegram(client, app, telegram_message(USER, "x"), secret="x" * 43).status_code == 403
    )
    handles(app).settings = handles(app).settings.replace(messaging_channels=("sms",))
    assert post_telegram(client, app, telegram_message(USER, "x")).status_code == 404
    assert messages(app) == []
