"""Changing one's own password: the current one again (throttled like a login), the policy, the
other sessions ended, this one renewed, audited without the password."""

from __future__ import annotations

import json

import pytest
import redis
from sqlalchemy import select

from db import db_session
from staff.models import AuditEvent, StaffSession, StaffUser
from staff.passwords import verify_password
from staff.ratelimit import PAIR, LoginLimiter
from staff.sessions import cookie_name
from tests.staff.support import PASSWORD, csrf_from, csrf_token, make_user, sign_in
from tests.support import handles

NEW = "amber-compass-meadow-17"
PAGE = "/console/account/password"


def change(client, current: str = PASSWORD, new: str = NEW, again: str | None = None, **extra):
    data = {"current_password": current, "new_password": new,
            "new_password2": new if again is None else again, **extra}  # fmt: skip
    data.setdefault("csrf_token", csrf_token(client))
    return client.post(PAGE, data=data)


def password_hash(app, user_id: int) -> str:
    with app.app_context():
        return db_session().get(StaffUser, user_id).password_hash


def sessions_of(app, user_id: int) -> list[StaffSession]:
    with app.app_context():
        query = select(StaffSession).where(StaffSession.staff_user_id == user_id)
        return list(db_session().scalars(query.order_by(StaffSession.id)))


def audits(app, action: str) -> list[AuditEvent]:
    with app.app_context():
        query = select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        return list(db_session().scalars(query))


def staff_cookie(app, client) -> str | None:
    cookie = client.get_cookie(cookie_name(handles(app).settings))
    return cookie.value if cookie else None


@pytest.fixture
def olena(app, client) -> int:
    user_id, _ = make_user(app, "handler", "olena")
    sign_in(client, app, user_id)
    return user_id


def test_the_page_is_linked_for_every_role_and_has_a_csrf_field(app, client) -> None:
    for role in ("handler", "supervisor", "auditor", "admin"):
        user_id, _ = make_user(app, role, f"{role}-me")
        sign_in(client, app, user_id)
        assert f'href="{PAGE}"'.encode() in client.get("/console/").data, role
        page = client.get(PAGE)
        assert page.status_code == 200 and b"Change password" in page.data
        assert csrf_from(page.data)
        assert b"<script" not in page.data and b" style=" not in page.data


def test_a_change_ends_the_other_sessions_renews_this_one_and_is_audited(app, client, olena):
    other_browser = app.test_client()
    sign_in(other_browser, app, olena)  # e.g. a phone left signed in
    old_token = staff_cookie(app, client)
    before = sessions_of(app, olena)
    old_csrf = csrf_token(client)

    response = change(client)
    assert response.status_code == 302 and response.headers["Location"].endswith("/console/")
    home = client.get("/console/")
    assert home.status_code == 200 and b"Your password is changed." in home.data

    with app.app_context():
        user = db_session().get(StaffUser, olena)
        assert verify_password(user.password_hash, NEW)
        assert user.password_hash.startswith("$argon2id$")
        assert not verify_password(user.password_hash, PASSWORD)
    ended = {row.id: row for row in sessions_of(app, olena)}
    mine, others = before
    assert ended[mine.id].end_reason == "renewed"
    assert ended[others.id].end_reason == "password"
    (renewed,) = [row for row in ended.values() if row.ended_at is None]
    assert renewed.created_at == mine.created_at  # the absolute timeout still counts from login
    # The new token works; the old one and the other browser's are over.
    assert staff_cookie(app, client) not in (None, old_token)
    assert csrf_token(client) != old_csrf
    assert other_browser.get("/console/").status_code == 302
    client.set_cookie(cookie_name(handles(app).settings), old_token)
    assert client.get("/console/").status_code == 302

    (row,) = audits(app, "staff.password_change")
    assert (row.staff_user_id, row.object_type, row.object_id) == (olena, "staff_user", str(olena))
    assert row.ip == "127.0.0.1" and row.details == {"sessions_ended": 1}
    with app.app_context():
        everything = json.dumps(
            [[a.action, a.details] for a in db_session().scalars(select(AuditEvent))]
        )
    assert NEW not in everything and PASSWORD not in everything


def test_a_wrong_current_password_changes_nothing_and_is_audited(app, client, olena) -> None:
    before = password_hash(app, olena)
    response = change(client, current="not-my-password-at-all")
    assert response.status_code == 400
    assert b"Your current password is not right." in response.data
    assert password_hash(app, olena) == before
    assert all(row.ended_at is None for row in sessions_of(app, olena))
    assert client.get("/console/").status_code == 200  # still signed in
    (failure,) = audits(app, "login.failure")
    assert failure.staff_user_id == olena
    assert failure.details == {"step": "password_change", "reason": "password"}
    assert audits(app, "staff.password_change") == []


def test_wrong_current_passwords_are_throttled_like_logins(app, client, olena) -> None:
    statuses = [
        change(client, current=f"guess-{n}-xxxxxxx").status_code for n in range(PAIR.free + 1)
    ]
    assert statuses == [400] * PAIR.free + [429]
    response = change(client)  # even the right one waits now …
    assert response.status_code == 429 and b"Too many attempts." in response.data
    assert verify_password(password_hash(app, olena), PASSWORD)
    # … and so does the login page, from the same address: it is one throttle.
    anonymous = app.test_client()
    login = anonymous.post(
        "/console/login",
        data={"username": "olena", "password": PASSWORD, "csrf_token": csrf_token(anonymous)},
    )
    assert login.status_code == 429


def test_a_right_current_password_is_not_counted(app, client, olena) -> None:
    for _ in range(PAIR.free + 2):  # mistakes in the new password only
        assert change(client, again="something-else-entirely").status_code == 400
    assert change(client).status_code == 302


@pytest.mark.parametrize(
    "new,again,message",
    [
        (NEW, "amber-compass-meadow-18", b"The two new passwords are not the same."),
        ("short-pw", None, b"The new password needs at least 12 characters."),
        ("x" * 129 + "yz!", None, b"The new password may have at most 128 characters."),
        ("password1234", None, b"That password is too common or too simple."),
        ("olena-harbour-2026", None, b"The new password must not contain your username."),
        (PASSWORD, None, b"The new password must differ from the current one."),
    ],
    ids=["mismatch", "short", "long", "common", "username", "unchanged"],
)
def test_a_new_password_that_breaks_a_rule_is_refused(app, client, olena, new, again, message):
    before = password_hash(app, olena)
    response = change(client, new=new, again=again)
    assert response.status_code == 400
    assert message in response.data
    assert password_hash(app, olena) == before
    assert all(row.ended_at is None for row in sessions_of(app, olena))
    assert audits(app, "staff.password_change") == []


def test_the_form_needs_the_csrf_token(app, client, olena) -> None:
    before = password_hash(app, olena)
    csrf_token(client)  # the browser has one; the forged form does not carry it
    assert change(client, csrf_token="").status_code == 400
    assert change(client, csrf_token="forged").status_code == 400
    assert (
        client.post(
            PAGE, data={"current_password": PASSWORD, "new_password": NEW, "new_password2": NEW,
                        "csrf_token": csrf_token(client)},
            headers={"Sec-Fetch-Site": "cross-site"},
        ).status_code
        == 400
    )  # fmt: skip
    assert password_hash(app, olena) == before


def test_anonymous_visitors_are_sent_to_the_login(app, client) -> None:
    response = client.get(PAGE)
    assert response.status_code == 302
    assert response.headers["Location"] == f"/console/login?next={PAGE}"
    assert change(client).status_code == 401


def test_the_page_in_ukrainian(app) -> None:
    browser = app.test_client()
    user_id, _ = make_user(app, "auditor", "iryna", language="uk")
    sign_in(browser, app, user_id)
    page = browser.get(PAGE)
    assert "Змінити пароль".encode() in page.data and "Поточний пароль".encode() in page.data
    wrong = change(browser, current="not-my-password-at-all")
    assert "Поточний пароль неправильний.".encode() in wrong.data


def test_with_redis_down_the_password_is_not_changed(app, client, olena, monkeypatch) -> None:
    def down(*_args, **_kwargs):
        raise redis.ConnectionError("down")

    monkeypatch.setattr(LoginLimiter, "charge", down)
    before = password_hash(app, olena)
    response = change(client)
    assert response.status_code == 503 and b"not possible right now" in response.data
    assert password_hash(app, olena) == before
