"""Every menu path in every language, retries and fall-through, speech answers, the message box."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from sqlalchemy import func, select

from inquiries.models import CallEvent, Inquiry, Interaction
from ivr.flow import load_flow
from tests.conftest import PUBLIC_BASE_URL, call_params, new_call_sid, path_of

FLOW = load_flow()
LANGUAGE_KEYS = {"ru": "1", "uk": "2", "en": "3"}
SAY_LANGUAGE = {"ru": "ru-RU", "uk": "uk-UA", "en": "en-US"}
VOICE = {"ru": "Polly.Tatyana", "uk": "Google.uk-UA-Standard-A", "en": "Polly.Joanna"}


def says(root: ET.Element) -> list[tuple[str, str]]:
    return [(el.get("language", ""), el.text or "") for el in root.iter("Say")]


def text(lang: str, key: str) -> str:
    return FLOW.text(lang, key)


class Call:
    """One caller walking the IVR with signed webhooks."""

    def __init__(self, carrier, from_: str = "+79161234567"):
        self.carrier = carrier
        self.sid = new_call_sid()
        self.from_ = from_
        self.root = carrier.twiml("/voice/incoming", call_params(self.sid, from_))

    def gather(self) -> ET.Element:
        gather = self.root.find("Gather")
        assert gather is not None, ET.tostring(self.root, encoding="unicode")
        return gather

    def press(self, digits: str) -> ET.Element:
        action = path_of(self.gather().get("action", ""))
        self.root = self.carrier.twiml(action, call_params(self.sid, self.from_, Digits=digits))
        return self.root

    def say(self, speech: str) -> ET.Element:
        action = path_of(self.gather().get("action", ""))
        params = call_params(self.sid, self.from_, SpeechResult=speech, Confidence="0.9")
        self.root = self.carrier.twiml(action, params)
        return self.root

    def silence(self) -> ET.Element:
        """Nothing pressed: Twilio runs the verb after <Gather>, our <Redirect>."""
        redirect = self.root.find("Redirect")
        assert redirect is not None
        self.root = self.carrier.twiml(
            path_of(redirect.text or ""), call_params(self.sid, self.from_)
        )
        return self.root

    def interaction(self, app) -> Interaction:
        from db import db_session

        with app.app_context():
            row = db_session().scalar(
                select(Interaction).where(Interaction.provider_sid == self.sid)
            )
            assert row is not None
            _ = row.inquiry.kind, row.events  # load before the session closes
            return row


def assert_message_box(root: ET.Element, lang: str, intro_key: str) -> ET.Element:
    verbs = [child.tag for child in root]
    assert verbs == ["Say", "Record", "Redirect"], verbs
    assert says(root)[0] == (SAY_LANGUAGE[lang], text(lang, intro_key))
    record = root.find("Record")
    assert record is not None
    assert record.get("action") == f"{PUBLIC_BASE_URL}/voice/message/recorded"
    assert record.get("recordingStatusCallback") == f"{PUBLIC_BASE_URL}/voice/recording"
    assert record.get("playBeep") == "true"
    assert int(record.get("maxLength", "0")) > 0
    return record


def test_first_prompt_is_bilingual_with_confidentiality_and_language_choice(carrier):
    call = Call(carrier)
    gather = call.gather()
    assert gather.get("input") == "dtmf speech"
    assert gather.get("numDigits") == "1"
    assert gather.get("language") == "ru-RU"
    assert gather.get("action") == f"{PUBLIC_BASE_URL}/voice/ivr/language?attempt=1"
    spoken = says(gather)
    assert spoken == [
        ("ru-RU", text("ru", "welcome")),
        ("ru-RU", text("ru", "confidentiality")),
        ("ru-RU", text("ru", "choose_language")),
        ("uk-UA", text("uk", "welcome")),
        ("uk-UA", text("uk", "confidentiality")),
        ("uk-UA", text("uk", "choose_language")),
        ("en-US", text("en", "english_option")),
    ]
    voices = {el.get("language"): el.get("voice") for el in gather.iter("Say")}
    assert voices == {"ru-RU": VOICE["ru"], "uk-UA": VOICE["uk"], "en-US": VOICE["en"]}
    # Nothing pressed → the <Redirect> after <Gather> brings the caller back to be counted.
    assert [child.tag for child in call.root] == ["Gather", "Redirect"]


@pytest.mark.parametrize("lang", ["ru", "uk", "en"])
def test_choosing_a_language_gives_the_main_menu_in_it(carrier, app, lang):
    call = Call(carrier)
    root = call.press(LANGUAGE_KEYS[lang])
    gather = call.gather()
    assert gather.get("language") == SAY_LANGUAGE[lang]
    assert says(root) == [(SAY_LANGUAGE[lang], text(lang, "main_menu"))]
    assert all(el.get("voice") == VOICE[lang] for el in root.iter("Say"))
    assert call.interaction(app).inquiry.language == lang


@pytest.mark.parametrize("lang", ["ru", "uk", "en"])
@pytest.mark.parametrize(("key", "kind", "priority"), [("2", "family", 50), ("0", "other", 10)])
def test_relative_and_operator_reach_the_message_box_with_a_callback(
    carrier, app, lang, key, kind, priority
):
    call = Call(carrier)
    call.press(LANGUAGE_KEYS[lang])
    assert_message_box(call.press(key), lang, "operators_busy")
    inquiry = call.interaction(app).inquiry
    assert (inquiry.kind, inquiry.priority, inquiry.language) == (kind, priority, lang)
    assert inquiry.callback_requested is True


@pytest.mark.parametrize("lang", ["ru", "uk", "en"])
def test_surrender_safe_to_talk_goes_to_a_person_with_top_priority(carrier, app, lang):
    call = Call(carrier)
    call.press(LANGUAGE_KEYS[lang])
    root = call.press("1")
    assert says(root) == [(SAY_LANGUAGE[lang], text(lang, "safety_question"))]
    assert_message_box(call.press("1"), lang, "operators_busy")
    interaction = call.interaction(app)
    assert interaction.inquiry.kind == "surrender"
    assert interaction.inquiry.priority == max(FLOW.kind_priority.values())
    assert [step["node"] for step in interaction.ivr_path] == [
        "language", "main", "safety", "operator",
    ]  # fmt: skip


@pytest.mark.parametrize("lang", ["ru", "uk", "en"])
def test_surrender_unsafe_hears_messaging_apps_and_may_leave_a_message(carrier, app, lang):
    call = Call(carrier)
    call.press(LANGUAGE_KEYS[lang])
    call.press("1")
    root = call.press("2")
    assert says(root) == [
        (SAY_LANGUAGE[lang], text(lang, "unsafe_info")),
        (SAY_LANGUAGE[lang], text(lang, "unsafe_choice")),
    ]
    assert_message_box(call.press("1"), lang, "quiet_message_intro")
    # Calling back someone who cannot talk safely could endanger them: no callback request.
    assert call.interaction(app).inquiry.callback_requested is False


@pytest.mark.parametrize("lang", ["ru", "uk", "en"])
def test_surrender_unsafe_can_end_quickly(carrier, lang):
    call = Call(carrier)
    call.press(LANGUAGE_KEYS[lang])
    call.press("1")
    call.press("2")
    root = call.press("2")
    assert [child.tag for child in root] == ["Say", "Hangup"]
    assert says(root) == [(SAY_LANGUAGE[lang], text(lang, "goodbye"))]


@pytest.mark.parametrize("lang", ["ru", "uk", "en"])
def test_pow_information_then_offer_to_speak_to_someone(carrier, app, lang):
    call = Call(carrier)
    call.press(LANGUAGE_KEYS[lang])
    root = call.press("3")
    assert [child.tag for child in root] == ["Say", "Gather", "Redirect"]
    assert says(root) == [
        (SAY_LANGUAGE[lang], text(lang, "pow_info_answer")),
        (SAY_LANGUAGE[lang], text(lang, "offer_operator")),
    ]
    assert_message_box(call.press("1"), lang, "operators_busy")
    assert call.interaction(app).inquiry.kind == "pow_info"


def test_pow_information_caller_may_end_the_call(carrier):
    call = Call(carrier)
    call.press("1")
    call.press("3")
    assert [child.tag for child in call.press("2")] == ["Say", "Hangup"]


@pytest.mark.parametrize(
    ("lang", "speech", "expected_key"),
    [
        ("ru", "Хочу сдаться в плен", "safety_question"),
        ("uk", "я родич військового", "operators_busy"),
        ("en", "I need information about a prisoner exchange", "pow_info_answer"),
    ],
)
def test_speech_answers_work(carrier, lang, speech, expected_key):
    call = Call(carrier)
    call.press(LANGUAGE_KEYS[lang])
    root = call.say(speech)
    assert says(root)[0] == (SAY_LANGUAGE[lang], text(lang, expected_key))


def test_speech_chooses_the_language(carrier, app):
    call = Call(carrier)
    root = call.say("українська")
    assert says(root) == [("uk-UA", text("uk", "main_menu"))]
    assert call.interaction(app).inquiry.language == "uk"


def test_speech_prefers_the_longer_phrase(carrier):
    call = Call(carrier)
    call.press("1")
    call.press("1")
    root = call.say("нет, не могу")
    assert says(root)[0] == ("ru-RU", text("ru", "unsafe_info"))


def test_silence_repeats_then_reaches_a_person_never_a_hangup(carrier, app):
    call = Call(carrier)
    call.press("1")
    for attempt in (2, 3):
        root = call.silence()
        assert call.gather().get("action").endswith(f"/voice/ivr/main?attempt={attempt}")
        assert says(root)[0] == ("ru-RU", text("ru", "no_input"))
        assert says(root)[1] == ("ru-RU", text("ru", "main_menu"))
    root = call.silence()
    assert root.find("Hangup") is None
    assert_message_box(root, "ru", "operators_busy")
    interaction = call.interaction(app)
    assert [e.event for e in interaction.events].count("IVR_FALLTHROUGH") == 1
    problems = [s.get("problem") for s in interaction.ivr_path if s["node"] == "main"]
    assert problems == ["no_input", "no_input", "no_input"]


def test_wrong_keys_repeat_with_invalid_prompt_then_fall_through(carrier):
    call = Call(carrier)
    root = call.press("9")
    assert says(root)[0] == ("ru-RU", text("ru", "invalid"))
    assert says(root)[4] == ("uk-UA", text("uk", "invalid"))  # after ru: invalid + 3 prompts
    call.press("*")
    root = call.press("7")
    # Never chose a language: the default (Russian) message box, not a hang-up.
    assert_message_box(root, "ru", "operators_busy")


def test_silence_on_the_safety_question_goes_to_a_person(carrier, app):
    call = Call(carrier)
    call.press("2")
    call.press("1")
    for _ in range(3):
        root = call.silence()
    assert_message_box(root, "uk", "operators_busy")
    assert call.interaction(app).inquiry.callback_requested is True


def test_a_repeated_gather_action_records_one_step_and_answers_the_same(carrier, app):
    call = Call(carrier)
    action = path_of(call.gather().get("action", ""))
    params = call_params(call.sid, Digits="2")
    first = carrier.post(action, params)
    second = carrier.post(action, params)
    assert first.status_code == second.status_code == 200
    assert first.data == second.data
    assert len(call.interaction(app).ivr_path) == 1


def test_a_repeat_caller_joins_their_open_inquiry(carrier, app):
    first = Call(carrier, from_="+380501112233")
    first.press("2")
    second = Call(carrier, from_="+380 50 111 22 33")
    other = Call(carrier, from_="+380509998877")
    a, b, c = (call.interaction(app) for call in (first, second, other))
    assert a.inquiry_id == b.inquiry_id != c.inquiry_id
    assert b.inquiry.status == "open"
    with app.app_context():
        from db import db_session

        assert db_session().scalar(select(func.count()).select_from(Inquiry)) == 2


def test_every_step_writes_the_path_and_an_event(carrier, app):
    call = Call(carrier)
    call.press("3")
    call.press("0")
    interaction = call.interaction(app)
    steps = [(s["node"], s["answer"]) for s in interaction.ivr_path]
    assert steps == [("language", "3"), ("main", "0"), ("operator", None)]
    events = [e.event for e in interaction.events]
    assert events[0] == "IVR_ENTER"
    assert events.count("IVR_STEP") == 3
    assert "HANDOVER" in events and "CALLBACK_REQUESTED" in events


def test_message_left_is_stored_on_the_interaction(carrier, app):
    call = Call(carrier)
    call.press("1")
    call.press("0")
    recording = {
        "RecordingSid": "RE" + "a" * 32,
        "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/AC{'5' * 32}/Recordings/RE{'a' * 32}",
        "RecordingDuration": "17",
        "Digits": "hangup",
    }
    root = carrier.twiml("/voice/message/recorded", call_params(call.sid, **recording))
    assert says(root) == [("ru-RU", text("ru", "message_thanks")), ("ru-RU", text("ru", "goodbye"))]
    assert root[-1].tag == "Hangup"
    status = dict(recording, RecordingStatus="completed", RecordingChannels="1")
    for _ in range(2):  # delivered twice: one effect
        assert carrier.post("/voice/recording", call_params(call.sid, **status)).status_code == 200
    interaction = call.interaction(app)
    assert interaction.recording_sid == recording["RecordingSid"]
    assert interaction.recording_duration_s == 17
    assert interaction.recording_status == "completed"
    assert interaction.recording_url == recording["RecordingUrl"]
    events = [e.event for e in interaction.events]
    assert events.count("MESSAGE_LEFT") == 1 and events.count("RECORDING") == 1


def test_recording_metadata_arriving_in_any_order_is_all_kept(carrier, app):
    """What each callback adds is written; one that adds nothing writes nothing, loses nothing."""
    call = Call(carrier)
    call.press("1")
    call.press("0")
    sid = "RE" + "b" * 32
    url = f"https://api.twilio.com/2010-04-01/Accounts/AC{'5' * 32}/Recordings/{sid}"
    status = {"RecordingSid": sid, "RecordingUrl": url, "RecordingChannels": "1"}

    def stored():
        row = call.interaction(app)
        return row.recording_status, row.recording_duration_s, row.recording_url

    carrier.post("/voice/recording", call_params(call.sid, **status, RecordingStatus="in-progress"))
    assert stored() == ("in-progress", None, url)
    carrier.twiml(
        "/voice/message/recorded",
        call_params(call.sid, RecordingSid=sid, RecordingDuration="17", Digits="hangup"),
    )
    assert stored() == ("in-progress", 17, url)  # the duration added, the url kept
    done = dict(status, RecordingStatus="completed", RecordingDuration="17")
    for _ in range(2):
        assert carrier.post("/voice/recording", call_params(call.sid, **done)).status_code == 200
        assert stored() == ("completed", 17, url)


def test_a_message_after_an_empty_try_takes_the_empty_ones_place(carrier, app):
    """Silence at the first beep (Twilio: ``absent``), a message at the second: the interaction
    holds the message; a late callback of the empty try, or a third recording, changes nothing."""
    call = Call(carrier)
    call.press("1")
    call.press("0")
    empty, message, third = ("RE" + c * 32 for c in "cde")

    def url(sid: str) -> str:
        return f"https://api.twilio.com/2010-04-01/Accounts/AC{'5' * 32}/Recordings/{sid}"

    def status(sid: str, state: str, duration: str) -> None:
        params = call_params(call.sid, RecordingSid=sid, RecordingUrl=url(sid),
                             RecordingStatus=state, RecordingDuration=duration)  # fmt: skip
        assert carrier.post("/voice/recording", params).status_code == 200

    def stored():
        row = call.interaction(app)
        return row.recording_sid, row.recording_status, row.recording_duration_s, row.recording_url

    status(empty, "absent", "0")
    assert stored() == (empty, "absent", 0, url(empty))
    carrier.twiml(
        "/voice/message/recorded",
        call_params(call.sid, RecordingSid=message, RecordingUrl=url(message),
                    RecordingDuration="9", Digits="#"),
    )  # fmt: skip
    assert stored() == (message, "completed", 9, url(message))
    status(message, "completed", "9")
    status(empty, "absent", "0")  # late, or again
    status(third, "completed", "4")
    assert stored() == (message, "completed", 9, url(message))


def test_an_empty_message_is_offered_again_then_the_call_ends_politely(carrier, app):
    call = Call(carrier)
    call.press("1")
    root = call.press("0")
    for attempt in (2, 3):
        root = carrier.twiml(path_of(root.find("Redirect").text), call_params(call.sid))
        assert_message_box(root, "ru", "message_retry")
        assert root.find("Redirect").text.endswith(f"attempt={attempt}&callback=1")
    root = carrier.twiml(path_of(root.find("Redirect").text), call_params(call.sid))
    assert [child.tag for child in root] == ["Say", "Hangup"]
    with app.app_context():
        from db import db_session

        empty = db_session().scalar(
            select(func.count()).select_from(CallEvent).where(CallEvent.event == "MESSAGE_EMPTY")
        )
    assert empty == 3
