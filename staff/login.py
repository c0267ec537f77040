"""The two login steps (password, then TOTP code) with throttling and auditing, free of Flask
views so that the console, the CLI and the tests share one implementation.

Each step charges the limiter *before* checking anything (see ``staff.ratelimit``); a wrong
password and an unknown username take the same time and give the same answer. Every failure
is audited as ``login.failure`` with a reason code (never the username typed: it might be a
password typed in the wrong field); a completed login is ``login.success``.

``recheck_password`` asks a signed-in member for their password again (to change it): it is
charged to the same throttle, so a stolen session cannot be used to guess the password.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from dataprotection import DataProtector
from staff import audit, totp
from staff.accounts import find_user
from staff.models import StaffUser
from staff.passwords import hash_password, needs_rehash, spend_verify_time, verify_password
from staff.ratelimit import Attempt, LoginLimiter
from staff.sessions import address_is_known


@dataclass(frozen=True)
class StepResult:
    """``user`` is set when the step passed; ``attempt`` is what the limiter charged."""

    user: StaffUser | None
    attempt: Attempt


def _known(db: Session, user: StaffUser | None, address: str) -> bool:
    return user is not None and address_is_known(db, user.id, address)


def end_transaction_before_hashing(db: Session) -> None:
    """End the read transaction (nothing is written yet) before an argon2id hash: on SQLite
    every transaction holds the database's write lock (``db.make_engine``), and a login burst
    must not keep the carrier's webhooks waiting for it. What was read stays loaded."""
    db.commit()


def password_step(
    db: Session,
    limiter: LoginLimiter,
    *,
    username: str,
    password: str,
    address: str,
) -> StepResult:
    """Check a username and password. Raises ``LoginThrottled`` when the limiter says wait.

    On success the user is returned; the caller then either refunds the charge
    (``limiter.refund(result.attempt)``) and asks for the code, or, when no code is needed,
    calls ``login_succeeded``. The caller commits.
    """
    user = find_user(db, username) if username.strip() else None
    attempt = limiter.charge(username, address, known=_known(db, user, address))
    end_transaction_before_hashing(db)
    if user is None:
        spend_verify_time()
        ok = False
    else:
        ok = verify_password(user.password_hash, password) and user.active
    if not ok:
        reason = "unknown_user" if user is None else ("disabled" if not user.active else "password")
        audit.record(
            "login.failure", "staff_user", user.id if user else None, using=db, actor=None,
            ip=address, step="password", reason=reason,
        )  # fmt: skip
        return StepResult(None, attempt)
    assert user is not None
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return StepResult(user, attempt)


def totp_step(
    db: Session,
    protector: DataProtector,
    limiter: LoginLimiter,
    *,
    user: StaffUser,
    code: str,
    address: str,
    enrolling: bool = False,
) -> StepResult:
    """Check a TOTP code (at login, or the first code that confirms an enrolment).

    Raises ``LoginThrottled``. On success the code's step is remembered (no replay), an
    enrolment is confirmed, and the caller completes the login; the caller commits.
    """
    attempt = limiter.charge(user.username, address, known=_known(db, user, address))
    ok = user.active and totp.verify_code(protector, user, code)
    if not ok:
        audit.record(
            "login.failure", "staff_user", user.id, using=db, actor=None, ip=address,
            step="enrol" if enrolling else "totp", reason="code",
        )  # fmt: skip
        return StepResult(None, attempt)
    if enrolling and not user.totp_enabled:
        user.totp_enabled = True
        audit.record("staff.totp_enrol", "staff_user", user.id, using=db, actor=user.id, ip=address)
    return StepResult(user, attempt)


def login_succeeded(
    db: Session, limiter: LoginLimiter, user: StaffUser, attempt: Attempt, address: str
) -> None:
    """Clear the throttle for this account and address, and audit the login."""
    limiter.succeeded(attempt)
    audit.record("login.success", "staff_user", user.id, using=db, actor=user.id, ip=address)


def recheck_password(
    db: Session, limiter: LoginLimiter, *, user: StaffUser, password: str, address: str
) -> bool:
    """Whether ``password`` is the signed-in ``user``'s, counted by the login throttle.

    Raises ``LoginThrottled`` when the limiter says wait (nothing checked). A right password is
    refunded; a wrong one stays charged and is audited as ``login.failure`` (step
    ``password_change``). The caller commits.
    """
    attempt = limiter.charge(user.username, address, known=_known(db, user, address))
    end_transaction_before_hashing(db)
    if verify_password(user.password_hash, password):
        limiter.refund(attempt)
        return True
    audit.record(
        "login.failure", "staff_user", user.id, using=db, actor=user.id, ip=address,
        step="password_change", reason="password",
    )  # fmt: skip
    return False
