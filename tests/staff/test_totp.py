"""TOTP: sealed secrets, codes good once, the enrolment URI and QR code."""

from __future__ import annotations

import base64
import time
import urllib.parse

import pyotp
from sqlalchemy import text

from db import database, db_session
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
        db = db_session()
        user = db.get(StaffUser, user_id)
        protector = services().protector

        def consume(code: str) -> bool:
            used = totp.consume_code(db, protector, user, code, now)
            db.commit()
            return used

        assert not consume(generator.at(now - 90))  # too old
        assert consume(generator.at(now - 30))  # clock drift
        assert consume(generator.at(now))
        assert not consume(generator.at(now))  # replayed
        assert not consume(generator.at(now - 30))  # older step
        assert consume(generator.at(now + 30))
        assert not consume("12345")
        assert not consume("abcdef")
        assert user.totp_last_step == int(now // 30) + 1


def test_a_code_is_used_up_in_the_database_not_in_the_object(app) -> None:
    """Two requests that loaded the account before either used the code (two processes): the
    second one's conditional UPDATE matches no row, whatever its copy of the row says."""
    user_id, secret = make_user(app, "handler", "olena")
    code = pyotp.TOTP(secret).now()
    with app.app_context():
        first = database().session_factory()
        second = database().session_factory()
        try:
            mine = first.get(StaffUser, user_id)
            first.commit()  # (SQLite: one transaction at a time holds the lock)
            theirs = second.get(StaffUser, user_id)
            second.commit()
            assert theirs.totp_last_step is None
            assert totp.consume_code(first, services().protector, mine, code)
            first.commit()
            assert theirs.totp_last_step is None  # its stale copy
            assert not totp.consume_code(second, services().protector, theirs, code)
            second.commit()
        finally:
            first.close()
            second.close()


def test_an_enrolment_is_confirmed_once_and_never_over_an_enrolled_account(app) -> None:
    user_id, _ = make_user(app, "handler", "olena", enrolled=False)
    mine, theirs = totp.new_secret(), totp.new_secret()
    with app.app_context():
        db = db_session()
        user = db.get(StaffUser, user_id)
        protector = services().protector
        assert not totp.confirm_enrolment(db, protector, user, mine, "000000" if pyotp.TOTP(
            mine).now() != "000000" else "111111")  # fmt: skip
        assert totp.confirm_enrolment(db, protector, user, mine, pyotp.TOTP(mine).now())
        db.commit()
        assert user.totp_enabled and totp.open_secret(protector, user) == mine
        # Another pending login's secret (an attacker's copy) cannot replace it.
        assert not totp.confirm_enrolment(db, protector, user, theirs, pyotp.TOTP(theirs).now())
        db.commit()
        assert totp.open_secret(protector, user) == mine


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
