"""Logging in: password, then the TOTP code (or the enrolment), with pyotp computing codes."""

from __future__ import annotations

import contextlib
import re
import time

import pytest
from sqlalchemy import select

from db import db_session
from staff import totp
from staff.accounts import reset_credentials
from staff.models import AuditEvent, StaffSession, StaffUser
from staff.passwords import verify_password
from staff.ratelimit import HashingGate
from staff.sessions import cookie_name
from tests.staff.support import PASSWORD, code, csrf_from, csrf_token, log_in, make_user
from tests.support import handles

SECRET = re.compile(rb'<code class="secret">([A-Z2-7]{16,})</code>')
NEW_PASSWORD = "amber-orchard-compass-97"


def audit_actions(app) -> list[str]:
    with app.app_context():
        return list(db_session().scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


def test_password_then_code_signs_in(app, client) -> None:
    user_id, secret = make_user(app, "supervisor", "olena")
    response = log_in(client, "olena", secret)
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/console/")
    home = client.get("/console/")
    assert home.status_code == 200
    assert b"Supervisor" in home.data
    cookie = client.get_cookie(cookie_name(handles(app).settings))
    assert cookie is not None and cookie.http_only and cookie.same_site == "Lax"
    with app.app_context():
        rows = db_session().scalars(select(StaffSession)).all()
        assert [(s.staff_user_id, s.ended_at) for s in rows] == [(user_id, None)]
        assert rows[0].token_hash != cookie.value  # only the hash is stored
        assert db_session().get(StaffUser, user_id).last_login_at is not None
    assert audit_actions(app) == ["staff.create", "login.success"]


def test_username_is_case_insensitive(app, client) -> None:
    _, secret = make_user(app, "handler", "taras")
    assert log_in(client, "  TARAS ", secret).status_code == 302


@pytest.mark.parametrize(
    "username,password", [("olena", "wrong-password-123"), ("nobody", PASSWORD)]
)
def test_wrong_password_or_unknown_user_gives_the_same_answer(app, client, username, password):
    make_user(app, "supervisor", "olena")
    response = client.post(
        "/console/login",
        data={"username": username, "password": password, "csrf_token": csrf_token(client)},
    )
    assert response.status_code == 401
    assert b"Wrong username or password." in response.data
    assert client.get("/console/").status_code == 302
    assert audit_actions(app)[-1] == "login.failure"


def test_a_wrong_code_does_not_sign_in_and_a_code_is_good_once(app, client) -> None:
    _, secret = make_user(app, "auditor", "iryna")
    token = csrf_token(client)
    client.post(
        "/console/login", data={"username": "iryna", "password": PASSWORD, "csrf_token": token}
    )
    wrong = "000000" if code(secret) != "000000" else "111111"
    response = client.post("/console/login/totp", data={"code": wrong, "csrf_token": token})
    assert response.status_code == 401
    assert client.get("/console/").status_code == 302
    assert (
        client.post(
            "/console/login/totp", data={"code": code(secret), "csrf_token": token}
        ).status_code
        == 302
    )
    client.post("/console/logout", data={"csrf_token": csrf_token(client)})
    # The same code again (a replay, e.g. shoulder-surfed): refused.
    token = csrf_token(client)
    client.post(
        "/console/login", data={"username": "iryna", "password": PASSWORD, "csrf_token": token}
    )
    replay = client.post("/console/login/totp", data={"code": code(secret), "csrf_token": token})
    assert replay.status_code == 401
    assert (
        client.post(
            "/console/login/totp", data={"code": code(secret, 1), "csrf_token": token}
        ).status_code
        == 302
    )


def test_the_code_page_needs_the_password_first(app, client) -> None:
    assert client.get("/console/login/totp").headers["Location"].endswith("/console/login")
    response = client.post(
        "/console/login/totp", data={"code": "123456", "csrf_token": csrf_token(client)}
    )
    assert response.status_code == 302 and response.headers["Location"].endswith("/console/login")


def secret_on(page: bytes) -> str | None:
    found = SECRET.search(page)
    return found.group(1).decode() if found else None


def test_first_login_enrols_the_authenticator(app, client) -> None:
    user_id, _ = make_user(app, "handler", "mykola", enrolled=False)
    token = csrf_token(client)
    first = client.post(
        "/console/login", data={"username": "mykola", "password": PASSWORD, "csrf_token": token}
    )
    assert first.headers["Location"].endswith("/console/login/enrol")
    with app.app_context():  # no secret on the account before its owner confirms one
        assert db_session().get(StaffUser, user_id).totp_ciphertext is None
    page = client.get("/console/login/enrol")
    assert page.status_code == 200
    assert b'src="data:image/svg+xml' in page.data  # the QR code, rendered on the server
    secret = secret_on(page.data)
    assert secret is not None
    assert b"<script" not in page.data and b"style=" not in page.data
    done = client.post(
        "/console/login/enrol", data={"code": code(secret), "csrf_token": csrf_from(page.data)}
    )
    assert done.status_code == 302 and done.headers["Location"].endswith("/console/")
    with app.app_context():
        user = db_session().get(StaffUser, user_id)
        assert user.totp_enabled and totp.open_secret(handles(app).protector, user) == secret
    assert audit_actions(app)[-2:] == ["staff.totp_enrol", "login.success"]


def test_the_enrolment_key_is_shown_once(app, client) -> None:
    make_user(app, "handler", "mykola", enrolled=False)
    token = csrf_token(client)
    client.post(
        "/console/login", data={"username": "mykola", "password": PASSWORD, "csrf_token": token}
    )
    first = client.get("/console/login/enrol")
    secret = secret_on(first.data)
    assert secret is not None
    again = client.get("/console/login/enrol")
    assert again.status_code == 200 and secret_on(again.data) is None
    assert secret.encode() not in again.data and b"data:image/svg+xml" not in again.data
    assert b"shown once already" in again.data
    wrong = "000000" if code(secret) != "000000" else "111111"
    retry = client.post("/console/login/enrol", data={"code": wrong, "csrf_token": token})
    assert retry.status_code == 401 and secret.encode() not in retry.data
    # The key shown once still confirms the enrolment.
    done = client.post("/console/login/enrol", data={"code": code(secret), "csrf_token": token})
    assert done.status_code == 302 and done.headers["Location"].endswith("/console/")


def test_enrolment_is_refused_once_the_account_is_enrolled(app, client) -> None:
    """Two logins of an account with no second factor, both at the enrolment: the first to
    confirm a code enrols; the other can neither see a new key nor replace the first one."""
    user_id, _ = make_user(app, "handler", "mykola", enrolled=False)
    other = app.test_client()
    other.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    for browser in (client, other):
        browser.post(
            "/console/login",
            data={"username": "mykola", "password": PASSWORD, "csrf_token": csrf_token(browser)},
        )
    theirs = secret_on(other.get("/console/login/enrol").data)
    mine = secret_on(client.get("/console/login/enrol").data)
    assert mine and theirs and mine != theirs  # each login makes its own
    done = client.post(
        "/console/login/enrol", data={"code": code(mine), "csrf_token": csrf_token(client)}
    )
    assert done.status_code == 302
    page = other.get("/console/login/enrol")
    assert page.status_code == 409 and b"has an authenticator already" in page.data
    assert b'<code class="secret">' not in page.data
    late = other.post(
        "/console/login/enrol", data={"code": code(theirs), "csrf_token": csrf_token(other)}
    )
    assert late.status_code == 409
    assert other.get("/console/").status_code == 302  # not signed in
    with app.app_context():
        user = db_session().get(StaffUser, user_id)
        assert totp.open_secret(handles(app).protector, user) == mine


def test_the_first_login_after_create_changes_the_password_first(app, client) -> None:
    user_id, _ = make_user(app, "handler", "mykola", enrolled=False, must_change_password=True)
    token = csrf_token(client)
    first = client.post(
        "/console/login", data={"username": "mykola", "password": PASSWORD, "csrf_token": token}
    )
    assert first.headers["Location"].endswith("/console/login/password")
    # Nothing else before it: no enrolment key, no console page.
    assert client.get("/console/login/enrol").headers["Location"].endswith("/console/login")
    assert client.get("/console/").status_code == 302
    page = client.get("/console/login/password")
    assert page.status_code == 200 and b"set by someone else" in page.data
    same = client.post(
        "/console/login/password",
        data={"new_password": PASSWORD, "new_password2": PASSWORD, "csrf_token": token},
    )
    assert same.status_code == 400 and b"must differ" in same.data
    mismatch = client.post(
        "/console/login/password",
        data={"new_password": NEW_PASSWORD, "new_password2": NEW_PASSWORD + "x",
              "csrf_token": token},
    )  # fmt: skip
    assert mismatch.status_code == 400
    changed = client.post(
        "/console/login/password",
        data={"new_password": NEW_PASSWORD, "new_password2": NEW_PASSWORD, "csrf_token": token},
    )
    assert changed.headers["Location"].endswith("/console/login/enrol")
    with app.app_context():
        user = db_session().get(StaffUser, user_id)
        assert not user.must_change_password and verify_password(user.password_hash, NEW_PASSWORD)
    secret = secret_on(client.get("/console/login/enrol").data)
    done = client.post("/console/login/enrol", data={"code": code(secret), "csrf_token": token})
    assert done.status_code == 302 and done.headers["Location"].endswith("/console/")
    assert audit_actions(app)[-3:] == ["staff.password_change", "staff.totp_enrol", "login.success"]
    client.post("/console/logout", data={"csrf_token": csrf_token(client)})
    old = client.post(
        "/console/login",
        data={"username": "mykola", "password": PASSWORD, "csrf_token": csrf_token(client)},
    )
    assert old.status_code == 401


def test_an_enrolled_account_gives_its_code_before_changing_the_password(app, client) -> None:
    _, secret = make_user(app, "handler", "mykola", must_change_password=True)
    token = csrf_token(client)
    first = client.post(
        "/console/login", data={"username": "mykola", "password": PASSWORD, "csrf_token": token}
    )
    assert first.headers["Location"].endswith("/console/login/totp")
    assert client.get("/console/login/password").headers["Location"].endswith("/console/login")
    step = client.post("/console/login/totp", data={"code": code(secret), "csrf_token": token})
    assert step.headers["Location"].endswith("/console/login/password")
    done = client.post(
        "/console/login/password",
        data={"new_password": NEW_PASSWORD, "new_password2": NEW_PASSWORD, "csrf_token": token},
    )
    assert done.status_code == 302 and done.headers["Location"].endswith("/console/")
    assert client.get("/console/").status_code == 200


def test_a_reset_voids_a_pending_login(app, client) -> None:
    user_id, secret = make_user(app, "handler", "mykola")
    token = csrf_token(client)
    client.post(
        "/console/login", data={"username": "mykola", "password": PASSWORD, "csrf_token": token}
    )
    with app.app_context():
        db = db_session()
        reset_credentials(db, handles(app).protector, db.get(StaffUser, user_id))
        db.commit()
    late = client.post("/console/login/totp", data={"code": code(secret), "csrf_token": token})
    assert late.status_code == 302 and late.headers["Location"].endswith("/console/login")
    assert client.get("/console/").status_code == 302


def test_the_pending_login_is_on_the_server_not_in_the_signed_cookie(app, client) -> None:
    make_user(app, "handler", "mykola")
    token = csrf_token(client)
    first = client.post(
        "/console/login", data={"username": "mykola", "password": PASSWORD, "csrf_token": token}
    )
    assert first.status_code == 302
    with client.session_transaction() as signed:
        assert set(signed) == {"_csrf"}  # the CSRF token only: no account, no stage
    pending = client.get_cookie("hotline_login")
    assert pending is not None and pending.http_only and pending.same_site == "Strict"
    assert len(pending.value) >= 43  # 256 random bits


def test_when_every_hashing_slot_is_taken_the_login_answers_at_once(app, client) -> None:
    make_user(app, "handler", "mykola")
    svc = handles(app)
    gate = HashingGate(svc.redis, svc.settings.staff_max_password_hashes)
    token = csrf_token(client)
    with contextlib.ExitStack() as held:
        for _ in range(svc.settings.staff_max_password_hashes):
            held.enter_context(gate.slot())
        started = time.monotonic()
        busy = client.post(
            "/console/login", data={"username": "mykola", "password": PASSWORD, "csrf_token": token}
        )
        assert busy.status_code == 503 and busy.headers["Retry-After"] == "2"
        assert b"Try again in a few seconds" in busy.data
        assert time.monotonic() - started < 0.5
    assert audit_actions(app) == ["staff.create"]  # nothing checked, nothing audited
    allowed = client.post(
        "/console/login", data={"username": "mykola", "password": PASSWORD, "csrf_token": token}
    )
    assert allowed.status_code == 302  # and the busy answer was not charged to the throttle


def test_without_required_totp_an_unenrolled_user_signs_in_with_the_password(
    settings, app_factory
) -> None:
    lax = app_factory(settings.replace(staff_require_totp=False))
    lax.testing = True
    client = lax.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    make_user(lax, "handler", "dev", enrolled=False)
    response = client.post(
        "/console/login",
        data={"username": "dev", "password": PASSWORD, "csrf_token": csrf_token(client)},
    )
    assert response.status_code == 302 and response.headers["Location"].endswith("/console/")
    assert client.get("/console/").status_code == 200


def test_without_required_totp_the_first_login_still_changes_the_password(
    app, settings, app_factory
) -> None:  # (``app``: a clean database first)
    lax = app_factory(settings.replace(staff_require_totp=False))
    lax.testing = True
    client = lax.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    make_user(lax, "handler", "newcomer", enrolled=False, must_change_password=True)
    token = csrf_token(client)
    first = client.post(
        "/console/login", data={"username": "newcomer", "password": PASSWORD, "csrf_token": token}
    )
    assert first.headers["Location"].endswith("/console/login/password")
    assert client.get("/console/").status_code == 302
    done = client.post(
        "/console/login/password",
        data={"new_password": NEW_PASSWORD, "new_password2": NEW_PASSWORD, "csrf_token": token},
    )
    assert done.status_code == 302 and done.headers["Location"].endswith("/console/")
    assert client.get("/console/").status_code == 200


def test_a_disabled_account_cannot_sign_in(app, client) -> None:
    _, _secret = make_user(app, "supervisor", "gone", active=False)
    response = client.post(
        "/console/login",
        data={"username": "gone", "password": PASSWORD, "csrf_token": csrf_token(client)},
    )
    assert response.status_code == 401


@pytest.mark.parametrize(
    "target,expected",
    [
        ("/console/admin/users", "/console/admin/users"),
        ("https://evil.example/", "/console/"),
        ("//evil.example/x", "/console/"),
        ("/\\evil.example", "/console/"),
    ],
)
def test_after_login_only_local_pages(app, client, target, expected) -> None:
    _, secret = make_user(app, "admin", "root")
    token = csrf_token(client)
    client.post(
        "/console/login",
        data={"username": "root", "password": PASSWORD, "csrf_token": token, "next": target},
    )
    response = client.post("/console/login/totp", data={"code": code(secret), "csrf_token": token})
    assert response.headers["Location"] == expected


def test_anonymous_pages_redirect_to_login_with_next(client) -> None:
    response = client.get("/console/admin/users")
    assert response.status_code == 302
    assert response.headers["Location"] == "/console/login?next=/console/admin/users"
