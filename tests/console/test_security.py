"""Headers, CSRF, no state change on GET, generic error pages, cookies."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from console.security import CSP
from db import db_session
from staff.models import StaffUser
from tests.console.test_matrix import build_path, console_rules, methods_of
from tests.staff.support import PASSWORD, code, csrf_from, csrf_token, make_user, sign_in


@pytest.mark.parametrize("path", ["/console/login", "/console/", "/console/nope", "/healthz"])
def test_security_headers_on_every_response(client, path) -> None:
    response = client.get(path)
    headers = response.headers
    assert headers["Content-Security-Policy"] == CSP
    assert "script-src 'self'" in CSP and "frame-ancestors 'none'" in CSP and "unsafe" not in CSP
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert "Strict-Transport-Security" not in headers  # only in production
    if path.startswith("/console"):
        assert headers["Cache-Control"] == "no-store"


def test_static_css_is_served_and_cacheable(client) -> None:
    response = client.get("/console/static/console.css")
    assert response.status_code == 200 and response.mimetype == "text/css"
    assert response.headers.get("Cache-Control") != "no-store"
    response.close()


def test_hsts_and_secure_cookies_in_production(settings, app_factory) -> None:
    prod = app_factory(settings.replace(env="production"))
    prod.testing = True
    client = prod.test_client()
    response = client.get("/console/login", base_url="https://hotline.example.org")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    _user_id, secret = make_user(prod, "supervisor", "olena")
    token = csrf_from(response.data)
    client.post(
        "/console/login", base_url="https://hotline.example.org",
        data={"username": "olena", "password": PASSWORD, "csrf_token": token},
    )  # fmt: skip
    done = client.post(
        "/console/login/totp", base_url="https://hotline.example.org",
        data={"code": code(secret), "csrf_token": token},
    )  # fmt: skip
    cookies = done.headers.getlist("Set-Cookie")
    staff_cookie = next(c for c in cookies if c.startswith("__Host-hotline_staff="))
    for attribute in ("Secure", "HttpOnly", "SameSite=Lax", "Path=/"):
        assert attribute in staff_cookie
    assert "Domain" not in staff_cookie


def test_pages_have_no_inline_script_or_style(app, client) -> None:
    user_id, _ = make_user(app, "admin", "root")
    sign_in(client, app, user_id)
    for path in ("/console/", "/console/admin/users", "/console/admin/users/new", "/console/login"):
        body = client.get(path, follow_redirects=True).data
        assert b"<script" not in body and b"<style" not in body and b" style=" not in body, path


@pytest.mark.parametrize(
    "path,data",
    [
        ("/console/login", {"username": "root", "password": PASSWORD}),
        ("/console/admin/users", {"username": "mallory", "display_name": "M", "role": "admin"}),
        ("/console/logout", {}),
    ],
)
def test_a_post_without_the_csrf_token_is_refused(app, client, path, data) -> None:
    user_id, _ = make_user(app, "admin", "root")
    sign_in(client, app, user_id)
    csrf_token(client)  # the browser has a token; the forged form does not carry it
    assert client.post(path, data=data).status_code == 400
    assert client.post(path, data={**data, "csrf_token": "forged"}).status_code == 400
    assert client.get("/console/").status_code == 200  # still signed in (logout refused)
    with app.app_context():
        assert (
            db_session().scalar(select(StaffUser.id).where(StaffUser.username == "mallory")) is None
        )


def test_a_cross_site_post_is_refused_even_with_the_token(app, client) -> None:
    user_id, _ = make_user(app, "admin", "root")
    sign_in(client, app, user_id)
    data = {"csrf_token": csrf_token(client)}
    response = client.post("/console/logout", data=data, headers={"Sec-Fetch-Site": "cross-site"})
    assert response.status_code == 400
    assert (
        client.post(
            "/console/logout", data=data, headers={"Sec-Fetch-Site": "same-origin"}
        ).status_code
        == 302
    )


def test_state_changing_routes_take_no_get(app) -> None:
    for rule in console_rules(app):
        if "POST" in methods_of(rule):
            assert "GET" not in methods_of(rule), rule.endpoint


def _snapshot(app) -> dict[str, list]:
    """Every staff table's rows (but the audit log and the sessions' activity mark)."""
    with app.app_context():
        db = db_session()
        users = db.execute(text("SELECT * FROM staff_user ORDER BY id")).all()
        sessions = db.execute(
            text("SELECT id, staff_user_id, ended_at FROM staff_session ORDER BY id")
        ).all()
        return {"users": [tuple(r) for r in users], "sessions": [tuple(r) for r in sessions]}


def test_get_requests_change_nothing(app, client) -> None:
    target_id, _ = make_user(app, "handler", "target")
    for role in ("admin", "auditor", "supervisor", "handler"):
        user_id, _ = make_user(app, role, f"{role}-me")
        sign_in(client, app, user_id)
        before = _snapshot(app)
        for rule in console_rules(app):
            if "GET" in methods_of(rule):
                client.get(build_path(app, rule, target_id))
        assert _snapshot(app) == before, role


def test_errors_are_generic_pages(app, client) -> None:
    def boom() -> str:
        raise RuntimeError("secret detail +380501234567")

    app.add_url_rule("/console/boom", "boom", boom)
    response = client.get("/console/boom")
    assert response.status_code == 500
    assert b"Something went wrong" in response.data
    assert b"secret detail" not in response.data and b"Traceback" not in response.data
    assert response.headers["Cache-Control"] == "no-store"
    missing = client.get("/console/no/such/page")
    assert missing.status_code == 404 and b"There is no such page." in missing.data


def test_a_header_the_view_set_itself_is_kept(app) -> None:
    stricter = "default-src 'none'"

    def own_policy():
        return "ok", 200, {"Content-Security-Policy": stricter, "X-Frame-Options": "SAMEORIGIN"}

    app.add_url_rule("/test-own-policy", "test_own_policy", own_policy)
    headers = app.test_client().get("/test-own-policy").headers
    assert headers.getlist("Content-Security-Policy") == [stricter]
    assert headers.getlist("X-Frame-Options") == ["SAMEORIGIN"]
    assert headers["X-Content-Type-Options"] == "nosniff"  # the others are added
    assert headers["Referrer-Policy"] == "no-referrer"
