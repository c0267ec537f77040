"""SECURITY.md promise 13: any signed input to a voice webhook gives valid TwiML, never a 5xx.

Hypothesis posts arbitrary form fields (unicode, control characters, huge values, wrong types,
garbage and valid CallSids) and arbitrary query arguments, correctly signed, to every voice path.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from ivr.fallback import STEPS
from ivr.flow import load_flow
from tests.conftest import (
    ACCOUNT_SID,
    HOTLINE_NUMBER,
    PUBLIC_BASE_URL,
    call_params,
    new_call_sid,
    sign,
)
from tests.support import handles
from webhooks import MAX_FORM_BYTES

#: Twilio's voice verbs (what may appear directly under <Response>).
VERBS = {
    "Say", "Play", "Pause", "Gather", "Record", "Redirect", "Hangup", "Reject", "Enqueue",
    "Dial", "Leave", "Refer", "Connect", "Start", "Stop", "Pay", "Sms", "Echo",
}  # fmt: skip
GATHER_VERBS = {"Say", "Play", "Pause"}
NODES = [*sorted(load_flow().nodes), "no-such-node", "Language", "main.wav", "-", "0"]
KNOWN_FIELDS = [
    "CallSid", "AccountSid", "From", "To", "Caller", "Called", "CallStatus", "Direction",
    "Digits", "SpeechResult", "Confidence", "RecordingSid", "RecordingUrl", "RecordingDuration",
    "RecordingStatus", "CallDuration", "ErrorCode", "ErrorUrl", "ForwardedFrom", "ParentCallSid",
]  # fmt: skip
CARRIER_WORDS = [
    "in-progress", "completed", "absent", "failed", "ringing", "busy", "no-answer", "canceled",
    "queued", "inbound", "outbound-api", "hangup", "1", "0", "#", "*", "", "abc", "-1", "1e9",
    "NaN", "99999999999", "9" * 40, "٣", "１２", "+79161234567", "client:anna", "anonymous",
    "whatsapp:+380501234567", "оператор", "русский", "да", "two", "https://api.twilio.com/x",
]  # fmt: skip

SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

sids = st.one_of(
    st.from_regex(r"\A(CA|RE)[0-9a-f]{32}\Z"),
    st.sampled_from(["CA" + "0" * 32, "CA" + "F" * 32, "CA123", "", "CA" + "g" * 32]),
    st.text(max_size=70),
)
huge = st.builds(
    lambda unit, n: (unit * n)[:n],
    st.text(min_size=1, max_size=3),
    st.integers(min_value=1_000, max_value=20_000),
)
values = st.one_of(
    st.text(),  # any unicode, control characters included
    st.text(alphabet=st.characters(max_codepoint=0x1F), max_size=40),
    st.sampled_from(CARRIER_WORDS),
    st.integers().map(str),
    st.floats(allow_nan=True).map(str),
    sids,
    huge,
)
field_names = st.one_of(st.sampled_from(KNOWN_FIELDS), st.text(max_size=30))
arguments = st.one_of(st.integers(min_value=-(10**30), max_value=10**30), st.text(max_size=30))


@st.composite
def forms(draw) -> dict[str, str]:
    """A carrier-like base (valid or garbage) overlaid with arbitrary fields."""
    form: dict[str, str] = {}
    if draw(st.booleans()):
        number = draw(st.one_of(st.just("+79161234567"), values))
        form.update(
            CallSid=draw(sids), AccountSid=ACCOUNT_SID, From=number, To=HOTLINE_NUMBER,
            CallStatus="in-progress", Direction="inbound", ApiVersion="2010-04-01",
        )  # fmt: skip
    form.update(draw(st.dictionaries(field_names, values, max_size=8)))
    return form


def query(**args: object) -> str:
    return "?" + urlencode(args)


paths = st.one_of(
    st.just("/voice/incoming"),
    st.builds(lambda node: f"/voice/ivr/{node}", st.sampled_from(NODES)),
    st.builds(
        lambda node, attempt: f"/voice/ivr/{node}" + query(attempt=attempt),
        st.sampled_from(NODES),
        arguments,
    ),
    st.just("/voice/message/recorded"),
    st.just("/voice/message/retry"),
    st.builds(
        lambda a, c: "/voice/message/retry" + query(attempt=a, callback=c), arguments, arguments
    ),
    st.just("/voice/recording"),
    st.just("/voice/status"),
    st.just("/voice/fallback"),
    st.builds(
        lambda step: "/voice/fallback" + query(step=step),
        st.one_of(st.sampled_from(STEPS), st.text(max_size=20)),
    ),
)


def assert_valid_twiml(response) -> ET.Element:
    assert response.status_code == 200, response.status_code
    assert response.mimetype == "text/xml"
    root = ET.fromstring(response.data)
    assert root.tag == "Response"
    for verb in root:
        assert verb.tag in VERBS, verb.tag
        if verb.tag == "Gather":
            assert {child.tag for child in verb} <= GATHER_VERBS
        if verb.tag in ("Redirect", "Play"):
            assert verb.text is not None
            assert verb.text.startswith(PUBLIC_BASE_URL + "/voice/"), verb.text
    for element in root.iter():  # every callback the carrier is given comes back to us
        for attribute in ("action", "recordingStatusCallback"):
            if attribute in element.attrib:
                assert element.attrib[attribute].startswith(PUBLIC_BASE_URL + "/voice/")
    return root


def post_signed(client, path: str, form: dict[str, str]) -> ET.Element | None:
    """Post ``form`` signed; the TwiML root, or None for a body too big to be Twilio's (413)."""
    signature = sign(PUBLIC_BASE_URL + path, form)
    response = client.post(path, data=form, headers={"X-Twilio-Signature": signature})
    if (response.request.content_length or 0) > MAX_FORM_BYTES:
        assert response.status_code == 413  # not from Twilio: refused before anything is read
        return None
    return assert_valid_twiml(response)


@SETTINGS
@given(path=paths, form=forms())
def test_any_signed_form_gives_valid_twiml(client, path, form) -> None:
    post_signed(client, path, form)


@SETTINGS
@given(
    node=st.sampled_from(NODES),
    attempt=arguments,
    digits=st.one_of(st.sampled_from(["0", "1", "2", "3", "9", "*", "#", "12", "abc"]), values),
    speech=st.one_of(st.none(), st.text(), st.sampled_from(CARRIER_WORDS)),
    sid=sids,
)
def test_menu_answers_give_valid_twiml(client, node, attempt, digits, speech, sid) -> None:
    """Walks the menus with any key or phrase, at any attempt, for calls new and known."""
    form = {"CallSid": sid, "From": "+79161234567", "Digits": digits}
    if speech is not None:
        form["SpeechResult"] = speech
        form["Confidence"] = "0.5"
    root = post_signed(client, f"/voice/ivr/{node}" + query(attempt=attempt), form)
    assert root is None or len(root) > 0  # a menu answer always says or does something


@SETTINGS
@given(
    path=st.sampled_from(["/voice/message/recorded", "/voice/recording", "/voice/status"]),
    sid=sids,
    recording_sid=sids,
    status=st.one_of(st.sampled_from(CARRIER_WORDS), st.text(max_size=20)),
    duration=st.one_of(st.sampled_from(CARRIER_WORDS), st.integers().map(str), st.text()),
    url=st.one_of(st.just("https://api.twilio.com/2010-04-01/Recordings/RE1"), values),
)
def test_callbacks_give_valid_twiml(client, path, sid, recording_sid, status, duration, url):
    form = {
        "CallSid": sid, "From": "+79161234567", "RecordingSid": recording_sid,
        "RecordingStatus": status, "CallStatus": status, "RecordingDuration": duration,
        "CallDuration": duration, "RecordingUrl": url,
    }  # fmt: skip
    post_signed(client, path, form)


raw_bodies = st.lists(
    st.one_of(
        st.binary(max_size=30),
        st.binary(max_size=10).map(lambda b: "".join(f"%{x:02X}" for x in b).encode()),
        st.sampled_from([b"=", b"&", b"+", b"%", b"%zz", b"CallSid=CA" + b"a" * 32, b"\xff\xfe"]),
    ),
    max_size=12,
).map(b"".join)


@SETTINGS
@given(path=paths, body=raw_bodies)
def test_wrong_encodings_never_give_a_5xx(client, path, body) -> None:
    """Raw bodies (bad UTF-8, bad escapes), signed over what the app will parse from them."""
    content_type = "application/x-www-form-urlencoded"
    environ = EnvironBuilder(path=path, method="POST", data=body, content_type=content_type)
    parsed = MultiDict(Request(environ.get_environ()).form)
    headers = {"X-Twilio-Signature": sign(PUBLIC_BASE_URL + path, parsed)}
    response = client.post(path, data=body, content_type=content_type, headers=headers)
    assert_valid_twiml(response)


OVERFLOW = str(2**63)  # a carrier never sends it; beyond SQLite's INTEGER and PostgreSQL's
RECORDING = "RE" + "7" * 32


@pytest.mark.parametrize(
    ("path", "extra"),
    [
        pytest.param("/voice/message/recorded", {"RecordingSid": RECORDING,
                     "RecordingDuration": OVERFLOW}, id="recorded-huge-duration"),
        pytest.param("/voice/recording", {"RecordingSid": RECORDING, "RecordingStatus": "completed",
                     "RecordingDuration": OVERFLOW}, id="recording-huge-duration"),
        pytest.param("/voice/status", {"CallStatus": "completed", "CallDuration": OVERFLOW}, id="status-huge-duration"),
        pytest.param("/voice/message/retry" + query(attempt=10**100), {},
                     id="retry-huge-attempt"),
        pytest.param("/voice/message/recorded", {"RecordingSid": "RE\x00" + "7" * 32}, id="recorded-nul-sid"),
        pytest.param("/voice/recording", {"RecordingSid": "RE\x00", "RecordingStatus": "absent"}, id="recording-nul-sid"),
        pytest.param("/voice/ivr/main" + query(attempt=10**100), {"Digits": "\x00"},
                     id="menu-nul-digits"),
        pytest.param("/voice/message/recorded", {"RecordingSid": RECORDING,
                     "RecordingDuration": "1_000"}, id="recorded-odd-duration"),
    ],
)  # fmt: skip
def test_odd_values_are_not_an_error(app, carrier, caplog, path, extra) -> None:
    """Examples the properties above found: valid TwiML, but it must not be the error handler's."""
    sid = new_call_sid()
    carrier.twiml("/voice/incoming", call_params(sid))
    caplog.clear()
    root = carrier.twiml(path, call_params(sid, **extra))
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert not handles(app).settings.journal_path.exists()
    actions = [element.attrib.get("action", "") for element in root.iter()]
    assert [action for action in actions if "/voice/fallback" in action] == []
