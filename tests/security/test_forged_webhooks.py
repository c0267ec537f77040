"""Forged carrier webhooks: what an outsider who can reach the app's URL can do with them.

The attack found on an earlier main: ``X-Twilio-Signature: \\xff\\xfe`` (any non-ASCII value)
made the signature compare raise; the view's error path then journalled the attacker's form, and
the next genuine call replayed it into the database as a caller, a case and a call. Every attack
here goes through the Procfile's gunicorn over a real socket, with the header bytes as sent.

The promise: whatever the signature header holds — nothing, garbage, bytes that are not ASCII,
4 kB, two copies, a valid signature of other parameters — every carrier webhook answers a plain
403; not one row, Redis key or journal byte is written, and the app logs no traceback.
"""

from __future__ import annotations

import base64
import json
import xml.etree.ElementTree as ET
from urllib.parse import urlencode

import pytest

from dataprotection import DataProtector
from db import db_session
from ivr import journal
from services import services
from tests.conftest import PUBLIC_BASE_URL, call_params, new_call_sid, sign
from tests.ivr.test_signatures import effects
from tests.support import handles

#: One path of every carrier webhook (the voice IVR, the fallback, the routing callbacks).
VOICE_WEBHOOKS = (
    "/voice/incoming",
    "/voice/ivr/main?attempt=1",
    "/voice/message/recorded",
    "/voice/message/retry?attempt=1",
    "/voice/recording",
    "/voice/status",
    "/voice/fallback",
    "/voice/fallback?step=recorded",
)
#: A Telegram update that a valid secret would make a caller, a case and a message of.
TELEGRAM_UPDATE = {
    "update_id": 123456,
    "message": {"message_id": 1, "date": 1765000000, "text": "forged",
                "from": {"id": 42, "is_bot": False, "first_name": "X"},
                "chat": {"id": 42, "type": "private"}},
}  # fmt: skip
STOPPED_DATABASE = "postgresql+psycopg://hotline@127.0.0.1:1/hotline?connect_timeout=1"


def carrier_webhook_paths(app) -> list[str]:
    """Every route the app marks as a carrier webhook, with placeholder arguments."""
    paths = []
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        if getattr(view, "carrier_webhook", False):
            path = rule.rule
            for argument in rule.arguments:
                path = path.replace(f"<{argument}>", "1").replace(f"<int:{argument}>", "1")
            paths.append(path)
    return sorted(paths)


def malformed_signatures(path: str, params: dict[str, str]) -> list[tuple[str, list]]:
    """(name, header list) of signature headers that must all be refused."""
    good = sign(PUBLIC_BASE_URL + path, params)
    return [
        ("non-ascii", [("X-Twilio-Signature", b"\xff\xfe")]),
        ("non-ascii-after-valid", [("X-Twilio-Signature", good.encode() + b"\xc3\xa9")]),
        ("utf8-text", [("X-Twilio-Signature", "подпись".encode())]),
        ("nul", [("X-Twilio-Signature", b"\x00" * 28)]),
        ("empty", [("X-Twilio-Signature", b"")]),
        ("oversized", [("X-Twilio-Signature", b"A" * 4096)]),
        ("missing", []),
        ("repeated-valid", [("X-Twilio-Signature", good), ("X-Twilio-Signature", good)]),
        ("repeated-mixed", [("X-Twilio-Signature", b"\xff"), ("X-Twilio-Signature", good)]),
        ("other-params", [("X-Twilio-Signature", sign(PUBLIC_BASE_URL + path, {"a": "b"}))]),
    ]


ATTACKS = [name for name, _ in malformed_signatures("/", {})]


def secret_routes(app) -> dict[str, str]:
    """The webhooks proved by a shared secret in a header (Telegram's) instead of a signature:
    path → the header's name (``secret_header`` on the view, set by its decorator)."""
    found = {}
    for rule in app.url_map.iter_rules():
        header = getattr(app.view_functions[rule.endpoint], "secret_header", None)
        if header:
            found[rule.rule] = header
    return found


def malformed_secrets(header: str, good: str) -> dict[str, list]:
    """The same attacks on a secret-token header, by the signature attacks' names."""
    return {
        "non-ascii": [(header, b"\xff\xfe")],
        "non-ascii-after-valid": [(header, good.encode() + b"\xc3\xa9")],
        "utf8-text": [(header, "секрет".encode())],
        "nul": [(header, b"\x00" * 28)],
        "empty": [(header, b"")],
        "oversized": [(header, b"A" * 4096)],
        "missing": [],
        "repeated-valid": [(header, good), (header, good)],
        "repeated-mixed": [(header, b"\xff"), (header, good)],
        "other-params": [(header, "A" * len(good))],  # the right shape, not the secret
    }


@pytest.mark.parametrize("attack", ATTACKS)
def test_a_malformed_signature_gets_a_plain_403_on_every_webhook(app, served, attack):
    web = served("web")
    paths = carrier_webhook_paths(app)
    assert "/voice/incoming" in paths and any(p.startswith("/routing/") for p in paths)
    before = effects(app)
    secrets = secret_routes(app)
    assert "/messaging/incoming" in paths and "/messaging/telegram" in secrets
    for path in paths:
        params = call_params(
            new_call_sid(), "+79161230000", Digits="1", RecordingSid="RE" + "a" * 32
        )
        if path in secrets:  # Telegram: a JSON update and its secret token
            good = handles(app).settings.telegram_webhook_secret
            headers = malformed_secrets(secrets[path], good)[attack]
            body = json.dumps(TELEGRAM_UPDATE).encode()
            items = [*headers, ("Content-Type", "application/json")]
            answer = web.request("POST", path, body, items)
        else:
            headers = dict(malformed_signatures(path, params))[attack]
            answer = web.post_form(path, params, headers)
        # gunicorn itself refuses a NUL in a header (400) before the app sees the request.
        refused = (400, 403) if attack == "nul" else (403,)
        assert answer.status in refused, (path, answer.status, answer.text[:200])
        assert b"<Response" not in answer.body
    assert effects(app) == before
    assert "Traceback" not in web.log()


def test_a_forged_webhook_during_a_database_outage_is_not_journalled(app, served, settings):
    """The error path (the message box and the journal, for the carrier while the database is
    down) is reached by signed requests only; the forged one gets its 403 before any of it."""
    web = served("web", DATABASE_URL=STOPPED_DATABASE)
    params = call_params(new_call_sid(), "+79161230001")
    for path in VOICE_WEBHOOKS:
        forged = web.post_form(path, params, [("X-Twilio-Signature", b"\xff\xfe")])
        assert forged.status == 403, (path, forged.text[:200])
    assert not settings.journal_path.exists()

    signed = web.signed_post(PUBLIC_BASE_URL, "/voice/incoming", params)  # the control
    assert signed.status == 200
    assert ET.fromstring(signed.body).find("Record") is not None  # the fallback message box
    assert settings.journal_path.stat().st_size > 0


def test_a_flood_of_signed_requests_during_an_outage_stops_at_the_journal_cap(served, settings):
    """The journal cannot fill the disk: past FALLBACK_JOURNAL_MAX_BYTES it keeps nothing more
    and says so in the log, while callers still get the message box."""
    web = served("web", DATABASE_URL=STOPPED_DATABASE, FALLBACK_JOURNAL_MAX_BYTES="4000")
    for _ in range(12):
        answer = web.signed_post(PUBLIC_BASE_URL, "/voice/fallback", call_params(new_call_sid()))
        assert answer.status == 200 and b"<Record" in answer.body
    assert 0 < settings.journal_path.stat().st_size <= 4000
    assert "the fallback journal is full" in web.log()


def sealed_line(protector: DataProtector, entry: dict) -> bytes:
    sealed = protector.seal(json.dumps(entry).encode(), b"hotline-fallback-journal")
    return (sealed.key_id + ":" + base64.b64encode(sealed.ciphertext).decode()).encode()


@pytest.mark.parametrize(
    "params",
    [
        {"CallSid": "not-a-sid", "From": "+79160000000"},
        {"CallSid": "CA" + "g" * 32, "From": "+79160000000"},
        {"CallSid": "CA" + "a" * 32, "From": "x" * 5000},
        {"CallSid": "CA" + "a" * 32, "RecordingSid": "RE../../etc/passwd"},
        {"CallSid": "CA" + "a" * 32, "From": ["+7916", "+7917"]},
    ],
    ids=["sid-format", "sid-not-hex", "oversized", "recording-sid", "not-a-string"],
)
def test_a_replayed_journal_entry_must_look_like_what_the_fallback_writes(app, settings, params):
    """Even an entry sealed with the data key (so written by a host of ours) is checked before
    it becomes a caller: it is kept aside, not written."""
    entry = {"received_at": "2026-01-01T00:00:00+00:00", "step": "entered", "params": params}
    settings.journal_path.parent.mkdir(parents=True, exist_ok=True)
    with app.app_context():
        settings.journal_path.write_bytes(sealed_line(services().protector, entry) + b"\n")
    before = effects(app)
    with app.app_context():
        applied = journal.replay(settings.journal_path, services().protector, db_session())
    assert applied == 0
    after = effects(app)
    assert {k: v for k, v in after.items() if k != "journal bytes"} == {
        k: v for k, v in before.items() if k != "journal bytes"
    }
    assert (settings.journal_path.parent / (settings.journal_path.name + ".bad")).exists()


def test_a_non_ascii_csrf_token_is_a_400_not_a_500(served):
    """The console's CSRF check compares in constant time and is simply "no" for any input."""
    web = served("console")
    login = web.request("GET", "/console/login")
    cookie = login.headers["set-cookie"].split(";", 1)[0]
    body = urlencode({"username": "x", "password": "y"}).encode()
    answer = web.request(
        "POST", "/console/login", body,
        [("Cookie", cookie), ("Content-Type", "application/x-www-form-urlencoded"),
         ("X-CSRF-Token", b"\xff\xfe")],
    )  # fmt: skip
    assert answer.status == 400
    assert "Traceback" not in web.log()
