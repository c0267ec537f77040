"""One recording through the pipeline: fetch from the carrier → check → convert → encrypt →
store → read back and compare → delete at the carrier.

Safe to run twice, even at once: every state change is a conditional UPDATE, each run writes
its own file (``{id}/{file id}.hrec``), and only the run whose ``stored`` UPDATE wins keeps its
file (the loser deletes its own; the winner removes any other, such as the leftover of a run
killed mid-way). The carrier's copy is deleted only after our encrypted copy has been read back
and its hash compared, and a run that finds a row already ``stored`` checks the file again
before it deletes anything. A failure marks the row ``failed`` with its reason and re-raises,
so that RQ retries with backoff; the next run resumes where the data says it can. A failure
that trying again cannot mend (``PERMANENT_FAILURES``: media larger than
``RECORDING_MAX_BYTES``) is marked and logged, not raised: it waits for a person.

Plaintext audio exists only in this process's memory. Only ids appear in logs and errors.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import requests
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from twilio.base.exceptions import TwilioException, TwilioRestException

from dataprotection import DataProtector
from db import db_session
from inquiries.models import utcnow
from recordings import audio, carrier_calls, crypto
from recordings.media import RecordingTooLarge, RecordingUnavailable, fetch_recording
from recordings.models import (
    CARRIER_DELETED,
    DELETED,
    FAILED,
    FETCHED,
    PENDING,
    PERMANENT_FAILURES,
    STORED,
    Recording,
)
from recordings.store import MissingObject, RecordingStore, object_key, prefix_of, recording_store
from services import Services, services

log = logging.getLogger(__name__)

_recording = Recording.__table__
_NOT_YET_STORED = (PENDING, FETCHED, FAILED)


class StepFailed(RuntimeError):
    """A step of the pipeline failed; ``reason`` is a short code kept on the row."""

    def __init__(self, reason: str, message: str):
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


class _Run:
    """One run's writes to the row: each a conditional UPDATE, committed at once; the first
    of them counts the attempt."""

    def __init__(self, conn: Session, recording_id: int):
        self.conn = conn
        self.id = recording_id
        self.counted = False

    def load(self) -> Any:
        row = self.conn.execute(select(_recording).where(_recording.c.id == self.id)).first()
        self.conn.commit()  # no transaction held while downloading and encoding
        return row

    def update(self, allowed: tuple[str, ...], *conditions: Any, **values: Any) -> bool:
        now = utcnow()
        values["updated_at"] = now
        if not self.counted:
            values["attempts"] = _recording.c.attempts + 1
            values["last_attempt_at"] = now
        statement = (
            update(_recording)
            .where(_recording.c.id == self.id, _recording.c.state.in_(allowed), *conditions)
            .values(**values)
        )
        changed = bool(self.conn.execute(statement).rowcount)
        self.conn.commit()
        self.counted = self.counted or changed
        return changed

    def fail(self, reason: str, message: str) -> None:
        self.update(
            (PENDING, FETCHED, STORED, FAILED),
            state=FAILED, failure_reason=reason[:32], last_error=message[:255],
            failed_at=utcnow(),
        )  # fmt: skip


def process(recording_id: int) -> str:
    """Run the pipeline for one recording (in a job's app context); its final state."""
    svc = services()
    run = _Run(db_session(), recording_id)
    row = run.load()
    if row is None:
        return "missing"
    if row.state in (CARRIER_DELETED, DELETED):
        return row.state
    try:
        if row.storage_key is None:
            row = _fetch_and_store(run, row, svc, recording_store(svc.settings))
            if row is None:
                return "superseded"
        else:
            _verify_stored(run, row, svc.protector, recording_store(svc.settings))
        delete_at_carrier(svc, row.recording_sid)
        if not run.update(
            (STORED, FAILED), _recording.c.storage_key == row.storage_key,
            state=CARRIER_DELETED, carrier_deleted_at=utcnow(), failure_reason=None,
        ):  # fmt: skip
            return "superseded"
    except StepFailed as exc:
        if exc.reason not in PERMANENT_FAILURES:
            log.warning("recording %s: %s (attempt failed)", recording_id, exc.reason)
            run.fail(exc.reason, exc.message)
            raise
        log.warning(
            "recording %s: %s (%s): nothing stored, the carrier's copy kept, not retried "
            "automatically", recording_id, exc.reason, exc.message,
        )  # fmt: skip
        run.fail(exc.reason, exc.message)
        return FAILED
    except Exception as exc:
        log.exception("recording %s: the pipeline failed", recording_id)
        try:
            run.conn.rollback()
            run.fail("error", type(exc).__name__)
        except Exception:  # the database may be what failed
            log.warning("recording %s: could not mark the failure", recording_id)
        raise
    log.info("recording %s: stored encrypted and deleted at the carrier", recording_id)
    _calls_may_go(run.conn, row.interaction_id)
    return CARRIER_DELETED


def _calls_may_go(conn: Session, interaction_id: int) -> None:
    """The case's ended calls may have waited for this recording: their deletion at the
    carrier is enqueued again (a failure here is the sweep's to mend, not the recording's)."""
    try:
        carrier_calls.enqueue_for_interaction(conn, interaction_id)
    except Exception:
        log.warning("interaction %s: its calls' deletion not enqueued", interaction_id)
        conn.rollback()


def _fetch_and_store(run: _Run, row: Any, svc: Services, store: RecordingStore) -> Any | None:
    """Download, check, convert, encrypt, store and read back. The row as stored, or None if
    another run got there first (its state is then theirs)."""
    try:
        wav = fetch_recording(svc.settings, row.recording_sid)
    except RecordingTooLarge as exc:
        raise StepFailed("too_large", str(exc)) from None
    except RecordingUnavailable as exc:
        raise StepFailed("carrier_unavailable", str(exc)) from None
    except requests.RequestException as exc:
        raise StepFailed("carrier_unavailable", type(exc).__name__) from None
    try:
        prepared = audio.prepare(wav)
    except audio.NotAudio as exc:
        raise StepFailed("not_audio", str(exc)) from None
    except audio.EncodeFailed as exc:
        raise StepFailed("encode_failed", str(exc)) from None
    del wav
    if not run.update(
        _NOT_YET_STORED, _recording.c.storage_key.is_(None),
        state=FETCHED, fetched_at=utcnow(), duration_ms=prepared.duration_ms,
        waveform=prepared.peaks, failure_reason=None,
    ):  # fmt: skip
        return None

    key = crypto.FileKey.generate()
    sealed = crypto.seal_key(svc.protector, row.id, key)
    blob = crypto.encrypt(prepared.encoded, key)
    storage_key = object_key(row.id, key.file_id)
    try:
        store.put(storage_key, blob)
    except OSError as exc:
        raise StepFailed("store_failed", type(exc).__name__) from None
    try:
        _read_back(store, svc.protector, row.id, storage_key, len(blob), prepared.sha256,
                   sealed.key_id, sealed.ciphertext)  # fmt: skip
    except StepFailed:
        store.delete(storage_key)
        raise
    stored = run.update(
        _NOT_YET_STORED, _recording.c.storage_key.is_(None),
        state=STORED, stored_at=utcnow(), storage_key=storage_key, file_id=key.file_id.hex(),
        stored_size=len(blob), key_id=sealed.key_id, wrapped_key=sealed.ciphertext,
        content_type=prepared.content_type, size_bytes=len(prepared.encoded),
        sha256=prepared.sha256, failure_reason=None,
    )  # fmt: skip
    if not stored:  # another run stored it first, or retention deleted it: ours goes
        store.delete(storage_key)
        return None
    for other in store.keys(prefix_of(row.id)):
        if other != storage_key:  # a killed or losing run's leftover
            store.delete(other)
    return run.load()


def _read_back(
    store: RecordingStore,
    protector: DataProtector,
    recording_id: int,
    storage_key: str,
    size: int,
    sha256: str,
    key_id: str,
    wrapped_key: bytes,
) -> None:
    """Read the stored file back, open its key and every segment, compare the audio's hash."""
    try:
        if store.size(storage_key) != size:
            raise StepFailed("verify_failed", "the stored file has another size")
        blob = store.read(storage_key, 0, size)
        header = crypto.Header.parse(blob)
        data_key = crypto.open_key(protector, recording_id, header.file_id, key_id, wrapped_key)
        plaintext = crypto.decrypt(blob, data_key)
    except (MissingObject, OSError) as exc:
        raise StepFailed(
            "verify_failed", f"the stored file does not read ({type(exc).__name__})"
        ) from None
    except crypto.TamperedRecording:
        raise StepFailed("verify_failed", "the stored file does not decrypt") from None
    if hashlib.sha256(plaintext).hexdigest() != sha256:
        raise StepFailed("verify_failed", "the stored audio differs from what was encoded")


def _verify_stored(run: _Run, row: Any, protector: DataProtector, store: RecordingStore) -> None:
    """A row already ``stored`` (a resumed run): check the file before deleting at the carrier.
    A lost or damaged file is forgotten, so that the next run fetches the carrier's copy."""
    try:
        _read_back(store, protector, row.id, row.storage_key, row.stored_size, row.sha256,
                   row.key_id, row.wrapped_key)  # fmt: skip
    except StepFailed:
        run.update(
            (STORED, FAILED), _recording.c.storage_key == row.storage_key,
            storage_key=None, file_id=None, stored_size=None, key_id=None, wrapped_key=None,
            stored_at=None,
        )  # fmt: skip
        raise


def delete_at_carrier(svc: Services, recording_sid: str) -> None:
    """Delete the carrier's copy (REST); one already gone counts as deleted."""
    try:
        svc.twilio.recordings(recording_sid).delete()
    except TwilioRestException as exc:
        if exc.status != 404:
            raise StepFailed(
                "carrier_delete_failed", f"the carrier answered {exc.status}"
            ) from None
    except (TwilioException, requests.RequestException) as exc:
        raise StepFailed("carrier_delete_failed", type(exc).__name__) from None
