"""The fallback URL with the database and Redis stopped, its journal, and the replay."""

from __future__ import annotations

import pytest
from sqlalchemy import select

import jobs
from db import db_session
from devtools.services import EmbeddedRedis
from inquiries.models import CallEvent, Interaction
from inquiries.service import caller_number
from ivr import journal
from ivr.views import JOURNAL_REPLAY_JOB
from recordings import service
from recordings.models import Recording
from services import services
from tests.conftest import Carrier, call_params, new_call_sid
from tests.support import handles, run_jobs

NUMBER = "+79035550142"
STOPPED_DATABASE = "postgresql+psycopg://hotline@127.0.0.1:1/hotline?connect_timeout=1"


@pytest.fixture
def outage(settings, tmp_path, app_factory):
    """The app as it runs while its database and its Redis are down (Redis really stopped)."""
    server = EmbeddedRedis(tmp_path / "doomed-redis.sock").start()
    server.stop()
    return app_factory(settings.replace(database_url=STOPPED_DATABASE, redis_url=server.url))


def test_fallback_answers_with_database_and_redis_down(outage, settings):
    carrier = Carrier(outage.test_client())
    with outage.app_context():
        assert outage.test_client().get("/readyz").status_code == 503
    sid = new_call_sid()
    params = call_params(
        sid, NUMBER, ErrorCode="11200", ErrorUrl="https://x.example/voice/incoming"
    )
    root = carrier.twiml("/voice/fallback", params)
    assert [child.tag for child in root] == ["Say", "Say", "Record", "Say", "Say", "Hangup"]
    assert [el.get("language") for el in root.findall("Say")][:2] == ["ru-RU", "uk-UA"]
    record = root.find("Record")
    assert record.get("action").endswith("/voice/fallback?step=recorded")
    assert record.get("recordingStatusCallback").endswith("/voice/fallback?step=recording")

    recorded = call_params(
        sid,
        NUMBER,
        RecordingSid="RE" + "b" * 32,
        RecordingDuration="9",
        RecordingUrl="https://api.twilio.com/x/Recordings/RE" + "b" * 32,
    )
    thanks = carrier.twiml("/voice/fallback?step=recorded", recorded)
    assert [child.tag for child in thanks] == ["Say", "Say", "Hangup"]
    status = carrier.twiml(
        "/voice/fallback?step=recording", dict(recorded, RecordingStatus="completed")
    )
    assert list(status) == []

    raw = settings.journal_path.read_bytes()
    assert raw.count(b"\n") == 3
    for form in (NUMBER, NUMBER[1:], NUMBER[-10:]):
        assert form.encode() not in raw  # sealed, never plain text on disk


def test_an_ordinary_webhook_during_an_outage_still_gives_the_message_box(outage, settings):
    carrier = Carrier(outage.test_client())
    root = carrier.twiml("/voice/incoming", call_params(new_call_sid(), NUMBER))
    assert [child.tag for child in root][:3] == ["Say", "Say", "Record"]
    assert journal.has_entries(settings.journal_path)


def test_journal_is_replayed_once_the_app_is_healthy(outage, app, carrier, settings):
    outage_carrier = Carrier(outage.test_client())
    sid = new_call_sid()
    outage_carrier.twiml("/voice/fallback", call_params(sid, NUMBER, ErrorCode="11205"))
    recorded = call_params(
        sid,
        NUMBER,
        RecordingSid="RE" + "c" * 32,
        RecordingDuration="12",
        RecordingUrl="https://api.twilio.com/x/Recordings/RE" + "c" * 32,
    )
    outage_carrier.twiml("/voice/fallback?step=recorded", recorded)

    # Healthy again: the next call's webhook enqueues the replay; a worker runs it.
    carrier.twiml("/voice/incoming", call_params(new_call_sid(), "+380671234567"))
    with app.app_context():
        queue = jobs.queue()
        assert queue.fetch_job(JOURNAL_REPLAY_JOB) is not None
        # the replay only: it enqueues the message's recording job, which would fetch from
        # the real carrier here (tests/e2e/test_recordings.py runs it against the emulator)
        run_jobs(app, max_jobs=1)
        interaction = db_session().scalar(
            select(Interaction).where(Interaction.provider_sid == sid)
        )
        assert interaction is not None
        assert interaction.recording_sid == "RE" + "c" * 32
        assert interaction.recording_duration_s == 12
        assert interaction.inquiry.callback_requested is True
        assert caller_number(services().protector, interaction.inquiry.caller) == NUMBER
        recording = db_session().scalar(select(Recording))  # the message enters the pipeline
        assert (recording.recording_sid, recording.kind) == ("RE" + "c" * 32, "message")
        assert queue.job_ids == [service.job_id(recording.id)]
        steps = [e.data["step"] for e in interaction.events if e.event == "FALLBACK"]
        assert steps == ["entered", "recorded"]
    assert not journal.has_entries(settings.journal_path)


def test_replay_is_idempotent_and_keeps_undecryptable_lines_aside(app, settings):
    with app.app_context():
        protector = services().protector
        sid = new_call_sid()
        journal.append(settings.journal_path, protector, "entered", call_params(sid, NUMBER))
        copy = settings.journal_path.read_bytes()
        with settings.journal_path.open("ab") as fh:
            fh.write(b"dev1:bm90IGEgcmVhbCBlbnRyeQ==\n")
        assert journal.replay(settings.journal_path, protector, db_session()) == 1
        settings.journal_path.write_bytes(copy)  # the same entry again (a crash before truncate)
        assert journal.replay(settings.journal_path, protector, db_session()) == 0
        events = db_session().scalars(select(CallEvent).where(CallEvent.event == "FALLBACK")).all()
        assert len(events) == 1
    assert (settings.journal_path.parent / (settings.journal_path.name + ".bad")).exists()


def test_fallback_without_signature_is_refused_and_journals_nothing(outage, settings):
    response = outage.test_client().post("/voice/fallback", data=call_params(new_call_sid()))
    assert response.status_code == 403
    assert not journal.has_entries(settings.journal_path)


def test_readyz_reports_redis_once_it_stops(settings, tmp_path, app_factory, caplog):
    server = EmbeddedRedis(tmp_path / "r.sock").start()
    try:
        healthy = app_factory(settings.replace(redis_url=server.url))
        assert healthy.test_client().get("/readyz").status_code == 200
        server.stop()
        handles(healthy).dispose()
        body = healthy.test_client().get("/readyz")
        assert body.status_code == 503 and body.json == {"status": "unavailable"}
        assert "readyz: not ready: redis (" in caplog.text
    finally:
        server.stop()
