"""TOTP second factor (RFC 6238: 30-second steps, 6 digits, SHA-1, as every authenticator app).

The secret is sealed with the app's ``DataProtector`` (AES-GCM, the user's row id as associated
data), exactly like a phone number: never in a column, a log line or a URL in plain text. It is
shown once, at enrolment, as an ``otpauth://`` URI and a QR code rendered here as SVG (segno;
no JavaScript, no external request). A code is accepted once: the step it belongs to is kept
(``StaffUser.totp_last_step``), and a code of that step or an older one is refused.
"""

from __future__ import annotations

import hmac
import time

import pyotp
import segno

from dataprotection import DataProtector, Sealed
from staff.models import StaffUser

ISSUER = "Hotline"
#: Codes of the previous and next step are accepted too (clock drift of up to 30 s).
VALID_WINDOW = 1
STEP_S = 30


def new_secret() -> str:
    """A fresh 160-bit secret, base32 (what authenticator apps take)."""
    return pyotp.random_base32()


def seal_secret(protector: DataProtector, user: StaffUser, secret: str) -> None:
    """Store ``secret`` sealed on ``user`` (which must have an id: flush first). Not enabled yet."""
    if user.id is None:
        raise ValueError("flush the user before sealing their TOTP secret")
    sealed = protector.seal_text(secret, associated=user.totp_associated_data())
    user.totp_ciphertext, user.totp_key_id = sealed.ciphertext, sealed.key_id
    user.totp_enabled = False
    user.totp_last_step = None


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


def verify_code(
    protector: DataProtector, user: StaffUser, code: str, now: float | None = None
) -> bool:
    """Check ``code`` against the user's secret, once: on success the step is remembered on
    ``user`` (the caller commits), and the same or an older step is refused from then on."""
    secret = open_secret(protector, user)
    if secret is None:
        return False
    step = matching_step(secret, code, now)
    if step is None or (user.totp_last_step is not None and step <= user.totp_last_step):
        return False
    user.totp_last_step = step
    return True
