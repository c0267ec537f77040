"""The Telegram Bot API subset at the emulator: encodings, the envelope and its errors,
setWebhook/getWebhookInfo/deleteWebhook, sendMessage, deleteMessage, getFile + download,
answerCallbackQuery; users whose updates reach the webhook with the secret header."""

from __future__ import annotations

import json

import pytest

from .scripted_app import http_get, http_post

SECRET = "s3cret_token-for-tests"
USER = 5550001001
PHOTO = b"\xff\xd8\xff\xe0 not really a jpeg"


@pytest.fixture
def bot(emu):
    return f"{emu.base_url}/bot{emu.telegram_token}"


@pytest.fixture
def webhook(emu, twiml_app, bot):
    """The bot's webhook set to the test app's /tg, with the secret token."""
    twiml_app.telegram_secret = SECRET
    twiml_app.route("/tg", "")
    answer = http_post(
        bot + "/setWebhook",
        json={
            "url": twiml_app.url("/tg"),
            "secret_token": SECRET,
            "allowed_updates": ["message", "callback_query"],
        },
    )
    assert answer.json() == {"ok": True, "result": True, "description": "Webhook was set"}
    return twiml_app.url("/tg")


def test_every_encoding_is_accepted(emu, twiml_app, bot, webhook):
    emu.telegram_user(USER, "Оля").write("привет")
    as_query = http_get(bot + "/sendMessage", params={"chat_id": USER, "text": "q"})
    as_form = http_post(bot + "/sendMessage", data={"chat_id": str(USER), "text": "f"})
    as_json = http_post(bot + "/sendMessage", json={"chat_id": USER, "text": "j"})
    as_multipart = http_post(
        bot + "/sendMessage", files={"chat_id": (None, str(USER)), "text": (None, "m")}
    )
    for answer, text in ((as_query, "q"), (as_form, "f"), (as_json, "j"), (as_multipart, "m")):
        assert answer.status_code == 200 and answer.json()["ok"] is True
        assert answer.json()["result"]["text"] == text
        assert answer.json()["result"]["chat"] == {
            "id": USER,
            "first_name": "Оля",
            "type": "private",
        }
    ids = [a.json()["result"]["message_id"] for a in (as_query, as_form, as_json, as_multipart)]
    assert ids == [2, 3, 4, 5]  # the user's message was 1: ids count per chat
    assert emu.telegram_user(USER).received_texts() == ["q", "f", "j", "m"]


def test_wrong_token_and_unknown_method(emu, bot):
    number, _, _ = emu.telegram_token.partition(":")
    wrong = http_get(f"{emu.base_url}/bot{number}:AA{'x' * 33}/getMe")
    assert wrong.status_code == 401
    assert wrong.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}
    garbage = http_get(f"{emu.base_url}/botnonsense/getMe")
    assert garbage.status_code == 404
    assert garbage.json() == {"ok": False, "error_code": 404, "description": "Not Found"}
    unknown = http_get(bot + "/sendSticker")
    assert unknown.status_code == 404 and unknown.json()["description"] == "Not Found"
    assert http_get(bot + "/getMe").json()["result"]["is_bot"] is True


def test_send_message_errors(emu, bot, webhook):
    emu.telegram_user(USER, "A").write("hi")

    def send(**params):
        answer = http_post(bot + "/sendMessage", json={"chat_id": USER, **params})
        return answer.status_code, answer.json()

    status, body = send(text="я" * 4097)
    assert status == 400 and body == {
        "ok": False,
        "error_code": 400,
        "description": "Bad Request: message is too long",
    }
    assert send(text="я" * 4096)[0] == 200
    assert send(text="")[1]["description"] == "Bad Request: message text is empty"
    keyboard = {"inline_keyboard": [[{"text": "Да", "callback_data": "д" * 33}]]}  # 66 bytes
    status, body = send(text="?", reply_markup=keyboard)
    assert status == 400 and body["description"] == "Bad Request: BUTTON_DATA_INVALID"
    keyboard = {"inline_keyboard": [[{"text": "Да", "callback_data": "д" * 32}]]}  # 64 bytes
    assert send(text="?", reply_markup=keyboard)[0] == 200
    unknown_chat = http_post(bot + "/sendMessage", json={"chat_id": 42, "text": "x"})
    assert unknown_chat.status_code == 400
    assert unknown_chat.json()["description"] == "Bad Request: chat not found"


def test_updates_reach_the_webhook_with_the_secret_and_rising_ids(emu, twiml_app, bot, webhook):
    user = emu.telegram_user(USER, "Оля", language_code="uk", username="olya")
    user.write("Здравствуйте")
    user.write("Мне нужна помощь")
    hits = twiml_app.hits_to("/tg")
    assert [h.signature for h in hits] == [SECRET, SECRET] and all(h.valid for h in hits)
    first, second = twiml_app.updates("/tg")
    assert second["update_id"] == first["update_id"] + 1
    message = first["message"]
    assert message["text"] == "Здравствуйте" and message["message_id"] == 1
    assert message["from"] == {
        "id": USER,
        "is_bot": False,
        "first_name": "Оля",
        "username": "olya",
        "language_code": "uk",
    }
    assert message["chat"]["type"] == "private" and isinstance(message["date"], int)
    info = http_get(bot + "/getWebhookInfo").json()["result"]
    assert info["url"] == webhook and info["pending_update_count"] == 0
    assert info["allowed_updates"] == ["message", "callback_query"]
    assert "last_error_date" not in info


def test_buttons_pressed_and_answered(emu, twiml_app, bot, webhook):
    user = emu.telegram_user(USER, "A")
    user.write("start")
    keyboard = {
        "inline_keyboard": [
            [
                {"text": "Русский", "callback_data": "lang:ru"},
                {"text": "Українська", "callback_data": "lang:uk"},
            ]
        ]
    }
    sent = http_post(
        bot + "/sendMessage",
        data={"chat_id": USER, "text": "Язык?", "reply_markup": json.dumps(keyboard)},
    ).json()["result"]
    assert user.received() == [
        {
            "message_id": sent["message_id"],
            "text": "Язык?",
            "buttons": [[("Русский", "lang:ru"), ("Українська", "lang:uk")]],
        }
    ]
    query_id = user.press("lang:uk")
    query = twiml_app.updates("/tg")[-1]["callback_query"]
    assert query["id"] == query_id and query["data"] == "lang:uk"
    assert query["message"]["message_id"] == sent["message_id"] and query["from"]["id"] == USER
    answered = http_post(bot + "/answerCallbackQuery", json={"callback_query_id": query_id})
    assert answered.json() == {"ok": True, "result": True}
    assert user.callback_answers[0]["callback_query_id"] == query_id
    bad = http_post(bot + "/answerCallbackQuery", json={"callback_query_id": "nope"})
    assert bad.status_code == 400 and "query ID is invalid" in bad.json()["description"]
    with pytest.raises(AssertionError):
        user.press("lang:en")


def test_delete_message_within_48_hours(emu, bot, webhook):
    user = emu.telegram_user(USER, "A")
    user.write("hello")
    first = http_post(bot + "/sendMessage", json={"chat_id": USER, "text": "one"}).json()
    assert http_post(
        bot + "/deleteMessage", json={"chat_id": USER, "message_id": first["result"]["message_id"]}
    ).json() == {"ok": True, "result": True}
    assert user.received() == [] and user.deleted() == [first["result"]["message_id"]]
    again = http_post(
        bot + "/deleteMessage", json={"chat_id": USER, "message_id": first["result"]["message_id"]}
    )
    assert again.status_code == 400
    assert again.json()["description"] == "Bad Request: message to delete not found"
    old = http_post(bot + "/sendMessage", json={"chat_id": USER, "text": "old"}).json()["result"]
    emu.wait(48 * 3600 + 1)
    late = http_post(
        bot + "/deleteMessage", json={"chat_id": USER, "message_id": old["message_id"]}
    )
    assert late.status_code == 400 and "can't be deleted" in late.json()["description"]
    assert user.received_texts() == ["old"]
    # the user's own incoming message (id 1) is as old: also too late
    assert (
        http_post(bot + "/deleteMessage", json={"chat_id": USER, "message_id": 1}).status_code
        == 400
    )


def test_photo_get_file_and_download(emu, twiml_app, bot, webhook):
    emu.telegram_user(USER, "A").send_photo(PHOTO, caption="смотрите")
    message = twiml_app.updates("/tg")[-1]["message"]
    assert message["caption"] == "смотрите"
    file_id = message["photo"][-1]["file_id"]
    got = http_post(bot + "/getFile", data={"file_id": file_id}).json()["result"]
    assert got["file_id"] == file_id and got["file_size"] == len(PHOTO)
    download = http_get(f"{emu.base_url}/file/bot{emu.telegram_token}/{got['file_path']}")
    assert download.status_code == 200 and download.content == PHOTO
    wrong_token = http_get(f"{emu.base_url}/file/bot1:{'A' * 35}/{got['file_path']}")
    assert wrong_token.status_code == 401
    bad = http_post(bot + "/getFile", data={"file_id": "nope"})
    assert bad.status_code == 400 and bad.json()["description"] == "Bad Request: invalid file_id"


def test_set_webhook_validates_the_secret_and_delete_webhook(emu, bot):
    bad = http_post(
        bot + "/setWebhook", data={"url": "http://127.0.0.1:1/x", "secret_token": "ключ"}
    )
    assert bad.status_code == 400
    assert bad.json()["description"] == "Bad Request: secret token contains unallowed characters"
    deleted = http_post(bot + "/deleteWebhook").json()
    assert deleted == {"ok": True, "result": True, "description": "Webhook was deleted"}
    assert http_get(bot + "/getWebhookInfo").json()["result"]["url"] == ""


def test_a_failing_webhook_is_retried_and_reported_in_get_webhook_info(
    emu, twiml_app, bot, webhook
):
    twiml_app.route("/tg", "boom", status=500)
    user = emu.telegram_user(USER, "A")
    user.write("first")
    user.write("second")
    info = http_get(bot + "/getWebhookInfo").json()["result"]
    assert info["pending_update_count"] == 2
    assert info["last_error_message"] == "Wrong response from the webhook: 500"
    assert isinstance(info["last_error_date"], int)
    emu.wait(30)
    tries = len(twiml_app.hits_to("/tg"))
    assert tries >= 4  # retried with a backoff, only the first update (order is kept)
    assert {u["message"]["text"] for u in twiml_app.updates("/tg")} == {"first"}
    twiml_app.route("/tg", "")
    emu.wait(60)
    texts = [u["message"]["text"] for u in twiml_app.updates("/tg")[tries:]]
    assert texts == ["first", "second"]
    assert http_get(bot + "/getWebhookInfo").json()["result"]["pending_update_count"] == 0


def test_updates_wait_for_a_webhook_and_can_be_dropped(emu, twiml_app, bot):
    twiml_app.telegram_secret = SECRET
    twiml_app.route("/tg", "")
    user = emu.telegram_user(USER, "A")
    user.write("before the webhook")
    assert http_get(bot + "/getWebhookInfo").json()["result"]["pending_update_count"] == 1
    http_post(bot + "/setWebhook", data={"url": twiml_app.url("/tg"), "secret_token": SECRET})
    emu.settle()
    assert [u["message"]["text"] for u in twiml_app.updates("/tg")] == ["before the webhook"]
    http_post(bot + "/deleteWebhook")
    user.write("dropped")
    http_post(
        bot + "/setWebhook",
        data={"url": twiml_app.url("/tg"), "secret_token": SECRET, "drop_pending_updates": "true"},
    )
    emu.settle()
    assert len(twiml_app.updates("/tg")) == 1


def test_allowed_updates_filter_what_is_sent(emu, twiml_app, bot):
    twiml_app.telegram_secret = SECRET
    twiml_app.route("/tg", "")
    http_post(
        bot + "/setWebhook",
        data={
            "url": twiml_app.url("/tg"),
            "secret_token": SECRET,
            "allowed_updates": '["message"]',
        },
    )
    user = emu.telegram_user(USER, "A")
    user.write("hi")
    keyboard = {"inline_keyboard": [[{"text": "1", "callback_data": "one"}]]}
    http_post(bot + "/sendMessage", json={"chat_id": USER, "text": "?", "reply_markup": keyboard})
    user.press("one")
    assert [list(u)[1] for u in twiml_app.updates("/tg")] == ["message"]


def test_duplicated_and_reordered_updates(emu, twiml_app, bot, webhook):
    user = emu.telegram_user(USER, "A")
    user.write("dup", duplicate=True)
    first, second = twiml_app.updates("/tg")
    assert first == second
    emu.hold_updates()
    user.write("one")
    user.write("two")
    assert len(twiml_app.updates("/tg")) == 2  # held back
    emu.release_updates(reverse=True)
    texts = [u["message"]["text"] for u in twiml_app.updates("/tg")[2:]]
    ids = [u["update_id"] for u in twiml_app.updates("/tg")[2:]]
    assert texts == ["two", "one"] and ids[0] == ids[1] + 1
    emu.duplicate_updates()
    user.write("twice")
    assert [u["message"]["text"] for u in twiml_app.updates("/tg")[4:]] == ["twice", "twice"]


def test_a_method_in_the_webhook_reply_is_run(emu, twiml_app, bot, webhook):
    twiml_app.route(
        "/tg",
        lambda update: json.dumps(
            {"method": "sendMessage", "chat_id": update["message"]["chat"]["id"], "text": "ok"}
        ),
    )
    user = emu.telegram_user(USER, "A")
    user.write("hi")
    assert user.received_texts() == ["ok"]
