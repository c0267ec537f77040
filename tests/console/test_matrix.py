"""Every console route × every role (and anonymous): allowed, or refused — deny by default.

``EXPECTED`` must name every endpoint under ``/console`` (a new page without an entry fails
``test_every_console_endpoint_is_in_the_table``). Values: ``PUBLIC`` (anyone), ``LOGIN`` (any
signed-in role) or the set of roles allowed. Anonymous requests to a non-public page are sent
to the login page (GET) or get 401 (other methods); a role not allowed gets 403.
"""

from __future__ import annotations

import pytest
from flask import Flask
from werkzeug.routing import Rule

from staff.models import ROLES
from tests.staff.support import csrf_token, make_user, sign_in

PUBLIC, LOGIN = "public", "login"
ALL = frozenset(ROLES)

EXPECTED: dict[str, str | frozenset[str]] = {
    "console.login": PUBLIC,
    "console.login_post": PUBLIC,
    "console.login_totp": PUBLIC,
    "console.login_totp_post": PUBLIC,
    "console.login_password": PUBLIC,
    "console.login_password_post": PUBLIC,
    "console.login_enrol": PUBLIC,
    "console.login_enrol_post": PUBLIC,
    "console.logout": PUBLIC,
    "console.home": LOGIN,
    "console.account_password": LOGIN,
    "console.account_password_post": LOGIN,
    "console.admin_users": frozenset({"admin"}),
    "console.admin_user_new": frozenset({"admin"}),
    "console.admin_user_create": frozenset({"admin"}),
    "console.admin_user_role": frozenset({"admin"}),
    "console.admin_user_active": frozenset({"admin"}),
    "console.admin_retention": frozenset({"admin"}),
    "console.admin_retention_post": frozenset({"admin"}),
    "console.audit_log": frozenset({"auditor"}),
    "console.call_log": ALL,
    "console.call_log_csv": frozenset({"supervisor", "auditor", "admin"}),
    "console.inquiry": ALL,
    "console.inquiry_note": frozenset({"handler", "supervisor", "admin"}),
    "console.inquiry_outcome": frozenset({"handler", "supervisor", "admin"}),
    "console.recording_audio": ALL,
    "console.recording_retry": frozenset({"supervisor", "admin"}),
    "console.duty": frozenset({"handler"}),
    "console.duty_live": frozenset({"handler"}),
    "console.duty_live_presence": frozenset({"handler"}),
    "console.duty_wrap_up_more": frozenset({"handler"}),
    "console.duty_presence": frozenset({"handler"}),
    "console.duty_note": frozenset({"handler"}),
    "console.duty_outcome": frozenset({"handler"}),
    "console.board_page": frozenset({"supervisor", "admin"}),
    "console.board_live": frozenset({"supervisor", "admin"}),
    "console.board_presence": frozenset({"supervisor", "admin"}),
    "console.dashboard": frozenset({"supervisor", "auditor", "admin"}),
    "console.blocklist_page": frozenset({"supervisor", "admin"}),
    "console.blocklist_add": frozenset({"supervisor", "admin"}),
    "console.blocklist_remove": frozenset({"supervisor", "admin"}),
}
#: Endpoints served without a guard on purpose.
UNGUARDED = {"console.static"}


def console_rules(app: Flask) -> list[Rule]:
    rules = [
        rule
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/console") and rule.endpoint not in UNGUARDED
    ]
    return sorted(rules, key=lambda rule: (rule.endpoint == "console.logout", rule.endpoint))


def build_path(app: Flask, rule: Rule, target_id: int) -> str:
    values = {name: target_id for name in rule.arguments}
    with app.test_request_context():
        adapter = app.url_map.bind("localhost")
        return adapter.build(rule.endpoint, values)


def methods_of(rule: Rule) -> list[str]:
    return sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})


def test_every_console_endpoint_is_in_the_table(app) -> None:
    endpoints = {rule.endpoint for rule in console_rules(app)}
    assert endpoints == set(EXPECTED), (
        f"missing from EXPECTED: {sorted(endpoints - set(EXPECTED))}; "
        f"stale in EXPECTED: {sorted(set(EXPECTED) - endpoints)}"
    )


def test_every_console_view_carries_a_guard_mark(app) -> None:
    from staff.authz import ACCESS_ATTR

    for rule in console_rules(app):
        mark = getattr(app.view_functions[rule.endpoint], ACCESS_ATTR, None)
        expected = EXPECTED.get(rule.endpoint)
        assert mark == expected, f"{rule.endpoint}: guarded as {mark!r}, table says {expected!r}"


@pytest.mark.parametrize("role", [None, *ROLES], ids=lambda role: role or "anonymous")
def test_role_route_matrix(app, client, role) -> None:
    target_id, _ = make_user(app, "handler", "target")  # the object of /admin/users/<id>/…
    user_id = make_user(app, role, f"{role}-me")[0] if role else None
    checked = 0
    for rule in console_rules(app):
        allowed = EXPECTED[rule.endpoint]
        path = build_path(app, rule, target_id)
        for method in methods_of(rule):
            if user_id is not None:
                sign_in(client, app, user_id)  # afresh each time: logout is among the routes
            data = {"csrf_token": csrf_token(client)} if method != "GET" else None
            response = client.open(path, method=method, data=data)
            where = (
                f"{role or 'anonymous'} {method} {path} ({rule.endpoint}) -> {response.status_code}"
            )
            if allowed == PUBLIC:  # (a failed login is a 401 of its own: not a refusal)
                assert response.status_code != 403 and response.status_code < 500, where
            elif role is None:
                if method == "GET":
                    assert response.status_code == 302, where
                    assert response.headers["Location"].startswith("/console/login"), where
                else:
                    assert response.status_code == 401, where
            elif allowed == LOGIN or role in allowed:
                assert response.status_code not in (401, 403), where
                assert not response.headers.get("Location", "").startswith("/console/login"), where
                assert response.status_code < 500, where
            else:
                assert response.status_code == 403, where
            checked += 1
    assert checked >= len(EXPECTED)


def test_an_unmarked_console_view_is_refused(app, client) -> None:
    """Deny by default: a view registered without a guard answers 403 to everyone."""
    from console.blueprint import bp

    def forgotten() -> str:
        return "open"

    app.add_url_rule("/console/forgotten", "console.forgotten", forgotten)
    user_id, _ = make_user(app, "admin", "root")
    assert client.get("/console/forgotten").status_code == 403
    sign_in(client, app, user_id)
    assert client.get("/console/forgotten").status_code == 403
    assert bp.name == "console"
