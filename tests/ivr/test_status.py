"""Call status callbacks: idempotent, tolerant of duplicates and of any order."""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy import func, select

from db import db_session
from inquiries.models import Caller, CallEvent, Interaction
from tests.conftest import call_params, new_call_sid


def status(carrier, sid: str, call_status: str, **extra: str):
    response = carrier.post("/voice/status", call_params(sid, CallStatus=call_status, **extra))
    assert response.status_code == 200
    return response


def interaction_of(app, sid: str) -> tuple[Interaction, list[str]]:
    with app.app_context():
        row = db_session().scalar(select(Interaction).where(Interaction.provider_sid == sid))
        assert row is not None
        events = (
            db_session()
            .scalars(select(CallEvent.event).where(CallEvent.interaction_id == row.id))
            .all()
        )
        return row, list(events)


def test_completed_after_the_ivr_ends_the_call_with_its_duration(carrier, app):
    sid = new_call_sid()
    carrier.twiml("/voice/incoming", call_params(sid))
    status(
        carrier, sid, "completed", CallDuration="42", Timestamp="Thu, 26 Nov 2026 10:00:00 +0000"
    )
    row, events = interaction_of(app, sid)
    assert row.status == "completed"
    assert row.duration_s == 42
    assert row.ended_at is not None and row.answered_at is not None
    assert events.count("CALL_STATUS") == 1


def test_duplicates_have_one_effect(carrier, app):
    sid = new_call_sid()
    carrier.twiml("/voice/incoming", call_params(sid))
    for _ in range(5):
        status(carrier, sid, "completed", CallDuration="30")
    row, events = interaction_of(app, sid)
    assert row.duration_s == 30
    assert events.count("CALL_STATUS") == 1


def test_completed_before_in_progress_does_not_reopen_the_call(carrier, app):
    sid = new_call_sid()
    status(carrier, sid, "completed", CallDuration="12")
    status(carrier, sid, "in-progress")
    status(carrier, sid, "ringing")
    row, events = interaction_of(app, sid)
    assert row.status == "completed"
    assert row.duration_s == 12
    assert events == ["CALL_STATUS"]


@pytest.mark.parametrize(
    "order", list(itertools.permutations(["ringing", "in-progress", "completed"]))
)
def test_any_order_ends_in_the_final_status(carrier, app, order):
    sid = new_call_sid()
    for call_status in order:
        status(carrier, sid, call_status, CallDuration="5")
    row, _ = interaction_of(app, sid)
    assert row.status == "completed"


@pytest.mark.parametrize("final", ["failed", "canceled"])
def test_other_final_statuses_are_kept_and_final(carrier, app, final):
    sid = new_call_sid()
    status(carrier, sid, final)
    status(carrier, sid, "completed", CallDuration="3")
    row, _ = interaction_of(app, sid)
    assert row.status == final


@pytest.mark.parametrize("final", ["busy", "no-answer"])
def test_never_answered_statuses_of_a_known_call_are_kept_and_final(carrier, app, final):
    sid = new_call_sid()
    carrier.twiml("/voice/incoming", call_params(sid))
    status(carrier, sid, final)
    status(carrier, sid, "completed", CallDuration="3")
    row, _ = interaction_of(app, sid)
    assert row.status == final


@pytest.mark.parametrize("final", ["busy", "no-answer"])
def test_the_status_of_a_call_never_answered_nor_seen_writes_nothing(carrier, app, final):
    """What <Reject> gives: a call that screening refused leaves no caller, case or call."""
    sid = new_call_sid()
    status(carrier, sid, final)
    with app.app_context():
        assert db_session().scalar(select(func.count()).select_from(Interaction)) == 0
        assert db_session().scalar(select(func.count()).select_from(Caller)) == 0
        assert db_session().scalar(select(func.count()).select_from(CallEvent)) == 0


def test_unknown_parameters_and_statuses_are_ignored(carrier, app):
    sid = new_call_sid()
    carrier.twiml("/voice/incoming", call_params(sid, StirVerstat="TN-Validation-Passed-A"))
    status(carrier, sid, "teleported", SomethingNew="1")
    row, events = interaction_of(app, sid)
    assert row.status == "in-progress"
    assert "CALL_STATUS" not in events


def test_a_duplicate_incoming_webhook_makes_one_interaction(carrier, app):
    sid = new_call_sid()
    first = carrier.post("/voice/incoming", call_params(sid))
    second = carrier.post("/voice/incoming", call_params(sid))
    assert first.data == second.data
    with app.app_context():
        rows = (
            db_session().scalars(select(Interaction).where(Interaction.provider_sid == sid)).all()
        )
        assert len(rows) == 1
        enters = db_session().scalars(select(CallEvent).where(CallEvent.event == "IVR_ENTER")).all()
        assert len(enters) == 1
