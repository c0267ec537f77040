"""Server-side sessions: a new one at each login, idle and absolute timeouts, logout."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from db import db_session
from staff.models import StaffSession
from staff.sessions import cookie_name
from tests.staff.support import csrf_token, log_in, make_user, sign_in
from tests.support import handles


def sessions(app) -> list[StaffSession]:
    with app.app_context():
        return list(db_session().scalars(select(StaffSession).order_by(StaffSession.id)))


def staff_cookie(app, client) -> str | None:
    cookie = client.get_cookie(cookie_name(handles(app).settings))
    return cookie.value if cookie else None


def age_session(app, session_id: int, *, created: float = 0, idle: float = 0) -> None:
    with app.app_context():
        db = db_session()
        row = db.get(StaffSession, session_id)
        row.created_at -= dt.timedelta(seconds=created)
        row.last_seen_at -= dt.timedelta(seconds=idle)
        db.commit()


def test_login_makes_a_new_session_and_ends_the_old_one(app, client) -> None:
    user_id, secret = make_user(app, "supervisor", "olena")
    planted = sign_in(client, app, user_id)  # e.g. a session id fixed by an attacker
    log_in(client, "olena", secret)
    assert staff_cookie(app, client) not in (None, planted)
    old, new = sessions(app)
    assert old.ended_at is not None and old.end_reason == "renewed"
    assert new.ended_at is None
    assert client.get("/console/").status_code == 200


def test_the_idle_timeout_ends_the_session(app, client, settings) -> None:
    user_id, _ = make_user(app, "supervisor", "olena")
    sign_in(client, app, user_id)
    assert client.get("/console/").status_code == 200
    (row,) = sessions(app)
    age_session(app, row.id, idle=settings.staff_idle_timeout_s - 60)
    assert client.get("/console/").status_code == 200  # activity within the timeout …
    age_session(app, row.id, idle=settings.staff_idle_timeout_s + 1)
    response = client.get("/console/")  # … then none for longer than it
    assert response.status_code == 302 and "/console/login" in response.headers["Location"]
    (row,) = sessions(app)
    assert row.end_reason == "idle"


def test_activity_is_noted(app, client) -> None:
    user_id, _ = make_user(app, "supervisor", "olena")
    sign_in(client, app, user_id)
    (row,) = sessions(app)
    age_session(app, row.id, idle=120)
    client.get("/console/")
    (after,) = sessions(app)
    assert after.last_seen_at > row.last_seen_at - dt.timedelta(seconds=120)


def test_the_absolute_timeout_ends_even_an_active_session(app, client, settings) -> None:
    user_id, _ = make_user(app, "supervisor", "olena")
    sign_in(client, app, user_id)
    (row,) = sessions(app)
    age_session(app, row.id, created=settings.staff_absolute_timeout_s + 1)
    assert client.get("/console/").status_code == 302
    (row,) = sessions(app)
    assert row.end_reason == "absolute"


def test_logout_ends_the_session_on_the_server(app, client) -> None:
    user_id, _ = make_user(app, "supervisor", "olena")
    token = sign_in(client, app, user_id)
    response = client.post("/console/logout", data={"csrf_token": csrf_token(client)})
    assert response.status_code == 302
    assert staff_cookie(app, client) is None
    (row,) = sessions(app)
    assert row.end_reason == "logout"
    # The old cookie, replayed (stolen before the logout), opens nothing.
    client.set_cookie(cookie_name(handles(app).settings), token)
    assert client.get("/console/").status_code == 302


def test_disabling_an_account_ends_its_sessions_at_once(app, client) -> None:
    user_id, _ = make_user(app, "supervisor", "olena")
    sign_in(client, app, user_id)
    from staff.accounts import set_active
    from staff.models import StaffUser

    make_user(app, "admin", "root")  # someone must remain admin; not needed, but realistic
    with app.app_context():
        db = db_session()
        set_active(db, db.get(StaffUser, user_id), False)
        db.commit()
    assert client.get("/console/").status_code == 302
    (row,) = sessions(app)
    assert row.end_reason == "disabled"
