"""TRUSTED_PROXIES: behind our reverse proxies the login throttle, the sessions and the audit log
see the client's address from X-Forwarded-For; without them, a forged header changes nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from werkzeug.middleware.proxy_fix import ProxyFix

from db import db_session
from settings import SettingsError, load_settings
from staff.models import AuditEvent, StaffSession
from staff.ratelimit import PAIR
from tests.staff.support import PASSWORD, code, csrf_token, make_user

PROXY = "10.0.0.5"  # the TCP peer: our reverse proxy


def post_login(client, password: str, forwarded: str | None, username: str = "olena"):
    headers = {"X-Forwarded-For": forwarded} if forwarded is not None else {}
    return client.post(
        "/console/login",
        data={"username": username, "password": password, "csrf_token": csrf_token(client)},
        headers=headers, environ_base={"REMOTE_ADDR": PROXY},
    )  # fmt: skip


def failure_addresses(app) -> list[str | None]:
    with app.app_context():
        query = select(AuditEvent.ip).where(AuditEvent.action == "login.failure")
        return list(db_session().scalars(query.order_by(AuditEvent.id)))


@pytest.fixture
def proxied(app, settings, app_factory):
    """The app behind one trusted proxy (same database and Redis, cleaned by ``app``)."""
    behind = app_factory(settings.replace(trusted_proxies=1))
    behind.testing = True
    return behind


def english_client(flask_app):
    browser = flask_app.test_client()
    browser.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    return browser


def test_without_trusted_proxies_a_forged_forwarded_for_changes_nothing(app, client) -> None:
    make_user(app, "supervisor", "olena")
    statuses = [
        post_login(client, f"guess-{n}-xxxxxxx", f"192.0.2.{n + 1}").status_code
        for n in range(PAIR.free + 1)
    ]
    # One address (the peer's) for every guess: the pair counter stops the sixth.
    assert statuses == [401] * PAIR.free + [429]
    assert failure_addresses(app) == [PROXY] * PAIR.free


def test_behind_a_trusted_proxy_the_client_address_counts(proxied) -> None:
    make_user(proxied, "supervisor", "olena")
    browser = english_client(proxied)
    statuses = [
        post_login(browser, f"guess-{n}-xxxxxxx", f"192.0.2.{n + 1}").status_code
        for n in range(PAIR.free + 1)
    ]
    # Each guess from another client address: a pair of its own (the account counter, 10 free
    # for unknown addresses, has not run out yet).
    assert statuses == [401] * (PAIR.free + 1)
    assert failure_addresses(proxied) == [f"192.0.2.{n + 1}" for n in range(PAIR.free + 1)]
    # One client guessing on (at another account) is stopped at its own address.
    make_user(proxied, "supervisor", "taras")
    more = [
        post_login(browser, "guess-again-xxxx", "198.51.100.9", username="taras").status_code
        for _ in range(PAIR.free + 1)
    ]
    assert more == [401] * PAIR.free + [429]


def test_behind_one_proxy_only_the_address_it_appended_is_believed(proxied) -> None:
    make_user(proxied, "supervisor", "olena")
    browser = english_client(proxied)
    # The client wrote its own X-Forwarded-For; our proxy appended the real address.
    post_login(browser, "guess-1-xxxxxxx", "203.0.113.66, 192.0.2.44")
    post_login(browser, "guess-2-xxxxxxx", "+380501234567")  # not an address at all
    assert failure_addresses(proxied) == ["192.0.2.44", "unknown"]  # never the text sent


def test_behind_a_trusted_proxy_the_session_and_login_audit_name_the_client(proxied) -> None:
    user_id, secret = make_user(proxied, "supervisor", "olena")
    browser = english_client(proxied)
    assert post_login(browser, PASSWORD, "192.0.2.7").status_code == 302
    done = browser.post(
        "/console/login/totp", data={"code": code(secret), "csrf_token": csrf_token(browser)},
        headers={"X-Forwarded-For": "192.0.2.7", "X-Forwarded-Proto": "https"},
        environ_base={"REMOTE_ADDR": PROXY},
    )  # fmt: skip
    assert done.status_code == 302
    with proxied.app_context():
        db = db_session()
        (row,) = db.scalars(select(StaffSession).where(StaffSession.staff_user_id == user_id))
        assert row.ip == "192.0.2.7"
        success = db.scalar(select(AuditEvent).where(AuditEvent.action == "login.success"))
        assert success.ip == "192.0.2.7"


def test_the_proxy_fix_trusts_the_address_and_scheme_not_the_host(settings, app_factory) -> None:
    plain = app_factory(settings)
    assert not isinstance(plain.wsgi_app, ProxyFix)
    two = app_factory(settings.replace(trusted_proxies=2)).wsgi_app
    assert isinstance(two, ProxyFix)
    assert (two.x_for, two.x_proto, two.x_host, two.x_port, two.x_prefix) == (2, 2, 0, 0, 0)


def _environ(tmp_path, value: str) -> dict[str, str]:
    return {"HOTLINE_ENV": "test", "HOTLINE_INSTANCE_PATH": str(tmp_path), "TRUSTED_PROXIES": value}


def test_trusted_proxies_setting(tmp_path) -> None:
    assert load_settings(_environ(tmp_path, "")).trusted_proxies == 0  # the default
    assert load_settings(_environ(tmp_path, "2")).trusted_proxies == 2


@pytest.mark.parametrize("value", ["-1", "one", "1.5", "11"])
def test_a_bad_trusted_proxies_value_stops_the_start(tmp_path, value) -> None:
    with pytest.raises(SettingsError, match="TRUSTED_PROXIES"):
        load_settings(_environ(tmp_path, value))
