"""Recordings end to end: real calls through the emulator, real audio through pydub and
ffmpeg, jobs run by RQ workers on the real Redis. A message and a conversation each end
encrypted in the store and gone at the carrier; the store holds no plaintext audio; a callback
delivered three times makes one file; a download that fails twice is retried to success."""

from __future__ import annotations

import datetime as dt
import subprocess

import requests
from rq.job import Job
from sqlalchemy import select, update
from twilio.base.exceptions import TwilioRestException

from dataprotection import erased_hash
from db import db_session
from inquiries.models import CallEvent, Interaction
from inquiries.service import caller_number
from recordings import audio, playback, service
from recordings.jobs import process_recording
from recordings.media import media_url
from recordings.models import CARRIER_DELETED, FAILED, Recording
from recordings.store import recording_store, store_path
from staff.models import AuditEvent
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, sign
from tests.e2e.test_routing_calls import HANDLER_A, add_handler, drain, queued_caller
from tests.support import handles, run_jobs

CALLER = "+79161234567"
#: What an unencrypted audio file would show: WAV, Ogg (every page), FLAC, MP3's ID3 tag.
AUDIO_MAGIC = (b"RIFF", b"WAVE", b"OggS", b"OpusHead", b"fLaC", b"ID3\x03", b"ID3\x04")


def leave_message(hotline, from_: str = CALLER):
    call = hotline.dial(from_)
    call.press("1")
    call.press("0")  # nobody on duty: the message box
    call.say("Мне нужна помощь, перезвоните мне вечером, пожалуйста", language="ru-RU")
    call.press("#")
    hotline.emulator.settle()
    return call


def recording_of(hotline, call_sid: str | None = None, kind: str | None = None) -> Recording:
    with hotline.app.app_context():
        query = select(Recording).join(Interaction, Recording.interaction_id == Interaction.id)
        if call_sid is not None:
            query = query.where(Interaction.provider_sid == call_sid)
        if kind is not None:
            query = query.where(Recording.kind == kind)
        rows = list(db_session().scalars(query))
        assert len(rows) == 1, rows
        return rows[0]


def at_carrier(hotline, sid: str) -> bool:
    """The recording still exists at the carrier (its REST resource; no media download)."""
    try:
        handles(hotline.app).twilio.recordings(sid).fetch()
    except TwilioRestException as exc:
        assert exc.status == 404
        return False
    return True


def media_status(hotline, sid: str) -> int:
    url = media_url(hotline.settings, sid)
    return requests.get(url, auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=10).status_code


def store_files(hotline) -> list:
    root = store_path(hotline.settings)
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def run_due_retries(hotline) -> None:
    """RQ's scheduled retries, made due now and run (a worker with its scheduler, in burst)."""
    with hotline.app.app_context():
        queue = handles(hotline.app).queue
        registry = queue.scheduled_job_registry
        for job_id in registry.get_job_ids():
            job = Job.fetch(job_id, connection=queue.connection, serializer=queue.serializer)
            registry.schedule(job, dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
        run_jobs(hotline.app, with_scheduler=True)


def decoded_seconds(encoded: bytes) -> float:
    result = subprocess.run(
        [audio.ffmpeg_path(), "-v", "error", "-i", "pipe:0", "-f", "s16le", "-ac", "1",
         "-ar", "8000", "pipe:1"],
        input=encoded, capture_output=True, check=True,
    )  # fmt: skip
    return len(result.stdout) / 2 / 8000


def assert_stored_and_gone(hotline, row: Recording) -> bytes:
    """Encrypted in the store, readable through playback, deleted at the carrier."""
    assert row.state == CARRIER_DELETED, (row.state, row.failure_reason, row.last_error)
    assert row.stored_at and row.carrier_deleted_at and row.fetched_at
    assert row.key_id == hotline.settings.active_key_id and row.wrapped_key
    assert [
        p.relative_to(store_path(hotline.settings)).as_posix() for p in store_files(hotline)
    ] == [row.storage_key]
    with hotline.app.app_context():
        audio_bytes = playback.read_all(row)
    assert audio_bytes.startswith(b"OggS") and len(audio_bytes) == row.size_bytes
    assert abs(decoded_seconds(audio_bytes) - row.duration_ms / 1000) < 0.1
    assert len(row.peaks) == 100 and max(row.peaks) == 255
    assert not at_carrier(hotline, row.recording_sid)
    assert media_status(hotline, row.recording_sid) == 404
    return audio_bytes


def test_a_message_ends_encrypted_in_the_store_and_gone_at_the_carrier(hotline):
    call = leave_message(hotline)
    row = recording_of(hotline, call.sid)
    assert (row.kind, row.state) == ("message", "pending")
    assert at_carrier(hotline, row.recording_sid)

    drain(hotline)
    row = recording_of(hotline, call.sid)
    audio_bytes = assert_stored_and_gone(hotline, row)
    assert row.attempts == 1 and row.failure_reason is None
    assert abs(row.duration_ms / 1000 - row.carrier_duration_s) <= 1
    with hotline.app.app_context():  # a seek into the middle decrypts just that part
        total, content_type, chunks = playback.read_range(row, 1000, 4999)
    assert (total, content_type) == (len(audio_bytes), "audio/ogg; codecs=opus")
    assert b"".join(chunks) == audio_bytes[1000:5000]

    with hotline.app.app_context():  # run again: finds its work done, asks the carrier nothing
        assert process_recording(row.id) == CARRIER_DELETED
    assert hotline.emulator.media_requests(row.recording_sid) == 1


def test_a_caller_who_hangs_up_mid_message_leaves_it_on_their_case(hotline):
    """A voicemail caller ends the message by hanging up, often mid-sentence. Twilio requests
    the <Record> action with ``Digits=hangup`` and the recording status callback follows: what
    was said until the hang-up is the message, on the caller's case, stored like any other."""
    call = hotline.dial(CALLER)
    call.press("1")
    call.press("0")  # nobody on duty: the message box
    call.say(
        "Мне нужна помощь, перезвоните мне вечером, пожалуйста, после шести часов",
        language="ru-RU",
        listen=False,
    )
    hotline.emulator.wait(2)  # two seconds into the sentence, the caller hangs up
    call.hang_up()
    hotline.emulator.settle()
    assert call.status == "completed"
    row = recording_of(hotline, call.sid)
    assert (row.kind, row.state, row.carrier_duration_s) == ("message", "pending", 2)
    with hotline.app.app_context():
        interaction = db_session().get(Interaction, row.interaction_id)
        assert interaction.inquiry_id is not None  # the caller's case
        assert (interaction.recording_sid, interaction.recording_status) == (
            row.recording_sid,
            "completed",
        )
        left = [e.data for e in interaction.events if e.event == "MESSAGE_LEFT"]
        assert left == [{"recording_sid": row.recording_sid, "duration_s": 2, "ended_by": "hangup"}]

    drain(hotline)
    row = recording_of(hotline, call.sid)
    assert_stored_and_gone(hotline, row)
    assert abs(row.duration_ms / 1000 - 2.0) < 0.1


def test_a_recorded_conversation_ends_encrypted_and_gone_at_the_carrier(hotline):
    add_handler(hotline, HANDLER_A, "Anna")
    call = queued_caller(hotline)
    drain(hotline)
    phone = hotline.emulator.phone(HANDLER_A)
    leg = phone.answer(phone.wait_for_ring())
    leg.press("1")
    hotline.emulator.settle()
    assert call.activity == "conference"
    leg.say("Здравствуйте, я вас слушаю", language="ru-RU")
    call.say("Мне нужно узнать о моём брате", language="ru-RU")
    call.hang_up()
    hotline.emulator.settle()
    row = recording_of(hotline, call.sid, kind="conversation")
    assert row.state == "pending" and at_carrier(hotline, row.recording_sid)

    drain(hotline)
    row = recording_of(hotline, call.sid, kind="conversation")
    assert_stored_and_gone(hotline, row)
    assert row.duration_ms > 1000


def test_the_store_holds_no_plaintext_audio(hotline):
    leave_message(hotline)
    drain(hotline)
    files = store_files(hotline)
    assert len(files) == 1
    for path in files:
        raw = path.read_bytes()
        assert raw.startswith(b"HREC")  # our header, then ciphertext only
        for magic in AUDIO_MAGIC:
            assert magic not in raw, magic
        body = raw[32:]
        assert not (body[0] == 0xFF and body[1] & 0xE0 == 0xE0)  # no MP3 frame sync up front
    for path in hotline.settings.instance_path.rglob("*"):  # nothing decrypted left anywhere
        if path.is_file():
            content = path.read_bytes()
            assert b"OggS" not in content and b"RIFF" not in content, path


def test_the_same_callback_delivered_three_times_makes_one_file(hotline):
    call = leave_message(hotline)
    row = recording_of(hotline, call.sid)
    url = hotline.settings.public_base_url + "/voice/recording"
    params = {
        "AccountSid": ACCOUNT_SID, "CallSid": call.sid, "RecordingSid": row.recording_sid,
        "RecordingUrl": media_url(hotline.settings, row.recording_sid)[: -len(".wav")],
        "RecordingStatus": "completed", "RecordingDuration": str(row.carrier_duration_s),
        "RecordingChannels": "1", "RecordingSource": "RecordVerb",
    }  # fmt: skip

    def deliver() -> None:
        headers = {"X-Twilio-Signature": sign(url, params, AUTH_TOKEN)}
        assert requests.post(url, data=params, headers=headers, timeout=10).status_code == 200

    deliver()  # the emulator delivered it once already: twice more, one before the job…
    drain(hotline)
    deliver()  # … and one after it
    drain(hotline)
    with hotline.app.app_context():
        assert len(db_session().scalars(select(Recording)).all()) == 1
    assert len(store_files(hotline)) == 1
    assert hotline.emulator.media_requests(row.recording_sid) == 1
    assert recording_of(hotline, call.sid).state == CARRIER_DELETED


def test_a_download_failing_twice_is_retried_with_backoff_until_it_succeeds(hotline):
    call = leave_message(hotline)
    sid = recording_of(hotline, call.sid).recording_sid
    hotline.emulator.fail_media(sid, times=2, status=500)

    drain(hotline)
    row = recording_of(hotline, call.sid)
    assert (row.state, row.failure_reason, row.attempts) == (FAILED, "carrier_unavailable", 1)
    assert "500" in row.last_error and row.failed_at is not None
    assert at_carrier(hotline, sid) and store_files(hotline) == []
    with hotline.app.app_context():
        job = handles(hotline.app).queue.fetch_job(service.job_id(row.id))
        assert job.get_status() == "scheduled" and job.retries_left == 4  # RQ's backoff

    run_due_retries(hotline)
    row = recording_of(hotline, call.sid)
    assert (row.state, row.attempts) == (FAILED, 2)

    run_due_retries(hotline)
    row = recording_of(hotline, call.sid)
    assert row.attempts == 3
    assert_stored_and_gone(hotline, row)
    assert "500" in row.last_error  # the history stays readable
    assert hotline.emulator.media_requests(sid) == 3


def test_a_failed_recording_is_retried_by_hand(hotline):
    call = leave_message(hotline)
    sid = recording_of(hotline, call.sid).recording_sid
    hotline.emulator.fail_media(sid, times=1, status=503)
    drain(hotline)
    row = recording_of(hotline, call.sid)
    assert row.state == FAILED
    with hotline.app.app_context():
        assert service.retry(row.id) == "enqueued"  # now, not at RQ's next backoff step
        assert handles(hotline.app).queue.scheduled_job_registry.count == 0
    drain(hotline)
    row = recording_of(hotline, call.sid)
    assert_stored_and_gone(hotline, row)
    with hotline.app.app_context():
        assert service.retry(row.id) == "done"


def test_a_leftover_file_of_a_killed_run_is_removed_by_the_run_that_stores(hotline):
    call = leave_message(hotline)
    row = recording_of(hotline, call.sid)
    store = recording_store(hotline.settings)
    leftover = f"{row.id}/{'ab' * 16}.hrec"
    store.put(leftover, b"HREC" + bytes(60))  # as a run killed after writing would leave it
    drain(hotline)
    row = recording_of(hotline, call.sid)
    assert_stored_and_gone(hotline, row)  # exactly one file: the stored one


def _age(hotline, call_sid: str, days: int) -> None:
    """Move a call, its recording and its caller ``days`` into the past."""
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
    with hotline.app.app_context():
        session = db_session()
        interaction = session.scalar(
            select(Interaction).where(Interaction.provider_sid == call_sid)
        )
        session.execute(
            update(Recording)
            .where(Recording.interaction_id == interaction.id)
            .values(created_at=past)
        )
        interaction.started_at = past
        interaction.inquiry.caller.created_at = past
        session.commit()


def test_retention_deletes_expired_recordings_everywhere_and_erases_old_numbers(hotline):
    from recordings.jobs import apply_retention

    svc = handles(hotline.app)
    old_call = leave_message(hotline, "+79160000001")
    drain(hotline)  # stored, gone at the carrier
    failing = leave_message(hotline, "+79160000002")
    failing_sid = recording_of(hotline, failing.sid).recording_sid
    hotline.emulator.fail_media(failing_sid, times=50)
    drain(hotline)  # failed: still at the carrier
    recent = leave_message(hotline, "+79160000003")
    drain(hotline)
    _age(hotline, old_call.sid, 400)
    _age(hotline, failing.sid, 91)
    assert len(store_files(hotline)) == 2

    kept = svc.settings
    svc.settings = kept.replace(recording_retention_days_message=0, personal_data_retention_days=0)
    with hotline.app.app_context():
        assert not any(apply_retention().values())  # 0 days: kept forever
    svc.settings = kept  # 90 days for messages, 365 for numbers
    with hotline.app.app_context():
        counts = apply_retention()
    assert counts == {"recordings": 2, "carrier": 1, "carrier_failed": 0, "callers": 1, "notes": 0}
    for call in (old_call, failing):
        row = recording_of(hotline, call.sid)
        assert row.state == "deleted" and row.deleted_at and row.carrier_deleted_at
        assert row.storage_key is None and row.wrapped_key is None and row.peaks == []
    assert not at_carrier(hotline, failing_sid)
    assert [p.parent.name for p in store_files(hotline)] == [
        str(recording_of(hotline, recent.sid).id)
    ]  # only the recent one is left
    with hotline.app.app_context():
        events = (
            db_session()
            .scalars(
                select(CallEvent)
                .where(CallEvent.event == "RETENTION_DELETE")
                .order_by(CallEvent.id)
            )
            .all()
        )
        assert sorted((e.data["what"], e.data.get("from", "")) for e in events) == [
            ("caller_number", ""), ("recording", "carrier"), ("recording", "store"),
            ("recording", "store"),
        ]  # fmt: skip
        erased = (
            db_session()
            .scalar(select(Interaction).where(Interaction.provider_sid == old_call.sid))
            .inquiry.caller
        )
        assert erased.number_ciphertext is None  # the number is gone, and so is its hash:
        assert erased.number_hash == erased_hash(erased.id)  # nothing left to match it with
        audited = (
            db_session()
            .scalars(select(AuditEvent).where(AuditEvent.action == "retention.delete"))
            .all()
        )
        assert sorted((a.object_type, a.details.get("from", "")) for a in audited) == [
            ("caller_number", ""), ("recording", "carrier"), ("recording", "store"),
            ("recording", "store"),
        ]  # fmt: skip
        assert all(a.staff_user_id is None for a in audited)
        assert apply_retention() == dict.fromkeys(counts, 0)  # nothing twice

    again = hotline.dial("+79160000001")  # the caller is back: a new caller, a new case
    again.hang_up()
    hotline.emulator.settle()
    with hotline.app.app_context():
        back = (
            db_session()
            .scalar(select(Interaction).where(Interaction.provider_sid == again.sid))
            .inquiry.caller
        )
        assert back.id != erased.id and caller_number(svc.protector, back) == "+79160000001"
        still = db_session().get(type(erased), erased.id)
        assert still.number_ciphertext is None and still.number_hash == erased_hash(erased.id)
