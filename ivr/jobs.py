"""RQ jobs of the IVR."""

from __future__ import annotations

import logging

from db import db_session
from inquiries import blocklist
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


def purge_expired_blocks() -> int:
    """Delete the blocklist entries whose block has ended (each audited): the hash of a number
    is kept no longer than its block."""
    db = db_session()
    purged = blocklist.purge_expired(db)
    db.commit()
    if purged:
        log.info("blocklist: %d expired entries deleted", purged)
    return purged
