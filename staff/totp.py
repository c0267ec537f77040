"""TOTP second factor (RFC 6238: 30-second steps, 6 digits, SHA-1, as every authenticator app).

The secret is sealed with the app's ``DataProtector`` (AES-GCM, the user's row id as associated
data), exactly like a phone number: never in a column, a log line or a URL in plain text. It is
made when its owner first opens the enrolment page of a login they started with their password,
kept (sealed) in that pending login only, shown there once as an ``otpauth://`` URI and a QR
code rendered here as SVG (segno; no JavaScript, no external request), and written to the
account only when its owner confirms it with a code (``confirm_enrolment``: refused if the
account is enrolled already).

A code is accepted once: the step it belongs to is kept (``StaffUser.totp_last_step``) and moved
forward only by a conditional UPDATE (``consume_code``), so of two requests that carry the same
code at the same moment (in two processes) exactly one passes; a code of that step or an older
one is refused from then on.
"""

from __future__ import annotations

import hmac
import time

import pyotp
import segno
from sqlalchemy import or_, update
from sqlalchemy.orm import Session

from dataprotection import DataProtector, Sealed
from staff.models import StaffUser

ISSUER = "Hotline"
#: Codes of the previous and next step are accepted too (clock drift of up to 30 s).
VALID_WINDOW = 1
STEP_S = 30


def new_secret() -> str:
    """A fresh 160-bit secret, base32 (what authenticator apps take)."""
    return pyotp.random_base32()


def open_secret(protector: DataProtector, user: StaffUser) -> str | None:
    if user.totp_ciphertext is None or user.totp_key_id is None:
        return None
    sealed = Sealed(user.totp_key_id, user.totp_ciphertext)
    return protector.open_text(sealed, associated=user.totp_associated_data())


def provisioning_uri(secret: str, username: str) -> str:
    """The ``otpauth://totp/…`` URI an authenticator app scans."""
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=ISSUER)


def qr_svg_data_uri(uri: str) -> str:
    """The QR code of ``uri`` as a ``data:image/svg+xml`` URI (CSP allows ``img-src data:``)."""
    return segno.make(uri, error="m").svg_data_uri(scale=5, border=4)


def matching_step(secret: str, code: str, now: float | None = None) -> int | None:
    """The time step whose code ``code`` is (within ±VALID_WINDOW steps), else None."""
    code = (code or "").strip().replace(" ", "")
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    now = time.time() if now is None else now
    current = int(now // STEP_S)
    found = None
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            found = step
    return found


def consume_code(
    db: Session, protector: DataProtector, user: StaffUser, code: str, now: float | None = None
) -> bool:
    """Check ``code`` against the enrolled user's secret and use its step up, once.

    The step is written by ``UPDATE … WHERE totp_last_step < step`` in the caller's transaction
    (the caller commits): a parallel request with the same code waits for this one's row lock
    and then matches no row, so it fails. The same or an older step is refused from then on.
    """
    if not user.totp_enabled:
        return False
    secret = open_secret(protector, user)
    if secret is None:
        return False
    step = matching_step(secret, code, now)
    if step is None:
        return False
    table = StaffUser.__table__
    result = db.execute(
        update(table)
        .where(
            table.c.id == user.id,
            table.c.totp_enabled.is_(True),
            or_(table.c.totp_last_step.is_(None), table.c.totp_last_step < step),
        )
        .values(totp_last_step=step)
    )
    db.expire(user, ["totp_last_step"])
    return result.rowcount == 1


def confirm_enrolment(
    db: Session,
    protector: DataProtector,
    user: StaffUser,
    secret: str,
    code: str,
    now: float | None = None,
) -> bool:
    """Enrol ``secret`` (from the user's pending login) if ``code`` is one of its codes and the
    account is not enrolled yet: one conditional UPDATE seals it onto the account, enables TOTP
    and uses the code's step up (the caller commits). False changes nothing: a wrong code, or an
    account that is enrolled already (by a parallel request too: that one's row lock is waited
    for, then no row matches)."""
    step = matching_step(secret, code, now)
    if step is None or user.id is None:
        return False
    sealed = protector.seal_text(secret, associated=user.totp_associated_data())
    table = StaffUser.__table__
    result = db.execute(
        update(table)
        .where(table.c.id == user.id, table.c.totp_enabled.is_(False))
        .values(
            totp_ciphertext=sealed.ciphertext, totp_key_id=sealed.key_id, totp_enabled=True,
            totp_last_step=step,
        )
    )  # fmt: skip
    db.expire(user, ["totp_ciphertext", "totp_key_id", "totp_enabled", "totp_last_step"])
    return result.rowcount == 1


def seal_secret(protector: DataProtector, user: StaffUser, secret: str) -> None:
    """Store ``secret`` sealed on ``user`` (which must have an id: flush first), not enabled.
    For tools and tests that set an account up directly; logins enrol through
    ``confirm_enrolment``."""
    if user.id is None:
        raise ValueError("flush the user before sealing their TOTP secret")
    sealed = protector.seal_text(secret, associated=user.totp_associated_data())
    user.totp_ciphertext, user.totp_key_id = sealed.ciphertext, sealed.key_id
    user.totp_enabled = False
    user.totp_last_step = None


def clear(user: StaffUser) -> None:
    """Forget the account's second factor (a reset): its owner enrols anew at the next login."""
    user.totp_ciphertext = user.totp_key_id = None
    user.totp_enabled = False
    user.totp_last_step = None
