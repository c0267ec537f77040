"""Case notes (sealed at rest, erased by retention) and outcomes."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from inquiries.models import Caller, CaseNote, Inquiry
from inquiries.notes import (
    MAX_NOTE_CHARS,
    NoteError,
    add_note,
    erase_notes_before,
    notes_of,
    set_outcome,
)
from tests.support import handles

OUTCOMES = ("advised", "referred", "no_contact")


@pytest.fixture
def case(app):
    svc = handles(app)
    with svc.session_factory() as session:
        caller = Caller(number_hash="h" * 64)
        session.add(caller)
        session.flush()
        inquiry = Inquiry(caller_id=caller.id)
        session.add(inquiry)
        session.commit()
        return svc, inquiry.id


def test_a_note_is_sealed_at_rest_and_opens_for_its_case(case):
    svc, inquiry_id = case
    secret = "Позвонить брату в Харьков после 18:00"
    with svc.engine.begin() as conn:
        add_note(conn, svc.protector, inquiry_id, f"  {secret}  ", author_id=None)
    with svc.engine.connect() as conn:
        raw = conn.execute(select(CaseNote.text_ciphertext)).scalar_one()
        assert secret.encode() not in raw and "Харьков".encode() not in raw
        (note,) = notes_of(conn, svc.protector, inquiry_id)
        assert note.text == secret


@pytest.mark.parametrize("text", ["", "   ", "x" * (MAX_NOTE_CHARS + 1)])
def test_blank_or_huge_notes_are_refused(case, text):
    svc, inquiry_id = case
    with svc.engine.begin() as conn, pytest.raises(NoteError):
        add_note(conn, svc.protector, inquiry_id, text, author_id=None)


def test_a_note_for_a_missing_case_is_refused(case):
    svc, _ = case
    with svc.engine.begin() as conn, pytest.raises(NoteError):
        add_note(conn, svc.protector, 999_999, "text", author_id=None)


def test_outcomes_come_from_the_configured_list(case):
    svc, inquiry_id = case
    with svc.engine.begin() as conn:
        assert set_outcome(conn, inquiry_id, "advised", OUTCOMES) == ""
        assert set_outcome(conn, inquiry_id, "referred", OUTCOMES) == "advised"
        with pytest.raises(NoteError):
            set_outcome(conn, inquiry_id, "made-up", OUTCOMES)
        assert set_outcome(conn, inquiry_id, "", OUTCOMES) == "referred"
        assert conn.execute(select(Inquiry.outcome)).scalar_one() is None


def test_retention_erases_old_note_texts_and_keeps_the_rows(case):
    svc, inquiry_id = case
    with svc.engine.begin() as conn:
        old = add_note(conn, svc.protector, inquiry_id, "old", author_id=None)
        conn.execute(
            CaseNote.__table__.update()
            .where(CaseNote.__table__.c.id == old)
            .values(created_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
        )
        add_note(conn, svc.protector, inquiry_id, "new", author_id=None)
        erased = erase_notes_before(conn, dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
    assert erased == [(old, inquiry_id)]
    with svc.engine.connect() as conn:
        texts = [n.text for n in notes_of(conn, svc.protector, inquiry_id)]
    assert texts == [None, "new"]
