"""TOTP: sealed secrets, codes good once, the enrolment URI and QR code."""

from __future__ import annotations

import base64
import time
import urllib.parse

import pyotp
from sqlalchemy import text

from db import db_session
from services import services
from staff import totp
from staff.models import StaffUser
from tests.staff.support import make_user


def test_the_secret_is_sealed_never_plain(app) -> None:
    user_id, secret = make_user(app, "handler", "olena")
    with app.app_context():
        row = (
            db_session()
            .execute(text("SELECT * FROM staff_user WHERE id = :i"), {"i": user_id})
            .one()
        )
        for value in row:
            as_bytes = value if isinstance(value, bytes) else str(value).encode()
            assert secret.encode() not in as_bytes
        user = db_session().get(StaffUser, user_id)
        other = StaffUser(id=user_id + 1)  # another row's associated data does not open it
        other.totp_ciphertext, other.totp_key_id = user.totp_ciphertext, user.totp_key_id
        try:
            totp.open_secret(services().protector, other)
        except ValueError:
            pass
        else:
            raise AssertionError("a secret opened under another user's id")


def test_codes_of_neighbouring_steps_pass_and_each_only_once(app) -> None:
    user_id, secret = make_user(app, "handler", "olena")
    now = time.time()
    generator = pyotp.TOTP(secret)
    with app.app_context():
        user = db_session().get(StaffUser, user_id)
        protector = services().protector
        assert not totp.verify_code(protector, user, generator.at(now - 90), now)  # too old
        assert totp.verify_code(protector, user, generator.at(now - 30), now)  # clock drift
        assert totp.verify_code(protector, user, generator.at(now), now)
        assert not totp.verify_code(protector, user, generator.at(now), now)  # replayed
        assert not totp.verify_code(protector, user, generator.at(now - 30), now)  # older step
        assert totp.verify_code(protector, user, generator.at(now + 30), now)
        assert not totp.verify_code(protector, user, "12345", now)
        assert not totp.verify_code(protector, user, "abcdef", now)


def test_provisioning_uri_and_qr_code() -> None:
    secret = totp.new_secret()
    assert len(base64.b32decode(secret)) == 20  # 160 bits
    uri = totp.provisioning_uri(secret, "olena")
    parsed = urllib.parse.urlparse(uri)
    assert parsed.scheme == "otpauth" and parsed.netloc == "totp"
    query = urllib.parse.parse_qs(parsed.query)
    assert query["secret"] == [secret] and query["issuer"] == ["Hotline"]
    qr = totp.qr_svg_data_uri(uri)
    assert qr.startswith("data:image/svg+xml")
    svg = urllib.parse.unquote(qr.split(",", 1)[1])
    assert (
        "<svg" in svg
        and "<script" not in svg
        and "http" not in svg.replace("http://www.w3.org", "")
    )
