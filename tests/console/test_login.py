"""Logging in: password, then the TOTP code (or the enrolment), with pyotp computing codes."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from db import db_session
from staff.models import AuditEvent, StaffSession, StaffUser
from staff.sessions import cookie_name
from tests.staff.support import PASSWORD, code, csrf_from, csrf_token, log_in, make_user
from tests.support import handles


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


def test_first_login_enrols_the_authenticator(app, client) -> None:
    user_id, secret = make_user(app, "handler", "mykola", enrolled=False)
    token = csrf_token(client)
    first = client.post(
        "/console/login", data={"username": "mykola", "password": PASSWORD, "csrf_token": token}
    )
    assert first.headers["Location"].endswith("/console/login/enrol")
    page = client.get("/console/login/enrol")
    assert page.status_code == 200
    assert b'src="data:image/svg+xml' in page.data  # the QR code, rendered on the server
    assert secret.encode() in page.data
    assert b"<script" not in page.data and b"style=" not in page.data
    done = client.post(
        "/console/login/enrol", data={"code": code(secret), "csrf_token": csrf_from(page.data)}
    )
    assert done.status_code == 302 and done.headers["Location"].endswith("/console/")
    with app.app_context():
        assert db_session().get(StaffUser, user_id).totp_enabled
    assert audit_actions(app)[-2:] == ["staff.totp_enrol", "login.success"]


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
