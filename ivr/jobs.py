"""RQ jobs of the IVR."""

from __future__ import annotations

import logging

from db import db_session
from ivr import journal
from services import services

log = logging.getLogger(__name__)


def replay_fallback_journal() -> int:
    """Move what the fallback URL journalled into the database (idempotent; safe to run twice)."""
    svc = services()
    applied = journal.replay(svc.settings.journal_path, svc.protector, db_session())
    if applied:
        log.info("fallback journal: %d entries replayed into the database", applied)
    return applied
