"""Recording callbacks (signed webhooks into the real app, a real database and Redis): one row
per RecordingSid however often it comes, committed before its job is enqueued; the job's id is
the row's; the CLI and retry() speak in ids only."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

import jobs
from db import db_session
from inquiries.models import CallEvent, Interaction
from recordings import service
from recordings.models import PENDING, Recording
from tests.conftest import call_params, query
from tests.ivr.test_menu import Call

RECORDING_SID = "RE" + "4" * 32
URL = f"https://api.twilio.com/2010-04-01/Accounts/AC{'5' * 32}/Recordings/{RECORDING_SID}"


def status_params(call: Call, status: str = "completed", sid: str = RECORDING_SID) -> dict:
    return call_params(
        call.sid, call.from_, RecordingSid=sid, RecordingUrl=URL, RecordingStatus=status,
        RecordingDuration="12", RecordingChannels="1", RecordingSource="RecordVerb",
    )  # fmt: skip


def recordings(app) -> list[Recording]:
    with app.app_context():
        return list(db_session().scalars(select(Recording).order_by(Recording.id)))


def queued_job_ids(app) -> list[str]:
    with app.app_context():
        return jobs.queue().job_ids


def message_box(carrier) -> Call:
    call = Call(carrier)
    call.press("1")
    call.press("0")  # nobody on duty: the message box
    return call


def test_a_completed_message_delivered_three_times_is_one_row_and_one_job(carrier, app):
    call = message_box(carrier)
    for _ in range(3):
        assert carrier.post("/voice/recording", status_params(call)).status_code == 200
    rows = recordings(app)
    assert len(rows) == 1
    row = rows[0]
    assert (row.kind, row.state, row.recording_sid) == ("message", PENDING, RECORDING_SID)
    assert row.interaction_id == call.interaction(app).id
    assert row.carrier_duration_s == 12 and row.attempts == 0
    assert queued_job_ids(app) == [service.job_id(row.id)]
    with app.app_context():
        job = jobs.queue().fetch_job(service.job_id(row.id))
        assert job.func_name == "recordings.jobs.process_recording"
        assert job.args == [row.id]  # an id, nothing personal (JSON: a list)


def test_the_record_action_registers_the_row_and_the_status_callback_enqueues(carrier, app):
    call = message_box(carrier)
    action = dict(status_params(call), Digits="#")
    del action["RecordingStatus"]
    carrier.twiml("/voice/message/recorded", action)
    assert [r.state for r in recordings(app)] == [PENDING]
    assert queued_job_ids(app) == []  # the media may not be ready before the status callback
    carrier.post("/voice/recording", status_params(call))
    assert queued_job_ids(app) == [service.job_id(recordings(app)[0].id)]


def test_in_progress_and_absent_recordings_make_no_row(carrier, app):
    call = message_box(carrier)
    carrier.post("/voice/recording", status_params(call, "in-progress"))
    carrier.post("/voice/recording", status_params(call, "absent", "RE" + "5" * 32))
    assert recordings(app) == []
    assert queued_job_ids(app) == []


def test_a_forged_callback_makes_nothing(carrier, app):
    call = message_box(carrier)
    response = carrier.post("/voice/recording", status_params(call), signature="forged")
    assert response.status_code == 403
    assert recordings(app) == [] and queued_job_ids(app) == []


def test_a_conversation_recording_delivered_three_times(carrier, app):
    call = message_box(carrier)
    iid = call.interaction(app).id
    params = dict(status_params(call), ConferenceSid="CF" + "1" * 32, RecordingSource="Conference")
    for _ in range(3):
        response = carrier.post("/routing/recording" + query(caller=iid), params)
        assert response.status_code == 200
    rows = recordings(app)
    assert [(r.kind, r.interaction_id, r.state) for r in rows] == [("conversation", iid, PENDING)]
    assert queued_job_ids(app) == [service.job_id(rows[0].id)]
    with app.app_context():
        events = db_session().scalar(
            select(func.count()).select_from(CallEvent).where(CallEvent.event == "CALL_RECORDING")
        )
        assert events == 1


def test_a_conversation_callback_for_an_unknown_call_is_ignored(carrier, app):
    call = message_box(carrier)
    with app.app_context():
        missing = (db_session().scalar(select(func.max(Interaction.id))) or 0) + 100
    response = carrier.post("/routing/recording" + query(caller=missing), status_params(call))
    assert response.status_code == 200
    assert recordings(app) == []


def test_retry_by_hand_replaces_a_waiting_job_and_refuses_unknown_ids(carrier, app):
    call = message_box(carrier)
    carrier.post("/voice/recording", status_params(call))
    row = recordings(app)[0]
    with app.app_context():
        assert service.retry(row.id) == "enqueued"
        assert jobs.queue().job_ids == [service.job_id(row.id)]  # still one job
        with pytest.raises(LookupError):
            service.retry(row.id + 1000)


def test_the_cli_lists_ids_and_states_but_nothing_personal(carrier, app):
    call = message_box(carrier)
    carrier.post("/voice/recording", status_params(call))
    row = recordings(app)[0]
    runner = app.test_cli_runner()
    listed = runner.invoke(args=["recordings", "list"])
    assert listed.exit_code == 0, listed.output
    line = listed.output.splitlines()[1].split()
    assert line[:5] == [str(row.id), str(row.interaction_id), "message", "pending", "0"]
    for form in (call.from_, call.from_[1:], call.from_[-7:]):
        assert form not in listed.output
    retried = runner.invoke(args=["recordings", "retry", str(row.id)])
    assert retried.exit_code == 0 and "enqueued" in retried.output
    unknown = runner.invoke(args=["recordings", "retry", "999999"])
    assert unknown.exit_code != 0 and "no recording 999999" in unknown.output
