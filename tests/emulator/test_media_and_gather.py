"""Say, Play, Pause and Gather as Twilio documents them, defaults included."""

from __future__ import annotations

import re

from .conftest import CALLER, HOTLINE
from .scripted_app import twiml

CALL_SID = re.compile(r"^CA[0-9a-f]{32}$")


def test_say_play_pause_in_order_with_attributes(emu, twiml_app, hotline):
    twiml_app.route(
        "/voice",
        twiml(
            '<Say language="ru-RU" voice="Polly.Tatyana">Здравствуйте</Say>',
            '<Play loop="2">https://media.example.org/hello.mp3</Play>',
            '<Pause length="3"/>',
            "<Say>Goodbye</Say>",
            '<Play digits="12w3"/>',
        ),
    )
    emu.set_media_length("https://media.example.org/hello.mp3", 2.0)
    call = emu.dial(CALLER, HOTLINE)
    assert call.wait_until_finished() == "completed"
    kinds = [h.kind for h in call.heard]
    assert kinds == ["say", "play", "pause", "say", "play"]
    first, play, pause, second, digits = call.heard
    assert (first.text, first.language, first.voice) == ("Здравствуйте", "ru-RU", "Polly.Tatyana")
    assert (second.text, second.language, second.voice) == ("Goodbye", "en-US", "man")
    assert play.url == "https://media.example.org/hello.mp3" and play.loop == 2
    assert play.seconds == 4.0
    assert pause.seconds == 3.0
    assert digits.digits == "12w3"
    assert call.said_texts() == ["Здравствуйте", "Goodbye"]
    # media takes (virtual) time, in order
    assert first.at < play.at < pause.at < second.at
    assert second.at - pause.at == 3.0


def test_first_webhook_parameters_and_signature(emu, twiml_app, hotline):
    twiml_app.route("/voice", twiml("<Say>Hi</Say>"))
    call = emu.dial(CALLER, HOTLINE)
    call.wait_until_finished()
    (hit,) = twiml_app.hits_to("/voice")
    form = hit.form
    assert hit.method == "POST" and hit.valid and hit.signature
    assert CALL_SID.match(form["CallSid"]) and form["CallSid"] == call.sid
    assert form["AccountSid"] == emu.account_sid
    assert form["From"] == CALLER and form["Caller"] == CALLER
    assert form["To"] == HOTLINE and form["Called"] == HOTLINE
    assert form["CallStatus"] == "ringing"
    assert form["Direction"] == "inbound"
    assert form["ApiVersion"] == "2010-04-01"
    assert "ParentCallSid" not in form


def test_relative_urls_resolve_against_the_document(emu, twiml_app, hotline):
    twiml_app.route("/voice", twiml("<Play>/media/x.wav</Play>", "<Redirect>/next</Redirect>"))
    twiml_app.route("/next", twiml("<Say>next</Say>"))
    call = emu.dial(CALLER, HOTLINE)
    call.wait_until_finished()
    assert call.played_urls() == [twiml_app.url("/media/x.wav")]
    assert call.said_texts() == ["next"]
    assert twiml_app.forms("/next")[0]["CallStatus"] == "in-progress"


def test_gather_dtmf_num_digits(emu, twiml_app, hotline):
    twiml_app.route(
        "/voice",
        twiml('<Gather numDigits="2" action="/menu"><Say>Press two keys</Say></Gather>'),
    )
    twiml_app.route("/menu", lambda form: twiml(f"<Say>You pressed {form['Digits']}</Say>"))
    call = emu.dial(CALLER, HOTLINE)
    assert call.activity == "gather"
    assert call.gather_options["numDigits"] == 2
    call.press("4")
    assert call.activity == "gather"  # one more digit wanted
    call.press("2")
    assert call.said_texts() == ["Press two keys", "You pressed 42"]
    assert twiml_app.forms("/menu")[0]["Digits"] == "42"


def test_gather_defaults(emu, twiml_app, hotline):
    twiml_app.route("/voice", twiml("<Gather><Say>Enter your code</Say></Gather>"))
    call = emu.dial(CALLER, HOTLINE)
    options = call.gather_options
    assert options["input"] == "dtmf"
    assert options["timeout"] == 5
    assert options["finishOnKey"] == "#"
    assert options["numDigits"] is None
    assert options["method"] == "POST"
    assert options["language"] == "en-US"
    assert options["actionOnEmptyResult"] is False
    # action defaults to the current document URL
    assert options["action"] == twiml_app.url("/voice")
    call.press("123#")
    forms = twiml_app.forms("/voice")
    assert len(forms) == 2
    assert forms[1]["Digits"] == "123" and forms[1]["FinishedOnKey"] == "#"


def test_gather_finish_on_key_custom_and_timeout_between_digits(emu, twiml_app, hotline):
    twiml_app.route(
        "/voice", twiml('<Gather finishOnKey="*" timeout="3" action="/got"><Say>Go</Say></Gather>')
    )
    twiml_app.route("/got", twiml("<Say>thanks</Say>"))
    call = emu.dial(CALLER, HOTLINE)
    call.press("12#")  # '#' is an ordinary digit here
    call.wait(2)
    call.press("9")
    call.wait(2.9)
    assert twiml_app.forms("/got") == []  # the timeout restarts after each digit
    call.wait(0.2)
    (form,) = twiml_app.forms("/got")
    assert form["Digits"] == "12#9"


def test_gather_timeout_falls_through_to_next_verb(emu, twiml_app, hotline):
    twiml_app.route(
        "/voice",
        twiml('<Gather action="/never"><Say>Press 1</Say></Gather>', "<Say>No input, bye</Say>"),
    )
    call = emu.dial(CALLER, HOTLINE)
    call.wait(4.9)
    assert call.said_texts() == ["Press 1"]
    call.wait(0.2)
    assert call.said_texts() == ["Press 1", "No input, bye"]
    assert call.wait_until_finished() == "completed"
    assert twiml_app.hits_to("/never") == []


def test_gather_action_on_empty_result(emu, twiml_app, hotline):
    twiml_app.route(
        "/voice",
        twiml(
            '<Gather actionOnEmptyResult="true" timeout="2" action="/empty"><Say>x</Say></Gather>',
            "<Say>not reached</Say>",
        ),
    )
    twiml_app.route("/empty", twiml("<Say>empty</Say>"))
    call = emu.dial(CALLER, HOTLINE)
    call.wait(2)
    (form,) = twiml_app.forms("/empty")
    assert form["Digits"] == ""
    assert call.said_texts() == ["x", "empty"]


def test_gather_speech(emu, twiml_app, hotline):
    twiml_app.route(
        "/voice",
        twiml(
            '<Gather input="speech dtmf" language="ru-RU" hints="помощь" speechTimeout="auto"'
            ' action="/speech"><Say>Скажите</Say></Gather>'
        ),
    )
    twiml_app.route("/speech", twiml("<Say>ok</Say>"))
    call = emu.dial(CALLER, HOTLINE)
    assert call.gather_options["language"] == "ru-RU"
    assert call.gather_options["hints"] == "помощь"
    call.say("Мне нужна помощь", confidence=0.87)
    (form,) = twiml_app.forms("/speech")
    assert form["SpeechResult"] == "Мне нужна помощь"
    assert float(form["Confidence"]) == 0.87
    assert "Digits" not in form
    assert call.said_texts() == ["Скажите", "ok"]


def test_gather_dtmf_only_ignores_speech(emu, twiml_app, hotline):
    twiml_app.route("/voice", twiml('<Gather action="/g" timeout="3"><Say>k</Say></Gather>'))
    twiml_app.route("/g", twiml("<Say>ok</Say>"))
    call = emu.dial(CALLER, HOTLINE)
    call.say("hello")
    call.wait(5)
    assert twiml_app.hits_to("/g") == []


def test_barge_in_stops_the_prompts(emu, twiml_app, hotline):
    twiml_app.route(
        "/voice",
        twiml(
            '<Gather numDigits="1" action="/choice">',
            "<Say>For Russian press one.</Say>",
            "<Say>For Ukrainian press two.</Say>",
            "<Say>For English press three.</Say>",
            "</Gather>",
        ),
    )
    twiml_app.route("/choice", lambda f: twiml(f"<Say>Choice {f['Digits']}</Say>"))
    call = emu.dial(CALLER, HOTLINE, listen=False)  # stop in the middle of the first prompt
    assert call.said_texts() == ["For Russian press one."]
    call.press("2")
    assert call.said_texts() == ["For Russian press one.", "Choice 2"]


def test_prompts_play_out_when_nobody_barges_in(emu, twiml_app, hotline):
    twiml_app.route(
        "/voice",
        twiml('<Gather numDigits="1"><Say>one</Say><Pause length="2"/><Say>two</Say></Gather>'),
    )
    call = emu.dial(CALLER, HOTLINE)
    assert call.said_texts() == ["one", "two"]
    assert call.activity == "gather"


def test_gather_say_loop(emu, twiml_app, hotline):
    twiml_app.route("/voice", twiml('<Say loop="3">again</Say>'))
    call = emu.dial(CALLER, HOTLINE)
    call.wait_until_finished()
    (say,) = call.heard
    assert say.loop == 3
