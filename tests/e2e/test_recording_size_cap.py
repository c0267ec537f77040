"""The recording download's size cap, through the emulated carrier: a body larger than
``RECORDING_MAX_BYTES`` — announced in ``Content-Length`` or only found out while reading a
chunked body — is refused with nothing stored, the row says why, nothing retries it by itself
(no endless downloads), and the log line names the recording's id, never the caller.

Whoever answers at the carrier's media URL (the carrier misbehaving, a proxy, someone who took
over the address) must not be able to fill the worker's memory or the store. The cap here is
set just under the real message's size, so the download path is the one production runs.
"""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from sqlalchemy import update

from db import db_session
from recordings import service
from recordings.models import FAILED, Recording
from settings import RECORDING_MAX_BYTES_DEFAULT, SettingsError, load_settings
from tests.e2e.test_recordings import (
    CALLER,
    assert_stored_and_gone,
    at_carrier,
    leave_message,
    recording_of,
    store_files,
)
from tests.support import handles, run_jobs


def carrier_wav_size(hotline, sid: str) -> int:
    (rec,) = [r for r in hotline.emulator.recordings() if r.sid == sid]
    return len(rec.wav)


@pytest.mark.parametrize("streamed", [False, True], ids=["announced", "chunked"])
def test_a_recording_over_the_cap_is_refused_unstored_and_not_retried(
    hotline, app_factory, caplog, streamed
):
    call = leave_message(hotline)
    row = recording_of(hotline, call.sid)
    size = carrier_wav_size(hotline, row.recording_sid)
    if streamed:
        hotline.emulator.stream_media(row.recording_sid)
    capped = app_factory(hotline.settings.replace(recording_max_bytes=size - 1))

    with caplog.at_level(logging.INFO):
        run_jobs(capped)
    row = recording_of(hotline, call.sid)
    assert (row.state, row.failure_reason, row.attempts) == (FAILED, "too_large", 1)
    assert "RECORDING_MAX_BYTES" in row.last_error
    assert ("announced" in row.last_error) is not streamed  # Content-Length, or counted
    assert row.storage_key is None and store_files(hotline) == []
    assert at_carrier(hotline, row.recording_sid)  # the carrier's copy is not deleted
    assert hotline.emulator.media_requests(row.recording_sid) == 1

    # Nothing downloads it again by itself: no RQ retry, and the stalled sweep leaves it.
    with capped.app_context():
        queue = handles(capped).queue
        assert queue.scheduled_job_registry.count == 0 and not handles(capped).queued()
        session = db_session()
        an_hour_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
        session.execute(update(Recording).where(Recording.id == row.id)
                        .values(updated_at=an_hour_ago))  # fmt: skip
        session.commit()
        assert service.resume_stalled(session) == 0
    run_jobs(capped)
    assert hotline.emulator.media_requests(row.recording_sid) == 1

    lines = [r.getMessage() for r in caplog.records if r.name == "recordings.pipeline"]
    assert [line for line in lines if "too_large" in line] == [
        f"recording {row.id}: too_large ({row.last_error}): nothing stored, the carrier's copy "
        "kept, not retried automatically"
    ]
    digits = CALLER.lstrip("+")
    assert digits not in caplog.text and digits[-7:] not in caplog.text

    # A person raises the cap (here: exactly the recording's size) and retries: it is stored.
    enough = app_factory(hotline.settings.replace(recording_max_bytes=size))
    with enough.app_context():
        assert service.retry(row.id) == "enqueued"
    run_jobs(enough)
    assert_stored_and_gone(hotline, recording_of(hotline, call.sid))


def test_the_default_cap_is_four_hours_of_the_carriers_wav(tmp_path):
    """Twilio ends a call after 4 hours by default; its WAV is 8 kHz 16-bit mono: a 4-hour
    recording must fit under the default, and a body twice that size must not."""
    settings = load_settings({"HOTLINE_ENV": "test", "HOTLINE_INSTANCE_PATH": str(tmp_path)})
    four_hours_of_wav = 44 + 4 * 3600 * 8000 * 2
    assert settings.recording_max_bytes == RECORDING_MAX_BYTES_DEFAULT
    assert four_hours_of_wav <= settings.recording_max_bytes < 2 * four_hours_of_wav
    custom = load_settings(
        {"HOTLINE_ENV": "test", "HOTLINE_INSTANCE_PATH": str(tmp_path), "RECORDING_MAX_BYTES": "5"}
    )
    assert custom.recording_max_bytes == 5
    for bad in ("0", "-1", "lots", "2GB"):
        with pytest.raises(SettingsError, match="RECORDING_MAX_BYTES"):
            load_settings({"HOTLINE_ENV": "test", "HOTLINE_INSTANCE_PATH": str(tmp_path),
                           "RECORDING_MAX_BYTES": bad})  # fmt: skip
