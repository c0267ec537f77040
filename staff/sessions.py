"""Server-side console sessions.

The browser holds only a random token (256 bits) in an HttpOnly cookie; the database holds its
SHA-256 (``StaffSession.token_hash``), so a database dump opens no session. A session ends at
logout, after ``STAFF_IDLE_TIMEOUT_S`` without a request, ``STAFF_ABSOLUTE_TIMEOUT_S`` after
the login whatever the activity, and when the account is disabled or reset. Every login makes
a new session (the old one, if the browser still had one, is ended: no session fixation). A
password change ends the account's other sessions and renews the one it was made in.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from db import utcnow
from settings import Settings
from staff.models import StaffSession, StaffUser

#: ``last_seen_at`` is written at most this often (a write per request would hold SQLite's lock).
TOUCH_EVERY_S = 30


def cookie_name(settings: Settings) -> str:
    """``__Host-`` in production: the browser then insists on Secure, Path=/ and no Domain."""
    return "__Host-hotline_staff" if settings.env == "production" else "hotline_staff"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(
    db: Session, user: StaffUser, ip: str | None, *, replaces: str | None = None
) -> tuple[str, StaffSession]:
    """A new session for ``user`` (the caller commits); returns the token for the cookie.

    ``replaces``: the token the browser presented, if any; that session is ended ("renewed").
    """
    if replaces:
        old = db.scalar(select(StaffSession).where(StaffSession.token_hash == token_hash(replaces)))
        if old is not None and old.ended_at is None:
            end_session(db, old, "renewed")
    token = secrets.token_urlsafe(32)
    now = utcnow()
    staff_session = StaffSession(
        token_hash=token_hash(token),
        staff_user_id=user.id,
        created_at=now,
        last_seen_at=now,
        ip=ip,
    )
    db.add(staff_session)
    user.last_login_at = now
    db.flush()
    return token, staff_session


def renew_session(db: Session, old: StaffSession) -> tuple[str, StaffSession]:
    """Replace a live session with a new token (the old one ends, "renewed"); the caller commits.

    The new session continues the same login: its address and start (so the absolute timeout)
    are the old one's; ``last_login_at`` is left alone.
    """
    end_session(db, old, "renewed")
    token = secrets.token_urlsafe(32)
    renewed = StaffSession(
        token_hash=token_hash(token),
        staff_user_id=old.staff_user_id,
        created_at=old.created_at,
        last_seen_at=utcnow(),
        ip=old.ip,
    )
    db.add(renewed)
    db.flush()
    return token, renewed


def expiry_reason(staff_session: StaffSession, settings: Settings, now: dt.datetime) -> str | None:
    """Why the session is over at ``now`` ("idle", "absolute"), or None if it is still good."""
    if now - staff_session.created_at >= dt.timedelta(seconds=settings.staff_absolute_timeout_s):
        return "absolute"
    if now - staff_session.last_seen_at >= dt.timedelta(seconds=settings.staff_idle_timeout_s):
        return "idle"
    return None


#: Built once (every console request runs it), the token's hash a parameter.
_SESSION_AND_USER = (
    select(StaffSession, StaffUser)
    .join(StaffUser, StaffUser.id == StaffSession.staff_user_id)
    .where(StaffSession.token_hash == bindparam("token_hash"))
)


def resume_session(
    db: Session, token: str, settings: Settings, now: dt.datetime | None = None
) -> tuple[StaffSession, StaffUser] | None:
    """The live session and its active user for ``token``, noting the activity; else None.

    A session found expired, or whose user was disabled, is ended here (the caller commits).
    """
    if not token:
        return None
    now = now or utcnow()
    row = db.execute(_SESSION_AND_USER, {"token_hash": token_hash(token)}).first()
    if row is None:
        return None
    staff_session, user = row[0], row[1]
    if staff_session.ended_at is not None:
        return None
    reason = "disabled" if not user.active else expiry_reason(staff_session, settings, now)
    if reason is not None:
        end_session(db, staff_session, reason, now)
        return None
    if (now - staff_session.last_seen_at).total_seconds() >= TOUCH_EVERY_S:
        staff_session.last_seen_at = now
    return staff_session, user


def end_session(
    db: Session, staff_session: StaffSession, reason: str, now: dt.datetime | None = None
) -> None:
    if staff_session.ended_at is None:
        staff_session.ended_at = now or utcnow()
        staff_session.end_reason = reason


def end_all_sessions(db: Session, user_id: int, reason: str, *, keep: int | None = None) -> int:
    """End every live session of a user (disabled, reset; a password change ``keep``s the
    session it was made in); returns how many."""
    live = [StaffSession.staff_user_id == user_id, StaffSession.ended_at.is_(None)]
    if keep is not None:
        live.append(StaffSession.id != keep)
    result = db.execute(
        update(StaffSession)
        .where(*live)
        .values(ended_at=utcnow(), end_reason=reason)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


def address_is_known(db: Session, user_id: int, ip: str, within_days: int = 90) -> bool:
    """Whether ``user_id`` completed a login from ``ip`` in the last ``within_days`` days."""
    since = utcnow() - dt.timedelta(days=within_days)
    found = db.scalar(
        select(StaffSession.id)
        .where(
            StaffSession.staff_user_id == user_id,
            StaffSession.ip == ip,
            StaffSession.created_at >= since,
        )
        .limit(1)
    )
    return found is not None
