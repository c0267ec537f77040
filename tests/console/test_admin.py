"""Admin pages: list, create, change roles, disable — each change audited."""

from __future__ import annotations

import re

from sqlalchemy import select

from db import db_session
from staff.models import AuditEvent, StaffUser
from staff.passwords import verify_password
from tests.staff.support import csrf_token, make_user, sign_in


def audit_rows(app) -> list[tuple]:
    with app.app_context():
        rows = db_session().scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
        return [(e.staff_user_id, e.action, e.object_id, e.details) for e in rows]


def as_admin(app, client) -> int:
    admin_id, _ = make_user(app, "admin", "root")
    sign_in(client, app, admin_id)
    return admin_id


def test_the_list_shows_every_account(app, client) -> None:
    as_admin(app, client)
    make_user(app, "handler", "olena")
    page = client.get("/console/admin/users")
    assert page.status_code == 200
    assert b"root" in page.data and b"olena" in page.data


def test_create_shows_the_generated_password_once_and_audits(app, client) -> None:
    admin_id = as_admin(app, client)
    assert client.get("/console/admin/users/new").status_code == 200
    response = client.post(
        "/console/admin/users",
        data={"username": "Olena", "display_name": "Olena K", "role": "handler", "language": "uk",
              "csrf_token": csrf_token(client)},
    )  # fmt: skip
    assert response.status_code == 200
    password = re.search(rb'<code class="secret">([^<]+)</code>', response.data).group(1).decode()
    assert b"otpauth" not in response.data  # the TOTP secret is for her eyes only, at first login
    with app.app_context():
        user = db_session().scalar(select(StaffUser).where(StaffUser.username == "olena"))
        assert verify_password(user.password_hash, password)
        assert (user.role, user.language, user.totp_enabled) == ("handler", "uk", False)
    assert audit_rows(app)[-1] == (
        admin_id,
        "staff.create",
        str(user.id),
        {"role": "handler", "handler_id": None},
    )
    assert password.encode() not in client.get("/console/admin/users").data


def test_create_with_bad_input_says_why(app, client) -> None:
    as_admin(app, client)
    response = client.post(
        "/console/admin/users",
        data={
            "username": "root",
            "display_name": "Dup",
            "role": "handler",
            "csrf_token": csrf_token(client),
        },
    )
    assert response.status_code == 400 and b"taken" in response.data
    response = client.post(
        "/console/admin/users",
        data={
            "username": "x y",
            "display_name": "Bad",
            "role": "king",
            "csrf_token": csrf_token(client),
        },
    )
    assert response.status_code == 400


def test_role_change_and_disable_are_audited(app, client) -> None:
    admin_id = as_admin(app, client)
    olena_id, _ = make_user(app, "handler", "olena")
    token = csrf_token(client)
    assert (
        client.post(
            f"/console/admin/users/{olena_id}/role",
            data={"role": "supervisor", "csrf_token": token},
        ).status_code
        == 302
    )
    assert (
        client.post(
            f"/console/admin/users/{olena_id}/active", data={"active": "0", "csrf_token": token}
        ).status_code
        == 302
    )
    with app.app_context():
        user = db_session().get(StaffUser, olena_id)
        assert (user.role, user.active) == ("supervisor", False)
    assert audit_rows(app)[-2:] == [
        (admin_id, "staff.role", str(olena_id), {"old": "handler", "new": "supervisor"}),
        (admin_id, "staff.disable", str(olena_id), {}),
    ]
    assert (
        client.post(
            f"/console/admin/users/{olena_id}/active", data={"active": "1", "csrf_token": token}
        ).status_code
        == 302
    )
    assert audit_rows(app)[-1][1] == "staff.enable"


def test_an_admin_cannot_change_their_own_role_or_access(app, client) -> None:
    admin_id = as_admin(app, client)
    token = csrf_token(client)
    assert (
        client.post(
            f"/console/admin/users/{admin_id}/role", data={"role": "handler", "csrf_token": token}
        ).status_code
        == 409
    )
    assert (
        client.post(
            f"/console/admin/users/{admin_id}/active", data={"active": "0", "csrf_token": token}
        ).status_code
        == 409
    )
    assert (
        client.post(
            "/console/admin/users/999999/role", data={"role": "handler", "csrf_token": token}
        ).status_code
        == 404
    )


def test_a_bad_role_is_refused(app, client) -> None:
    as_admin(app, client)
    olena_id, _ = make_user(app, "handler", "olena")
    client.post(
        f"/console/admin/users/{olena_id}/role",
        data={"role": "superuser", "csrf_token": csrf_token(client)},
    )
    with app.app_context():
        assert db_session().get(StaffUser, olena_id).role == "handler"
