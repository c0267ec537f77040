"""Forged messaging webhooks, sent to the Procfile's gunicorn over a real socket.

``/messaging/incoming`` and ``/messaging/status`` are Twilio's (signed like the voice
webhooks); ``/messaging/telegram`` is proved by the secret token given to ``setWebhook``. Whatever
the header holds — nothing, garbage, non-ASCII bytes, 4 kB, two copies, the wrong secret — the
answer is a plain 403 and nothing is written, enqueued or logged as a traceback. The controls:
the same requests, rightly signed, are answered and kept once however often they come.
"""

from __future__ import annotations

import json

import pytest

from inquiries import message_models as m
from tests.conftest import PUBLIC_BASE_URL
from tests.ivr.test_signatures import effects
from tests.messaging.support import messages, new_message_sid, sms_params, telegram_message
from tests.security.test_forged_webhooks import ATTACKS, malformed_secrets, malformed_signatures
from tests.support import handles

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
NUMBER = "+79161237777"


def post_update(web, update: dict, headers: list) -> object:
    body = json.dumps(update).encode()
    return web.request("POST", "/messaging/telegram", body,
                       [*headers, ("Content-Type", "application/json")])  # fmt: skip


@pytest.mark.parametrize("attack", ATTACKS)
def test_a_forged_secret_token_or_signature_is_refused_with_nothing_written(app, served, attack):
    web = served("web")
    good = handles(app).settings.telegram_webhook_secret
    before = effects(app)
    answer = post_update(web, telegram_message(42, "forged"),
                         malformed_secrets(SECRET_HEADER, good)[attack])  # fmt: skip
    assert answer.status in ((400, 403) if attack == "nul" else (403,)), answer.text[:200]
    for path in ("/messaging/incoming", "/messaging/status"):
        params = sms_params(new_message_sid(), NUMBER, "forged", MessageStatus="delivered")
        headers = dict(malformed_signatures(path, params))[attack]
        answer = web.post_form(path, params, headers)
        assert answer.status in ((400, 403) if attack == "nul" else (403,)), (path, answer.status)
        assert b"<Response" not in answer.body
    assert effects(app) == before
    assert "Traceback" not in web.log()


def test_rightly_signed_and_repeated_messages_are_kept_once_and_never_logged(app, served):
    web = served("web")
    params = sms_params(new_message_sid(), NUMBER, "Мне нужно сдаться, я в посадке")
    for _ in range(3):
        answer = web.signed_post(PUBLIC_BASE_URL, "/messaging/incoming", params)
        assert answer.status == 200 and b"<Response" in answer.body
    update = telegram_message(987_654_321, "Пишу из подвала")
    good = handles(app).settings.telegram_webhook_secret
    for _ in range(3):
        assert post_update(web, update, [(SECRET_HEADER, good)]).status == 200
    assert len(messages(app, m.INBOUND)) == 2
    assert len(messages(app, m.OUTBOUND)) == 2  # one greeting each
    log = web.log()
    for secret in (NUMBER, NUMBER[1:], "сдаться", "подвала", "987654321", "Zebed"):
        assert secret not in log, secret
