"""RQ jobs of the IVR."""

from __future__ import annotations

import logging

from extensions import db_connection, job_context, services
from ivr import journal

log = logging.getLogger(__name__)


def replay_fallback_journal() -> int:
    """Move what the fallback URL journalled into the database (idempotent; safe to run twice)."""
    with job_context():
        svc = services()
        applied = journal.replay(svc.settings.journal_path, svc.protector, db_connection())
        if applied:
            log.info("fallback journal: %d entries replayed into the database", applied)
        return applied
