"""extensions.FormRequest parses small url-encoded bodies itself: it must give exactly the form
werkzeug's parser gives (the Twilio signature is computed over it), whatever the bytes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from extensions import FormRequest
from tests.conftest import call_params, new_call_sid
from webhooks import form_int, form_value

URLENCODED = "application/x-www-form-urlencoded"


def both(body: bytes, content_type: str = URLENCODED):
    def environ():
        return EnvironBuilder(
            path="/", method="POST", data=body, content_type=content_type
        ).get_environ()

    ours, theirs = FormRequest(environ()), Request(environ())
    return ours, theirs


def same_form(body: bytes, content_type: str = URLENCODED) -> None:
    ours, theirs = both(body, content_type)
    assert list(ours.form.items(multi=True)) == list(theirs.form.items(multi=True))
    assert ours.get_data() == theirs.get_data()  # consumed by the parse, or not, alike


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"CallSid=CA123&Digits=1&SpeechResult=",
        b"a=1&a=2&b=%D0%BF%D1%80%D0%B8%D0%B2%D0%B5%D1%82+%2B",
        b"\x80",  # not UTF-8: an empty form
        b"a=%80&b=\xc3\xa9&c=%zz&d=%C3%A9+x",  # bad escapes stay escaped
        b"noequals&=x&y=&&",
        b"a=" + b"x" * (70 * 1024),  # larger than parsed directly: werkzeug's parser
        # every escape of an ASCII byte, in both cases, in a name and in a value
        b"n%41%2b=" + "".join(f"%{b:02x}x%{b:02X}" for b in range(128)).encode(),
    ],
)
def test_the_same_form_as_werkzeug(body: bytes) -> None:
    same_form(body)


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=300) | st.text(max_size=200).map(str.encode))
def test_any_body_gives_the_same_form_as_werkzeug(body: bytes) -> None:
    same_form(body)


@settings(max_examples=300, deadline=None)
@given(
    fields=st.lists(
        st.tuples(
            st.text(alphabet="ab=+%&é 2F", max_size=8), st.text(alphabet="ab=+%&é 2F", max_size=8)
        ),
        max_size=6,
    )
)
def test_field_shaped_bodies_give_the_same_form_as_werkzeug(fields) -> None:
    """Bodies made of the characters that matter: separators, '=', '+', '%' and escapes."""
    same_form("&".join(f"{name}={value}" for name, value in fields).encode())


@settings(max_examples=300, deadline=None)
@given(value=st.text(alphabet="%0123456789abcdefABCDEF+xж", max_size=24))
def test_percent_escapes_decode_as_werkzeug_decodes_them(value) -> None:
    """Escapes of ASCII bytes (``%2B``, ``%3a``) are replaced directly; UTF-8 sequences, broken
    and lone escapes go to ``unquote``: the same form either way, names and values."""
    same_form(f"v={value}&{value}=v&Caller=%2B7%2b{value}".encode())


@pytest.mark.parametrize(
    "content_type",
    [
        URLENCODED,
        "Application/X-WWW-Form-Urlencoded",
        f"{URLENCODED}; charset=utf-8",
        f"{URLENCODED}; charset=UTF-8",
        f"{URLENCODED}; charset=latin-1",  # werkzeug reads UTF-8 all the same
    ],
)
def test_any_spelling_of_the_urlencoded_type_gives_the_same_form(content_type) -> None:
    same_form(b"To=%2B15005550006&Digits=1&SpeechResult=da+da", content_type)


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"CONTENT_LENGTH": "12"},
        {"CONTENT_LENGTH": "-3"},
        {"CONTENT_LENGTH": "1e3"},
        {"CONTENT_LENGTH": "12", "HTTP_TRANSFER_ENCODING": "chunked"},
        {"CONTENT_LENGTH": "12", "HTTP_TRANSFER_ENCODING": "gzip, Chunked"},
        {"CONTENT_LENGTH": "12", "HTTP_TRANSFER_ENCODING": "gzip"},
    ],
)
def test_the_content_length_is_werkzeugs(extra) -> None:
    environ = EnvironBuilder(path="/", method="POST").get_environ()
    environ.pop("CONTENT_LENGTH", None)
    environ.update(extra)
    assert FormRequest(dict(environ)).content_length == Request(dict(environ)).content_length


def test_the_form_gives_the_signature_check_each_parameters_values() -> None:
    ours, theirs = both(b"Digits=12&Digits=9&From=%2B7916")
    assert ours.form.getall("Digits") == ["12", "9"] == theirs.form.getlist("Digits")
    assert ours.form.getall("From") == ["+7916"]
    with pytest.raises(TypeError):
        ours.form["x"] = "y"  # still immutable


def test_other_content_types_go_to_werkzeug() -> None:
    same_form(b'{"a": 1}', "application/json")
    ours, _ = both(b"--x\r\n", "multipart/form-data; boundary=x")
    assert dict(ours.form) == {}


def test_a_short_body_is_a_client_disconnect() -> None:
    environ = EnvironBuilder(
        path="/", method="POST", data=b"a=1", content_type=URLENCODED
    ).get_environ()
    environ["CONTENT_LENGTH"] = "10"  # says 10, sends 3
    with pytest.raises(Exception, match="400 Bad Request"):
        _ = FormRequest(environ).form


def test_a_webhook_response_sets_no_cookie(client, carrier) -> None:
    response = carrier.post("/voice/incoming", call_params(new_call_sid()))
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
    assert "Vary" not in response.headers
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_form_helpers_read_the_first_value_and_tolerate_missing_names(app) -> None:
    body = "Digits=12&Digits=9&From=%2B7%00916&RecordingDuration=42&Big=123456789&Neg=-3"
    with app.test_request_context("/voice/x", method="POST", data=body, content_type=URLENCODED):
        assert form_value("Digits") == "12"  # the first of repeated values, as MultiDict.get
        assert form_value("From") == "+7916"  # control characters dropped
        assert form_value("Digits", limit=1) == "1"
        assert form_value("SpeechResult") == ""  # missing
        assert form_int("RecordingDuration") == 42
        assert form_int("Big") is None and form_int("Neg", 0) == 0 and form_int("Nope", 5) == 5
