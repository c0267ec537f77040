"""SECURITY.md promise 1: a carrier webhook without a valid signature gets 403, and has no effect.

"No effect" is measured: row counts of every table, the Redis key count and the fallback journal
are the same before and after. A correctly signed twin of each request is the control that shows
the same request would have written something.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from sqlalchemy import func, inspect, select, table
from twilio.request_validator import RequestValidator

from tests.conftest import (
    AUTH_TOKEN,
    PUBLIC_BASE_URL,
    call_params,
    new_call_sid,
    sign,
)
from tests.support import handles

WEBHOOKS = [
    ("/voice/incoming", {}),
    ("/voice/ivr/language?attempt=1", {"Digits": "1"}),
    ("/voice/ivr/main?attempt=2", {"Digits": "0"}),
    ("/voice/ivr/no-such-node", {"SpeechResult": "оператор"}),
    ("/voice/message/recorded", {"RecordingSid": "RE" + "a" * 32, "RecordingDuration": "7"}),
    ("/voice/message/retry?attempt=1&callback=1", {}),
    ("/voice/recording", {"RecordingSid": "RE" + "b" * 32, "RecordingStatus": "completed"}),
    ("/voice/status", {"CallStatus": "completed", "CallDuration": "42"}),
    ("/voice/fallback", {"ErrorCode": "11200"}),
    ("/voice/fallback?step=recorded", {"RecordingSid": "RE" + "c" * 32}),
]
WEBHOOK_IDS = [path for path, _ in WEBHOOKS]


def other_query(path: str) -> str:
    base, _, query = path.partition("?")
    return f"{base}?{query}9" if query else f"{base}?step=recorded"


def bad_requests(path: str, params: dict[str, str]):
    """(name, headers, posted params) of requests that must all be refused."""
    url = PUBLIC_BASE_URL + path

    def signed_for(other_url: str, token: str = AUTH_TOKEN) -> dict[str, str]:
        return {"X-Twilio-Signature": sign(other_url, params, token=token)}

    good = signed_for(url)
    return [
        ("missing", {}, params),
        ("empty", {"X-Twilio-Signature": ""}, params),
        ("forged", {"X-Twilio-Signature": "RSOYDt4T1cUTdK1PDd93/VVr8B8="}, params),
        ("truncated", {"X-Twilio-Signature": good["X-Twilio-Signature"][:-2]}, params),
        ("param-changed", good, {**params, "From": "+79990000000"}),
        ("param-added", good, {**params, "Injected": "1"}),
        ("param-removed", good, dict(list(params.items())[1:])),
        ("other-path", signed_for(PUBLIC_BASE_URL + "/voice/other"), params),
        ("other-query", signed_for(PUBLIC_BASE_URL + other_query(path)), params),
        ("other-host", signed_for(url.replace("hotline.", "evil.")), params),
        ("http-not-https", signed_for(url.replace("https://", "http://")), params),
        ("other-token", signed_for(url, token="another-token"), params),
    ]


BAD_NAMES = [name for name, _, _ in bad_requests("/voice/incoming", {"a": "b"})]


def effects(app) -> dict[str, int]:
    """Everything a webhook could change: rows per table, Redis keys, the journal's size."""
    svc = handles(app)
    with svc.engine.connect() as conn:
        names = inspect(conn).get_table_names()
        counts = {
            name: conn.scalar(select(func.count()).select_from(table(name))) for name in names
        }
    counts["redis keys"] = svc.redis.dbsize()
    journal = svc.settings.journal_path
    counts["journal bytes"] = journal.stat().st_size if journal.exists() else 0
    return counts


def request_params(params: dict[str, str]) -> dict[str, str]:
    return call_params(new_call_sid(), **params)


@pytest.mark.parametrize(("path", "params"), WEBHOOKS, ids=WEBHOOK_IDS)
@pytest.mark.parametrize("attack", BAD_NAMES)
def test_badly_signed_request_is_refused_and_has_no_effect(app, client, path, params, attack):
    params = request_params(params)
    _, headers, posted = next(r for r in bad_requests(path, params) if r[0] == attack)
    before = effects(app)
    response = client.post(path, data=posted, headers=headers)
    assert response.status_code == 403
    assert effects(app) == before
    assert not handles(app).settings.journal_path.exists()


@pytest.mark.parametrize(("path", "params"), WEBHOOKS, ids=WEBHOOK_IDS)
def test_correctly_signed_twin_has_an_effect(app, carrier, path, params):
    """The control for the test above: the same request, signed, writes something."""
    before = effects(app)
    root = carrier.twiml(path, request_params(params))
    assert root.tag == "Response"
    assert effects(app) != before


@pytest.mark.parametrize(("path", "params"), WEBHOOKS, ids=WEBHOOK_IDS)
def test_unknown_extra_parameters_signed_along_are_accepted(carrier, path, params):
    extra = {
        "FromCountry": "RU",
        "CallerName": "",
        "StirVerstat": "TN-Validation-Passed-A",
        "SomethingTwilioAddsTomorrow": "значение & more=1",
    }
    root = carrier.twiml(path, request_params({**params, **extra}))
    assert root.tag == "Response"


@pytest.mark.parametrize(
    "base_url", ["http://10.0.0.7:8000", "https://internal.lan", "http://hotline.example.org"]
)
def test_signature_is_checked_against_public_base_url_not_host(app, client, base_url):
    path = "/voice/incoming"
    params = request_params({})
    headers = {"X-Twilio-Signature": sign(PUBLIC_BASE_URL + path, params)}
    before = effects(app)
    response = client.post(path, data=params, headers=headers, base_url=base_url)
    assert response.status_code == 200
    assert ET.fromstring(response.data).tag == "Response"
    assert effects(app) != before
    # Signed for the Host the request arrived with (what a naive check would accept): refused.
    params = request_params({})
    headers = {"X-Twilio-Signature": sign(base_url + path, params)}
    assert client.post(path, data=params, headers=headers, base_url=base_url).status_code == 403


def test_forwarded_headers_do_not_change_the_signed_url(client):
    path = "/voice/incoming"
    params = request_params({})
    headers = {
        "X-Twilio-Signature": sign("https://evil.example.org" + path, params),
        "X-Forwarded-Host": "evil.example.org",
        "X-Forwarded-Proto": "https",
        "Host": "evil.example.org",
    }
    assert client.post(path, data=params, headers=headers).status_code == 403


def test_twilio_test_vector_validates():
    """twilio-python's own vector (docs/TWILIO.md): the helper and the validator agree."""
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+14158675309",
        "Digits": "1234",
        "From": "+14158675309",
        "To": "+18005551212",
    }
    expected = "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    validator = RequestValidator("12345")
    assert validator.compute_signature(url, params) == expected
    assert sign(url, params, token="12345") == expected
    assert validator.validate(url, params, expected)
    assert not validator.validate(url, {**params, "Digits": "1235"}, expected)
    assert not RequestValidator(AUTH_TOKEN).validate(url, params, expected)
