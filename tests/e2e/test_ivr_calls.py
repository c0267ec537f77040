"""The foundation's IVR driven through the emulator: real HTTP, signed webhooks, virtual time."""

from __future__ import annotations

import io
import wave

import pytest
from sqlalchemy import select

from app import create_app
from db import db_session
from inquiries.models import Interaction
from ivr.flow import load_flow
from recordings.media import fetch_recording
from tests.conftest import HOTLINE_NUMBER
from tests.e2e.live import LiveServer, free_port
from tests.support import handles

FLOW = load_flow()
LANGUAGE_KEYS = {"ru": "1", "uk": "2", "en": "3"}
SAY_LANGUAGE = {"ru": "ru-RU", "uk": "uk-UA", "en": "en-US"}


def text(lang: str, key: str) -> str:
    return FLOW.text(lang, key)


def interaction(hotline, sid: str) -> Interaction:
    with hotline.app.app_context():
        row = db_session().scalar(select(Interaction).where(Interaction.provider_sid == sid))
        assert row is not None, "the app never saw this call"
        _ = row.inquiry.kind, row.events
        return row


def heard_after(call, count: int) -> list[str]:
    return call.said_texts()[count:]


def test_the_caller_hears_the_bilingual_greeting_in_order(hotline):
    call = hotline.dial()
    said = call.said_texts()
    assert said[:3] == [text("ru", k) for k in ("welcome", "confidentiality", "choose_language")]
    assert said[3:6] == [text("uk", k) for k in ("welcome", "confidentiality", "choose_language")]
    assert said[6] == text("en", "english_option")
    languages = [h.language for h in call.heard if h.kind == "say"]
    assert languages[:7] == ["ru-RU"] * 3 + ["uk-UA"] * 3 + ["en-US"]
    assert call.status == "in-progress"


# (keys after the language, the prompt heard last, kind, callback requested)
PATHS = {
    "surrender-safe": (["1", "1"], "operators_busy", "surrender", True),
    "surrender-unsafe-message": (["1", "2", "1"], "quiet_message_intro", "surrender", False),
    "surrender-unsafe-end": (["1", "2", "2"], "goodbye", "surrender", False),
    "relative": (["2"], "operators_busy", "family", True),
    "pow-info-operator": (["3", "1"], "operators_busy", "pow_info", True),
    "pow-info-end": (["3", "2"], "goodbye", "pow_info", False),
    "operator": (["0"], "operators_busy", "other", True),
}


@pytest.mark.parametrize("lang", ["ru", "uk", "en"])
@pytest.mark.parametrize("path", sorted(PATHS))
def test_every_menu_path_in_every_language(hotline, lang, path):
    keys, last_prompt, kind, callback = PATHS[path]
    call = hotline.dial()
    call.press(LANGUAGE_KEYS[lang])
    assert call.said_texts()[-1] == text(lang, "main_menu")
    for key in keys:
        call.press(key)
    assert call.said_texts()[-1] == text(lang, last_prompt)
    if last_prompt == "goodbye":
        assert call.ended and call.status == "completed"
    else:
        assert call.activity == "record"
        call.hang_up()
    row = interaction(hotline, call.sid)
    assert (row.inquiry.language, row.inquiry.kind) == (lang, kind)
    assert row.inquiry.callback_requested is callback
    assert row.status == "completed"  # the status callback reached the app
    assert [s["answer"] for s in row.ivr_path if s["answer"]] == [LANGUAGE_KEYS[lang], *keys]


def test_speech_answers_through_the_emulator(hotline):
    call = hotline.dial()
    call.say("українська", language="uk-UA")
    assert call.said_texts()[-1] == text("uk", "main_menu")
    call.say("хочу здатися в полон", language="uk-UA")
    assert call.said_texts()[-1] == text("uk", "safety_question")


def test_silence_three_times_reaches_the_message_box_not_a_hangup(hotline):
    call = hotline.dial()
    call.press("1")
    before = len(call.said_texts())
    for _ in range(3):
        call.wait(7)  # the <Gather> times out; the <Redirect> reports no input
        call.listen()
    said = heard_after(call, before)
    assert said.count(text("ru", "no_input")) == 2
    assert said[-1] == text("ru", "operators_busy")
    assert not call.ended and call.activity == "record"


def test_wrong_keys_are_answered_and_counted(hotline):
    call = hotline.dial()
    call.press("1")
    call.press("7")
    assert text("ru", "invalid") in call.said_texts()
    assert call.said_texts()[-1] == text("ru", "main_menu")
    call.press("8")
    call.press("9")
    assert call.said_texts()[-1] == text("ru", "operators_busy")
    assert not call.ended


def test_hanging_up_mid_menu_closes_the_call(hotline):
    call = hotline.dial()
    call.press("2")
    call.hang_up()
    hotline.emulator.settle()
    row = interaction(hotline, call.sid)
    assert row.status == "completed"
    assert row.duration_s is not None and row.ended_at is not None
    assert [s["node"] for s in row.ivr_path] == ["language"]


def test_a_message_is_left_and_the_app_downloads_its_recording(hotline):
    call = hotline.dial()
    call.press("1")
    call.press("0")
    call.say("Мне нужна помощь, перезвоните мне вечером", language="ru-RU")
    call.press("#")  # ends the recording
    assert call.said_texts()[-2:] == [text("ru", "message_thanks"), text("ru", "goodbye")]
    hotline.emulator.settle()
    row = interaction(hotline, call.sid)
    assert row.recording_sid and row.recording_sid.startswith("RE")
    assert row.recording_status == "completed"
    assert row.recording_duration_s is not None and row.recording_duration_s >= 1
    events = [e.event for e in row.events]
    assert "MESSAGE_LEFT" in events and "RECORDING" in events

    audio = fetch_recording(hotline.settings, row.recording_sid)
    with wave.open(io.BytesIO(audio)) as wav:
        assert (wav.getnchannels(), wav.getframerate()) == (1, 8000)
        assert wav.getnframes() / wav.getframerate() >= 1.0


def test_the_app_stopped_mid_call_sends_the_caller_to_the_fallback(hotline, settings, tmp_path):
    # The fallback URL is served apart from the primary (as in production): a second instance
    # whose database and Redis are unreachable.
    port = free_port()
    fallback_settings = settings.replace(
        public_base_url=f"http://127.0.0.1:{port}",
        instance_path=tmp_path / "fallback-instance",
        database_url="postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=1",
        redis_url=f"unix://{tmp_path}/nothing.sock",
    )
    fallback_app = create_app(fallback_settings)
    fallback_server = LiveServer(fallback_app, port=port).start()
    try:
        hotline.emulator.add_number(
            HOTLINE_NUMBER,
            voice_url=f"{hotline.server.url}/voice/incoming",
            voice_fallback_url=f"{fallback_server.url}/voice/fallback",
            status_callback=f"{hotline.server.url}/voice/status",
        )
        call = hotline.dial()
        hotline.server.stop()  # the primary dies mid-call
        call.press("1")
        said = call.said_texts()
        assert any("технические неполадки" in s for s in said)
        assert any("технічні негаразди" in s for s in said)
        assert call.activity == "record"
        errors = [e["code"] for e in hotline.emulator.debugger]
        assert 11200 in errors or "11200" in errors
        assert fallback_settings.journal_path.stat().st_size > 0
    finally:
        fallback_server.stop()
        handles(fallback_app).dispose()


def test_configure_number_points_the_number_at_the_app(hotline):
    number = "+15005550077"
    hotline.emulator.add_number(number)
    runner = hotline.app.test_cli_runner()
    result = runner.invoke(args=["carrier", "configure-number", "--number", number])
    assert result.exit_code == 0, result.output
    call = hotline.emulator.dial("+380441234567", number)
    assert call.said_texts()[0] == text("ru", "welcome")
