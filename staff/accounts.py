"""Staff accounts: create, change role, disable/enable, reset, a member's own password change.
Each change is audited in the same transaction (the caller commits: the change and its audit
row land together).

A new or reset account has a password someone else chose or saw, and no second factor: its
next login must set a new password (``must_change_password``), then enrol an authenticator
(the TOTP secret is made then, in that login, and shown to its owner only)."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from sqlalchemy import column, func, select, table
from sqlalchemy.orm import Session

from dataprotection import DataProtector
from db import utcnow
from staff import audit, totp
from staff.models import ROLES, STAFF_LANGUAGES, StaffUser
from staff.passwords import WeakPassword, check_policy, hash_password, verify_password
from staff.sessions import end_all_sessions

_USERNAME = re.compile(r"[a-z][a-z0-9_.-]{1,63}")

#: The routing package's handler table, by name only: staff sits below routing (DESIGN.md's
#: import order), so it refers to the table a staff account may be linked to without importing
#: routing.
_HANDLER = table("handler", column("id"))


class AccountError(ValueError):
    """A change that may not be made; the message says why (never a secret)."""


@dataclass(frozen=True)
class Enrolment:
    """What the new (or reset) account's owner needs once: the password, if generated."""

    user_id: int
    password: str | None = None


def generate_password() -> str:
    """A random password (about 120 bits) that passes the policy."""
    return secrets.token_urlsafe(15)


def normalise_username(raw: str) -> str:
    username = (raw or "").strip().lower()
    if not _USERNAME.fullmatch(username):
        raise AccountError("username: 2-64 characters, a letter first, then a-z 0-9 _ . -")
    return username


def find_user(db: Session, username: str) -> StaffUser | None:
    return db.scalar(select(StaffUser).where(StaffUser.username == username.strip().lower()))


def _check_choice(value: str, known: tuple[str, ...], what: str) -> str:
    if value not in known:
        raise AccountError(f"{what} must be one of {', '.join(known)}")
    return value


def check_handler(db: Session, handler_id: int | None, user_id: int | None = None) -> None:
    """The handler exists and no other account is linked to it (AccountError otherwise)."""
    if handler_id is None:
        return
    if db.scalar(select(_HANDLER.c.id).where(_HANDLER.c.id == handler_id)) is None:
        raise AccountError(f"there is no handler {handler_id}")
    taken = db.scalar(select(StaffUser.id).where(StaffUser.handler_id == handler_id))
    if taken is not None and taken != user_id:
        raise AccountError(f"handler {handler_id} is already linked to staff user {taken}")


def create_user(
    db: Session,
    protector: DataProtector,
    *,
    username: str,
    display_name: str,
    role: str,
    password: str | None = None,
    language: str = "uk",
    handler_id: int | None = None,
    actor: int | None = None,
) -> Enrolment:
    """Create an account and audit it; ``password`` None: generated. Its first login must
    change the password, then enrol the second factor."""
    username = normalise_username(username)
    name = (display_name or "").strip()
    if not name or len(name) > 80:
        raise AccountError("display name: 1 to 80 characters")
    _check_choice(role, ROLES, "role")
    _check_choice(language, STAFF_LANGUAGES, "language")
    if find_user(db, username) is not None:
        raise AccountError(f"the username {username!r} is taken")
    check_handler(db, handler_id)
    generated = generate_password() if password is None else None
    chosen = generated or password or ""
    check_policy(chosen, username)
    user = StaffUser(
        username=username,
        display_name=name,
        role=role,
        password_hash=hash_password(chosen),
        language=language,
        handler_id=handler_id,
        active=True,
        totp_enabled=False,
        must_change_password=True,
    )
    db.add(user)
    db.flush()
    audit.record(
        "staff.create", "staff_user", user.id, using=db, actor=actor, role=role,
        handler_id=handler_id,
    )  # fmt: skip
    return Enrolment(user.id, generated)


def active_admins(db: Session) -> int:
    return (
        db.scalar(
            select(func.count(StaffUser.id)).where(StaffUser.role == "admin", StaffUser.active)
        )
        or 0
    )


def _keep_an_admin(db: Session, user: StaffUser) -> None:
    if user.role == "admin" and user.active and active_admins(db) <= 1:
        raise AccountError("this is the last active admin; make another admin first")


def set_role(db: Session, user: StaffUser, role: str, *, actor: int | None = None) -> None:
    _check_choice(role, ROLES, "role")
    if role == user.role:
        return
    if role != "admin":
        _keep_an_admin(db, user)
    previous, user.role, user.updated_at = user.role, role, utcnow()
    audit.record("staff.role", "staff_user", user.id, using=db, actor=actor, old=previous, new=role)


def set_active(db: Session, user: StaffUser, active: bool, *, actor: int | None = None) -> None:
    """Disable (every session ends at once) or enable an account."""
    if user.active == active:
        return
    if not active:
        _keep_an_admin(db, user)
    user.active, user.updated_at = active, utcnow()
    if not active:
        end_all_sessions(db, user.id, "disabled")
    action = "staff.enable" if active else "staff.disable"
    audit.record(action, "staff_user", user.id, using=db, actor=actor)


def reset_credentials(
    db: Session,
    protector: DataProtector,
    user: StaffUser,
    *,
    password: str | None = None,
    actor: int | None = None,
) -> Enrolment:
    """A new password (``None``: generated) to be changed at the next login, and no second
    factor (the owner enrols anew at that login); every session ends."""
    generated = generate_password() if password is None else None
    chosen = generated or password or ""
    check_policy(chosen, user.username)
    now = utcnow()
    user.password_hash, user.password_changed_at, user.updated_at = hash_password(chosen), now, now
    user.must_change_password = True
    totp.clear(user)
    end_all_sessions(db, user.id, "reset")
    audit.record("staff.reset", "staff_user", user.id, using=db, actor=actor)
    return Enrolment(user.id, generated)


def change_password(
    db: Session, user: StaffUser, new_password: str, *, keep_session: int | None = None
) -> int:
    """Set a member's own new password (the current one checked by the caller, see
    ``staff.login.recheck_password``): the policy applies and the password must change. Every
    other session of the account ends (``keep_session``: the one the change is made in; renew
    it); audited ``staff.password_change`` (never the password). Returns the sessions ended."""
    check_policy(new_password, user.username)
    if verify_password(user.password_hash, new_password):
        raise WeakPassword("the new password must differ from the current one", "unchanged")
    now = utcnow()
    user.password_hash, user.password_changed_at, user.updated_at = (
        hash_password(new_password), now, now,
    )  # fmt: skip
    user.must_change_password = False
    ended = end_all_sessions(db, user.id, "password", keep=keep_session)
    audit.record(
        "staff.password_change", "staff_user", user.id, using=db, actor=user.id,
        sessions_ended=ended,
    )  # fmt: skip
    return ended
