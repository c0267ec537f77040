"""A case's calls told in words (console/story.py): menu answers as the questions and answers
the caller heard, each event as a sentence, each call as one line."""

from __future__ import annotations

import datetime as dt
import re
from types import SimpleNamespace

import pytest

from console.story import menu_answers, stories, tell
from db import db_session
from inquiries.calllog import TimelineItem
from inquiries.models import QUEUE_EVENTS
from ivr.flow import load_flow
from tests.console.seed import handler_row

FLOW = load_flow()
T0 = dt.datetime(2026, 12, 8, 9, 0, 0, tzinfo=dt.UTC)
#: Every event the hotline writes on a call (routing, IVR, recordings, retention).
CALL_EVENTS = (*QUEUE_EVENTS, "IVR_ENTER", "IVR_FALLTHROUGH", "HANDOVER", "OVERFLOW",
               "LANGUAGE_FALLBACK", "EXITWITHKEY", "EXITWITHTIMEOUT", "CALLBACK_ATTEMPT",
               "MESSAGE_LEFT", "MESSAGE_EMPTY", "RECORDING", "CALL_RECORDING", "CALL_STATUS",
               "FALLBACK", "RETENTION_DELETE")  # fmt: skip
RAW = re.compile(r"[A-Z]{4,}|\w_\w|=|None|\{")


def _at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def test_menu_answers_read_as_the_questions_and_answers_the_caller_heard(app):
    path = [
        {"node": "language", "answer": "1", "choice": "1"},
        {"node": "main", "answer": "speech", "choice": "1"},
        {"node": "safety", "answer": None, "problem": "no_input", "attempt": 1},
        {"node": "safety", "answer": "1", "choice": "1"},
        {"node": "operator", "answer": None},  # entering the handover: not a question
    ]
    with app.test_request_context(headers={"Accept-Language": "en"}):
        got = [(a.question, a.answer, a.spoken) for a in menu_answers(FLOW, path)]
    assert got == [("Language", "Russian", False), ("Topic", "surrender", True),
                   ("Safe to talk", "no answer", False), ("Safe to talk", "yes", False)]  # fmt: skip
    with app.test_request_context(headers={"Accept-Language": "uk"}):
        got = [(a.question, a.answer) for a in menu_answers(FLOW, path[3:4])]
    assert got == [("Може безпечно говорити", "так")]


def test_a_call_is_told_in_one_line_as_the_issue_asks(app):
    """Waited, offered to one who did not answer, offered to another, talked, message left."""
    olena = handler_row(app, "Olena")
    petro = handler_row(app, "Petro")
    call = SimpleNamespace(id=1, ivr_path=[], handler_id=petro, started_at=T0,
                           enqueued_at=_at(10), connected_at=_at(16))  # fmt: skip
    timeline = [
        TimelineItem(_at(10), 1, "event", "ENTERQUEUE",
                     {"language": "uk", "kind": "family", "priority": 50, "position": 1}),
        TimelineItem(_at(10), 1, "event", "OFFER",
                     {"handler_id": olena, "offer_id": 1, "waited_s": 0.2}),
        TimelineItem(_at(36), 1, "event", "RINGNOANSWER",
                     {"handler_id": olena, "offer_id": 1, "status": "no-answer",
                      "ringtime_ms": 25903}),
        TimelineItem(_at(36), 1, "event", "OFFER",
                     {"handler_id": petro, "offer_id": 2, "waited_s": 26}),
        TimelineItem(_at(40), 1, "event", "CONNECT",
                     {"handler_id": petro, "offer_id": 2, "holdtime_s": 30}),
        TimelineItem(_at(122), 1, "event", "COMPLETEAGENT",
                     {"handler_id": petro, "holdtime_s": 30, "calltime_s": 82, "wrapup_s": 30}),
        TimelineItem(_at(130), 1, "event", "MESSAGE_LEFT",
                     {"recording_sid": "RE1", "duration_s": 5, "ended_by": "#"}),
    ]  # fmt: skip
    with app.test_request_context(headers={"Accept-Language": "en"}):
        (story,) = stories(db_session(), FLOW, [call], timeline)
        assert story.summary == ("Waited 0:06 · offered to Olena · not answered (26 s) · "
                                 "offered to Petro · connected 1:22 · message left 0:05")  # fmt: skip
        texts = [b.text for b in story.beats if b.text]
    assert texts[1:3] == ["Offered to Olena after 0:00", "Olena did not answer (26 s)"]
    assert texts[-2] == "Petro ended the conversation after 1:22"
    with app.test_request_context(headers={"Accept-Language": "uk"}):
        (story,) = stories(db_session(), FLOW, [call], timeline)
        assert story.summary.startswith("Чекав(-ла) 0:06 · запропоновано: Olena · без відповіді")


def test_an_answer_without_pressing_1_is_said_so(app):
    anna = handler_row(app, "Anna")
    data = {"handler_id": anna, "offer_id": 1, "status": "completed", "ringtime_ms": 9000}
    with app.test_request_context(headers={"Accept-Language": "en"}):
        names = {anna: "Anna"}
        assert tell("RINGNOANSWER", data, names) == (
            "Anna answered but did not press 1 (9 s)",
            "not taken (9 s)",
        )


@pytest.mark.parametrize("language", ["en", "uk"])
def test_no_event_is_shown_as_its_code(app, language):
    """Every event with the data the hotline writes reads as words: no uppercase code, no
    ``snake_case``, no ``key=value``, no ``None``."""
    data = {"handler_id": 1, "offer_id": 1, "status": "completed", "ringtime_ms": 1000,
            "language": "ru", "kind": "pow_info", "position": 2, "waited_s": 3, "holdtime_s": 3,
            "calltime_s": 60, "waittime_s": 40, "duration_s": 5, "reason": "missed offers",
            "action": "message_box", "why": "nobody on duty", "node": "safety", "to": "operator",
            "attempt": 2, "result": "no-answer", "what": "recording", "direction": "inbound",
            "from": "available"}  # fmt: skip
    with app.test_request_context(headers={"Accept-Language": language}):
        for event in CALL_EVENTS:
            text, short = tell(event, data, {1: "Olena"})
            assert not RAW.search(text + " " + short), (event, text, short)
            if event not in ("IVR_STEP", "CALL_STATUS") and event not in QUEUE_EVENTS[-2:]:
                assert text, event


def test_routings_automatic_break_reason_is_translated(app):
    """routing/lua/state.lua writes "missed 2 offers in a row"; a typed reason stays as typed."""
    from console.labels import reason_name

    with app.test_request_context(headers={"Accept-Language": "uk"}):
        assert reason_name("missed 2 offers in a row") == (
            "не взяв(-ла) 2 запропонованих дзвінків поспіль"
        )
        assert str(reason_name("missed offers")) == "не брав(-ла) запропоновані дзвінки"
        assert reason_name("обід") == "обід"
