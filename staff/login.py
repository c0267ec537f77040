"""The login steps (the password, a new password when one was set by someone else, the TOTP
code or the TOTP enrolment) with throttling and auditing, free of Flask views so that the
console, the CLI and the tests share one implementation. What a half-finished login has
reached is kept on the server (``staff.pending``); ``next_stage`` says what comes next.

Each guessable step charges the limiter *before* checking anything (see ``staff.ratelimit``);
a wrong password and an unknown username take the same time and give the same answer. Every
failure is audited as ``login.failure`` with a reason code (never the username typed: it might
be a password typed in the wrong field); a completed login is ``login.success``.

Password hashes (argon2id) are computed inside a ``HashingGate`` slot (``HashingBusy`` when all
are taken: nothing checked, nothing charged) and outside any database transaction: on SQLite a
transaction holds the write lock every webhook needs, and a hash takes tens of milliseconds.

``recheck_password`` asks a signed-in member for their password again (to change it): it is
charged to the same throttle, so a stolen session cannot be used to guess the password.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from dataprotection import DataProtector
from staff import accounts, audit, totp
from staff.accounts import find_user
from staff.models import StaffUser
from staff.passwords import hash_password, needs_rehash, spend_verify_time, verify_password
from staff.ratelimit import Attempt, HashingBusy, HashingGate, LoginLimiter
from staff.sessions import address_is_known


@dataclass(frozen=True)
class StepResult:
    """``user`` is set when the step passed; ``attempt`` is what the limiter charged."""

    user: StaffUser | None
    attempt: Attempt


def _known(db: Session, user: StaffUser | None, address: str) -> bool:
    return user is not None and address_is_known(db, user.id, address)


def _end_reads(db: Session) -> None:
    """End the session's transaction if it only read (no lock held while a hash is computed)."""
    if db.in_transaction() and not (db.new or db.dirty or db.deleted):
        db.commit()


def next_stage(user: StaffUser, *, code_given: bool, require_totp: bool) -> str | None:
    """What a login whose password was accepted still needs, in order: the code of an enrolled
    account; a new password if the current one was set by someone else; an enrolment when the
    second factor is required and the account has none. None: the login is complete."""
    if user.totp_enabled and not code_given:
        return "totp"
    if user.must_change_password:
        return "password"
    if not user.totp_enabled and require_totp:
        return "enrol"
    return None


def password_step(
    db: Session,
    limiter: LoginLimiter,
    gate: HashingGate,
    *,
    username: str,
    password: str,
    address: str,
) -> StepResult:
    """Check a username and password. Raises ``LoginThrottled`` when the limiter says wait and
    ``HashingBusy`` when no hash may be computed now (then nothing is charged).

    On success the user is returned; the caller then refunds the charge
    (``limiter.refund(result.attempt)``) and goes on with ``next_stage``, or, when nothing is
    left, calls ``login_succeeded``. The caller commits.
    """
    user = find_user(db, username) if username.strip() else None
    known = _known(db, user, address)
    _end_reads(db)
    attempt = limiter.charge(username, address, known=known)
    new_hash = None
    try:
        with gate.slot():
            if user is None:
                spend_verify_time()
                ok = False
            else:
                ok = verify_password(user.password_hash, password) and user.active
                if ok and needs_rehash(user.password_hash):
                    new_hash = hash_password(password)
    except HashingBusy:
        limiter.refund(attempt)
        raise
    if not ok:
        reason = "unknown_user" if user is None else ("disabled" if not user.active else "password")
        audit.record(
            "login.failure", "staff_user", user.id if user else None, using=db, actor=None,
            ip=address, step="password", reason=reason,
        )  # fmt: skip
        return StepResult(None, attempt)
    assert user is not None
    if new_hash is not None:
        user.password_hash = new_hash
    return StepResult(user, attempt)


def totp_step(
    db: Session,
    protector: DataProtector,
    limiter: LoginLimiter,
    *,
    user: StaffUser,
    code: str,
    address: str,
) -> StepResult:
    """Check an enrolled account's TOTP code. Raises ``LoginThrottled``. On success the code's
    step is used up (``totp.consume_code``: one of two parallel requests with the same code
    passes); the caller goes on with ``next_stage`` and commits."""
    attempt = limiter.charge(user.username, address, known=_known(db, user, address))
    ok = user.active and totp.consume_code(db, protector, user, code)
    if not ok:
        audit.record(
            "login.failure", "staff_user", user.id, using=db, actor=None, ip=address,
            step="totp", reason="code",
        )  # fmt: skip
        return StepResult(None, attempt)
    return StepResult(user, attempt)


def enrol_step(
    db: Session,
    protector: DataProtector,
    limiter: LoginLimiter,
    *,
    user: StaffUser,
    secret: str,
    code: str,
    address: str,
) -> StepResult:
    """Confirm an enrolment: ``secret`` is the one the pending login made, ``code`` one of its
    codes. Raises ``LoginThrottled``. Refused for an account that is enrolled already (reason
    ``enrolled``). On success the account has the secret, enabled, and the step is used up
    (audited ``staff.totp_enrol``); the caller commits."""
    attempt = limiter.charge(user.username, address, known=_known(db, user, address))
    enrolled_before = user.totp_enabled
    ok = user.active and not enrolled_before and totp.confirm_enrolment(
        db, protector, user, secret, code
    )  # fmt: skip
    if not ok:
        reason = "enrolled" if enrolled_before or user.totp_enabled else "code"
        audit.record(
            "login.failure", "staff_user", user.id, using=db, actor=None, ip=address,
            step="enrol", reason=reason,
        )  # fmt: skip
        return StepResult(None, attempt)
    audit.record("staff.totp_enrol", "staff_user", user.id, using=db, actor=user.id, ip=address)
    return StepResult(user, attempt)


def new_password_step(
    db: Session,
    gate: HashingGate,
    *,
    user: StaffUser,
    new_password: str,
    keep_session: int | None = None,
) -> int:
    """Set the member's new password (``accounts.change_password``: the policy, not the same
    as now, other sessions end, audited) within a hashing slot and outside any transaction.
    Raises ``WeakPassword`` and ``HashingBusy``. The caller commits."""
    _end_reads(db)
    with gate.slot():
        return accounts.change_password(db, user, new_password, keep_session=keep_session)


def login_succeeded(
    db: Session,
    limiter: LoginLimiter,
    user: StaffUser,
    attempt: Attempt,
    address: str,
    *,
    refunded: bool = False,
) -> None:
    """Clear the throttle for this account and address, and audit the login. ``attempt``: the
    last step's charge (``refunded``: the password step's, given back already)."""
    if refunded:
        limiter.forget_pair(attempt)
    else:
        limiter.succeeded(attempt)
    audit.record("login.success", "staff_user", user.id, using=db, actor=user.id, ip=address)


def recheck_password(
    db: Session,
    limiter: LoginLimiter,
    gate: HashingGate,
    *,
    user: StaffUser,
    password: str,
    address: str,
) -> bool:
    """Whether ``password`` is the signed-in ``user``'s, counted by the login throttle.

    Raises ``LoginThrottled`` when the limiter says wait and ``HashingBusy`` when no hash may
    be computed now (nothing checked or charged). A right password is refunded; a wrong one
    stays charged and is audited as ``login.failure`` (step ``password_change``). The caller
    commits.
    """
    known = _known(db, user, address)
    _end_reads(db)
    attempt = limiter.charge(user.username, address, known=known)
    try:
        with gate.slot():
            right = verify_password(user.password_hash, password)
    except HashingBusy:
        limiter.refund(attempt)
        raise
    if right:
        limiter.refund(attempt)
        return True
    audit.record(
        "login.failure", "staff_user", user.id, using=db, actor=user.id, ip=address,
        step="password_change", reason="password",
    )  # fmt: skip
    return False
