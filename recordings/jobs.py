"""RQ jobs of the recordings: the pipeline for one recording, retention, the stalled sweep.

Each builds its app inside the process that runs it (``job_context``) and takes ids only.
"""

from __future__ import annotations

from extensions import db_connection, job_context, services
from recordings import pipeline, retention, service
from recordings.store import recording_store


def process_recording(recording_id: int) -> str:
    """Fetch, convert, encrypt, store, verify and delete at the carrier (safe to run twice)."""
    with job_context():
        return pipeline.process(int(recording_id))


def apply_retention() -> dict[str, int]:
    """Delete expired recordings (store and carrier) and erase expired personal data."""
    with job_context():
        svc = services()
        return retention.apply(db_connection(), svc, recording_store(svc.settings))


def resume_stalled() -> int:
    """Enqueue again the recordings whose job was lost (a killed worker, a flushed Redis)."""
    with job_context():
        return service.resume_stalled(db_connection())
