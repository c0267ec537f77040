"""Sign a supervisor in through the console's real login pages (password, then TOTP), for
``bench/console.py``: the timed requests then carry a real session."""

from __future__ import annotations

import re
import secrets

import pyotp

from db import db_session
from services import services
from staff import totp
from staff.accounts import create_user
from staff.models import StaffUser

_CSRF = re.compile(rb'name="csrf_token" value="([^"]+)"')


def _csrf(html: bytes) -> str:
    found = _CSRF.search(html)
    if not found:
        raise SystemExit("the login page has no CSRF field")
    return found.group(1).decode()


def login_supervisor(app, client) -> int:
    """Create a supervisor with an enrolled TOTP and sign them in; their id."""
    password = secrets.token_urlsafe(18)
    with app.app_context():
        db = db_session()
        enrolment = create_user(
            db, services().protector, username="bench-supervisor", display_name="Bench",
            role="supervisor", password=password, language="en",
        )  # fmt: skip
        user = db.get(StaffUser, enrolment.user_id)
        user.must_change_password = False  # as after the first login
        secret = totp.new_secret()
        totp.seal_secret(services().protector, user, secret)
        user.totp_enabled = True
        db.commit()
        user_id = user.id
    form = client.get("/console/login")
    first = client.post(
        "/console/login",
        data={"username": "bench-supervisor", "password": password, "csrf_token": _csrf(form.data)},
    )
    if first.status_code != 302:
        raise SystemExit(f"login: HTTP {first.status_code}")
    page = client.get("/console/login/totp")
    done = client.post(
        "/console/login/totp",
        data={"code": pyotp.TOTP(secret).now(), "csrf_token": _csrf(page.data)},
    )
    if done.status_code != 302:
        raise SystemExit(f"login (code): HTTP {done.status_code}")
    return user_id
