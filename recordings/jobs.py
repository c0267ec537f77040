"""RQ jobs of the recordings: the pipeline for one recording, retention, the stalled sweep; the
deletion of call records at the carrier and their sweep.

Each takes ids only and runs in the app context the worker gives it (``jobs.AppWorker``).
"""

from __future__ import annotations

from db import db_session
from recordings import carrier_calls, pipeline, retention, service
from recordings.store import recording_store
from services import services


def process_recording(recording_id: int) -> str:
    """Fetch, convert, encrypt, store, verify and delete at the carrier (safe to run twice)."""
    return pipeline.process(int(recording_id))


def apply_retention() -> dict[str, int]:
    """Delete expired recordings (store and carrier) and erase expired personal data."""
    svc = services()
    return retention.apply(db_session(), svc, recording_store(svc.settings))


def resume_stalled() -> int:
    """Enqueue again the recordings whose job was lost (a killed worker, a flushed Redis)."""
    return service.resume_stalled(db_session())


def delete_carrier_call(row_id: int) -> str:
    """Delete one call's record at the carrier once it ended and its recordings are stored."""
    return carrier_calls.delete(db_session(), services(), int(row_id))


def sweep_carrier_calls() -> dict[str, int]:
    """Delete every ended call left at the carrier (a lost callback, a job out of retries)."""
    return carrier_calls.sweep(db_session(), services())
