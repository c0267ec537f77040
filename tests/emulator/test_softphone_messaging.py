"""The softphone's messaging panel: a person writes to the hotline by SMS, WhatsApp or
Telegram from the browser and sees the replies (and presses Telegram buttons)."""

from __future__ import annotations

import pytest

from .conftest import HOTLINE
from .scripted_app import http_get, http_post

SECRET = "panel-secret"


def test_the_panel_api_sends_and_shows_the_conversation(emu, twiml_app, hotline):
    twiml_app.route("/sms", "<Response><Message>Мы получили</Message></Response>")
    sent = http_post(
        emu.base_url + "/phones/messaging/send",
        json={"channel": "whatsapp", "from": "+12025550187", "name": "Ира", "text": "Помогите"},
    )
    assert sent.status_code == 201
    assert sent.json()["messages"] == [{"mine": True, "text": "Помогите", "buttons": []}]
    (form,) = twiml_app.forms("/sms")
    assert form["From"] == "whatsapp:+12025550187" and form["ProfileName"] == "Ира"
    emu.wait(2)
    shown = http_get(
        emu.base_url + "/phones/messaging/conversation",
        params={"channel": "whatsapp", "from": "+12025550187"},
    ).json()["messages"]
    assert [(m["mine"], m["text"]) for m in shown] == [(True, "Помогите"), (False, "Мы получили")]
    refused = http_post(
        emu.base_url + "/phones/messaging/send", json={"channel": "sms", "from": "", "text": "x"}
    )
    assert refused.status_code == 400 and "error" in refused.json()


def test_the_phone_keeps_its_thread_after_the_carrier_deletes_its_copies(
    emu, twiml_app, hotline, twilio_client
):
    """The hotline deletes each message at the carrier once it has kept it: the person's phone
    still shows what they wrote and what they were sent (a handset keeps its own thread)."""
    twiml_app.route("/sms", "<Response><Message>Мы получили</Message></Response>")
    http_post(
        emu.base_url + "/phones/messaging/send",
        json={"channel": "sms", "from": "+12025550188", "text": "Помогите"},
    )
    emu.wait(2)
    client = twilio_client
    for message in client.messages.list():
        client.messages(message.sid).update(body="")  # redacted, as the hotline does
        client.messages(message.sid).delete()
    assert client.messages.list() == []
    shown = http_get(
        emu.base_url + "/phones/messaging/conversation",
        params={"channel": "sms", "from": "+12025550188"},
    ).json()["messages"]
    assert [(m["mine"], m["text"]) for m in shown] == [(True, "Помогите"), (False, "Мы получили")]


@pytest.mark.browser
def test_a_person_writes_by_sms_and_telegram_from_the_browser(emu, twiml_app, hotline, browser):
    twiml_app.route(
        "/sms", lambda f: f"<Response><Message>Ответ на: {f['Body']}</Message></Response>"
    )
    twiml_app.telegram_secret = SECRET
    bot = f"{emu.base_url}/bot{emu.telegram_token}"

    def on_update(update):
        message = update.get("message")
        if message:
            keyboard = {"inline_keyboard": [[{"text": "Русский", "callback_data": "lang:ru"}]]}
            http_post(
                bot + "/sendMessage",
                json={"chat_id": message["chat"]["id"], "text": "Язык?", "reply_markup": keyboard},
            )
        return ""

    twiml_app.route("/tg", on_update)
    http_post(bot + "/setWebhook", json={"url": twiml_app.url("/tg"), "secret_token": SECRET})
    page = browser.new_page()
    try:
        page.goto(emu.softphone_url)
        page.wait_for_selector(f"#msg-to option[value='{HOTLINE}']", state="attached")
        page.fill("#msg-text", "Мне нужна помощь")
        page.click("#msg-send")
        page.wait_for_selector("#msg-log li.mine")
        emu.wait(2)  # virtual time: the reply is delivered
        page.wait_for_selector("#msg-log li.hotline")
        assert page.inner_text("#msg-log li.hotline") == "Ответ на: Мне нужна помощь"
        assert twiml_app.forms("/sms")[0]["From"] == "+12025550187"

        page.select_option("#msg-channel", "telegram")
        assert page.input_value("#msg-from") == "100200300"
        page.fill("#msg-name", "Оля")
        page.fill("#msg-text", "Здравствуйте")
        page.click("#msg-send")
        page.wait_for_selector("#msg-log li.hotline button.press")
        with page.expect_response(lambda r: r.url.endswith("/phones/messaging/press")):
            page.click("#msg-log li.hotline button.press")
        updates = twiml_app.updates("/tg")
        assert updates[0]["message"]["from"]["first_name"] == "Оля"
        assert updates[-1]["callback_query"]["data"] == "lang:ru"
    finally:
        page.close()
