"""Helpers for the staff and console tests: accounts, codes, signing in (fast and for real)."""

from __future__ import annotations

import re
import secrets
import time

import pyotp
from flask import Flask
from flask.testing import FlaskClient

from db import db_session
from services import services
from staff import totp
from staff.accounts import create_user
from staff.models import StaffUser
from staff.sessions import cookie_name, start_session

PASSWORD = "violet-harbour-lantern-42"
_CSRF = re.compile(rb'name="csrf_token" value="([^"]+)"')


def make_user(
    app: Flask,
    role: str,
    username: str | None = None,
    *,
    enrolled: bool = True,
    handler_id: int | None = None,
    language: str = "en",
    active: bool = True,
    must_change_password: bool = False,
) -> tuple[int, str | None]:
    """Create an account with ``PASSWORD``; returns (id, TOTP secret).

    By default the account is as after its first login: its own password (no change asked for)
    and an enrolled authenticator whose secret is returned. ``enrolled=False``: no second factor
    yet (the secret is None: a login's enrolment page makes it). ``must_change_password``: as
    ``flask staff create`` leaves it, the next login must set a new password first.
    """
    with app.app_context():
        db = db_session()
        enrolment = create_user(
            db, services().protector, username=username or f"{role}-user", display_name=role.title(),
            role=role, password=PASSWORD, language=language, handler_id=handler_id,
        )  # fmt: skip
        user = db.get(StaffUser, enrolment.user_id)
        assert user is not None
        user.must_change_password = must_change_password
        secret = None
        if enrolled:
            secret = totp.new_secret()
            totp.seal_secret(services().protector, user, secret)
            user.totp_enabled = True
        user.active = active
        db.commit()
        return user.id, secret


def code(secret: str, steps_ahead: int = 0) -> str:
    """The TOTP code of the current step (or the next ones: each code is good only once)."""
    return pyotp.TOTP(secret).at(time.time() + 30 * steps_ahead)


def sign_in(client: FlaskClient, app: Flask, user_id: int) -> str:
    """A session made directly (no login pages): the cookie is set on ``client``."""
    with app.app_context():
        db = db_session()
        user = db.get(StaffUser, user_id)
        assert user is not None
        token, _ = start_session(db, user, "127.0.0.1")
        db.commit()
        name = cookie_name(services().settings)
    client.set_cookie(name, token)
    return token


def csrf_from(html: bytes) -> str:
    found = _CSRF.search(html)
    assert found, "no CSRF field in the page"
    return found.group(1).decode()


def csrf_token(client: FlaskClient) -> str:
    """This client's CSRF token (the one its forms would carry), made if it has none yet."""
    with client.session_transaction() as browser_session:
        if not browser_session.get("_csrf"):
            browser_session["_csrf"] = secrets.token_urlsafe(32)
        return browser_session["_csrf"]


def log_in(client: FlaskClient, username: str, secret: str, *, steps_ahead: int = 0):
    """The real login: the password page, then the code page. Returns the last response."""
    token = csrf_token(client)
    first = client.post(
        "/console/login", data={"username": username, "password": PASSWORD, "csrf_token": token}
    )
    assert first.status_code == 302, first.data
    assert first.headers["Location"].endswith("/console/login/totp")
    page = client.get("/console/login/totp")
    return client.post(
        "/console/login/totp",
        data={"code": code(secret, steps_ahead), "csrf_token": csrf_from(page.data)},
    )
