"""Production by default where it matters.

Development and test settings are made for one person's machine: their secrets are generated
into ``instance/`` and their cookies lack ``Secure``. A process started with them on a public
address (a forgotten ``HOTLINE_ENV``, a copied Procfile line) would serve callers' cases with
keys anyone with the checkout can read. The Procfile's ``web`` and ``console`` lines bind
``${HOST:-127.0.0.1}`` and read ``gunicorn.conf.py``, whose ``on_starting`` hook refuses any
other address unless ``HOTLINE_ENV=production``. In production the session cookies carry the
``__Host-`` prefix, and the audit log is append-only for the role the app connects as.
"""

from __future__ import annotations

import runpy
import secrets
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import DBAPIError

from app import app_role_grants, app_role_of
from devtools import procfile
from settings import PRODUCTION_REQUIRED
from tests.conftest import PUBLIC_BASE_URL, call_params, new_call_sid
from tests.security.conftest import ROOT, Served, free_port, process_env, stop
from tests.staff.support import PASSWORD, csrf_from, make_user

GUNICORN_CONF = runpy.run_path(str(ROOT / "gunicorn.conf.py"))


def start_and_wait(name: str, env: dict[str, str], log: Path) -> subprocess.CompletedProcess:
    """Start a Procfile process and wait for it to exit (it must: a refusal)."""
    with log.open("wb") as out:
        return subprocess.run(
            procfile.command(name, env), cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            timeout=60, check=False,
        )  # fmt: skip


@pytest.mark.parametrize("env", ["development", "test"])
@pytest.mark.parametrize("name", ["web", "console"])
def test_development_settings_refuse_to_face_a_network(settings, tmp_path, name, env) -> None:
    """The attack (or the accident): the web or console process started with development or
    test settings on every interface (``HOST=0.0.0.0``). We promise: it exits non-zero before
    binding anything, with a message naming what to set."""
    every_interface = "0.0.0.0"  # noqa: S104 - the address that must be refused
    environ = process_env(
        settings, {"HOTLINE_ENV": env, "HOST": every_interface, "PORT": str(free_port())}
    )
    done = start_and_wait(name, environ, tmp_path / "refused.log")
    output = (tmp_path / "refused.log").read_text()
    assert done.returncode != 0, output
    assert f"refusing to listen on 0.0.0.0:{environ['PORT']} with HOTLINE_ENV={env}" in output
    assert "HOTLINE_ENV=production" in output and "HOST=127.0.0.1" in output
    assert all(secret in output for secret in PRODUCTION_REQUIRED), output
    assert "Listening at" not in output  # refused before the bind


@pytest.mark.parametrize("env", ["development", "test"])
def test_development_settings_run_on_loopback(served, env) -> None:
    """The same processes and settings on 127.0.0.1 (the Procfile's default ``HOST``) run."""
    for name in ("web", "console"):
        process = served(name, HOTLINE_ENV=env)
        assert process.request("GET", "/healthz").status == 200
        assert "refusing" not in process.log()


def test_production_checks_its_settings_before_binding(settings, tmp_path) -> None:
    """Production with a secret missing stops the gunicorn master with the settings' message
    (not each worker in turn, after it has bound the port)."""
    environ = process_env(
        settings,
        {"HOTLINE_ENV": "production", "SECRET_KEY": "", "PORT": str(free_port()),
         "HOST": "127.0.0.1", "HOTLINE_PHONE_HMAC_KEY": "", "HOTLINE_DATA_KEYS": ""},
    )  # fmt: skip
    done = start_and_wait("web", environ, tmp_path / "production.log")
    output = (tmp_path / "production.log").read_text()
    assert done.returncode != 0, output
    assert "HOTLINE_ENV=production refuses to start: set SECRET_KEY" in output
    assert "Listening at" not in output


@pytest.mark.parametrize(
    "bind,loopback",
    [
        ("127.0.0.1:5000", True), ("127.0.0.2:5000", True), ("[::1]:5000", True),
        ("localhost:5000", True), ("unix:/run/hotline.sock", True), ("tcp://127.0.0.1:80", True),
        ("127.0.0.1", True), ("0.0.0.0:5000", False), ("[::]:5000", False), (":5000", False),
        ("192.168.1.10:5000", False), ("hotline.example.org:80", False), ("fd://3", False),
        ("tcp://0.0.0.0:80", False), ("[::ffff:10.0.0.1]:5000", False),
    ],
)  # fmt: skip
def test_which_addresses_count_as_loopback(bind, loopback) -> None:
    """Only addresses no other host can reach pass without production settings."""
    assert GUNICORN_CONF["is_loopback"](bind) is loopback
    refusal = GUNICORN_CONF["refusal"]
    assert (refusal(["127.0.0.1:1", bind], {"HOTLINE_ENV": "test"}) is None) is loopback
    assert refusal([bind], {}) == refusal([bind], {"HOTLINE_ENV": "development"})
    assert refusal([bind], {"HOTLINE_ENV": "production"}) is None


def test_production_session_cookies_carry_the_host_prefix(settings, app_factory) -> None:
    """The attack: a sibling site of the domain (or a network attacker on plain http) sets or
    shadows the console's cookies. We promise: in production both cookies are ``__Host-``
    (browsers then accept them only Secure, with Path=/ and no Domain) and are read back."""
    prod = app_factory(settings.replace(env="production"))
    prod.testing = True
    client = prod.test_client()
    page = client.get("/console/login", base_url=PUBLIC_BASE_URL)
    cookie = page.headers["Set-Cookie"]
    assert cookie.startswith("__Host-session=")
    for attribute in ("Secure", "HttpOnly", "Path=/", "SameSite=Lax"):
        assert attribute in cookie.split("; ")
    assert "Domain" not in cookie
    _user_id, _secret = make_user(prod, "supervisor", "olena")
    form = {"username": "olena", "password": PASSWORD, "csrf_token": csrf_from(page.data)}
    step = client.post("/console/login", base_url=PUBLIC_BASE_URL, data=form)
    assert step.status_code == 302  # the CSRF token came back in __Host-session
    assert step.headers["Location"].endswith("/console/login/totp")


def test_development_cookies_keep_plain_names(client) -> None:
    """``__Host-`` needs https; on http://127.0.0.1 in development the names stay plain."""
    cookie = client.get("/console/login").headers["Set-Cookie"]
    assert cookie.startswith("session=") and "Secure" not in cookie


def test_the_app_role_comes_from_the_two_urls(settings) -> None:
    """``flask migrate`` grants to DATABASE_URL's user when MIGRATION_DATABASE_URL is another's."""
    owner = "postgresql+psycopg://hotline_owner:pw@db/hotline"
    app_url = "postgresql+psycopg://hotline_app:pw@db/hotline"
    assert app_role_of(settings.replace(database_url=app_url)) is None
    both = settings.replace(database_url=app_url, migration_database_url=owner)
    assert app_role_of(both) == "hotline_app"
    assert app_role_of(both.replace(database_url=owner)) is None
    assert both.migrations_url == owner and settings.migrations_url == settings.database_url


def test_the_documented_grants_are_the_ones_migrate_applies() -> None:
    """docs/SECURITY.md shows the statements ``flask migrate`` runs, word for word."""
    documented = (ROOT / "docs" / "SECURITY.md").read_text()
    for statement in app_role_grants("hotline_app"):
        assert statement + ";" in documented, statement


def as_role(url: str, role: str, statement: str) -> None:
    """Run ``statement`` with ``role``'s privileges (``SET ROLE``: any authentication works)."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text(f"SET ROLE {role}"))
            conn.execute(text(statement))
    finally:
        engine.dispose()


@pytest.mark.postgresql
def test_the_app_role_cannot_rewrite_the_audit_log(settings, app_factory, served) -> None:
    """The attack: code running as the app (an injection, a taken app server) edits or deletes
    audit rows, or first lifts the triggers that refuse it. We promise, with the set-up of
    docs/SECURITY.md (migrations as the tables' owner, the app as a role ``flask migrate``
    grants to): the app's role adds and reads audit rows and works on every other table, and
    can neither change, delete nor truncate the audit log nor disable or drop its triggers."""
    role, password = "hotline_app_" + secrets.token_hex(4), secrets.token_hex(16)
    owner = create_engine(settings.database_url)
    with owner.begin() as conn:
        conn.execute(text(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'"))
    app_url = make_url(settings.database_url).set(username=role, password=password)
    app_url_text = app_url.render_as_string(hide_password=False)
    started: list[Served] = []
    try:
        release = app_factory(
            settings.replace(
                database_url=app_url_text, migration_database_url=settings.database_url
            )
        )
        with release.app_context():  # as the ``flask`` command gives every command
            done = release.test_cli_runner().invoke(args=["migrate"])
        assert done.exit_code == 0, done.output
        assert f"role {role}:" in done.output

        url = settings.database_url
        as_role(url, role, "INSERT INTO audit_event (time, action, details) "
                           "VALUES (now(), 'test.role', '{}')")  # fmt: skip
        as_role(url, role, "SELECT count(*) FROM audit_event")
        as_role(url, role, "UPDATE staff_user SET display_name = display_name")
        refused = [
            "UPDATE audit_event SET action = 'rewritten'",
            "DELETE FROM audit_event",
            "TRUNCATE audit_event",
            "ALTER TABLE audit_event DISABLE TRIGGER USER",
            "DROP TRIGGER audit_event_no_update_delete ON audit_event",
            "DROP FUNCTION audit_event_append_only() CASCADE",
            "UPDATE alembic_version SET version_num = version_num",
        ]
        for statement in refused:
            with pytest.raises(DBAPIError, match=r"permission denied|must be owner"):
                as_role(url, role, statement)

        # and the app runs on these privileges alone: a call, a refused login (audited)
        web = served("web", DATABASE_URL=app_url_text)
        started.append(web)
        answer = web.signed_post(PUBLIC_BASE_URL, "/voice/incoming", call_params(new_call_sid()))
        assert answer.status == 200 and "<Gather" in answer.text, answer.text
        console = served("console", DATABASE_URL=app_url_text)
        started.append(console)
        page = console.request("GET", "/console/login")
        cookie = page.headers["set-cookie"].partition(";")[0]
        form = {"username": "nobody", "password": "wrong", "csrf_token": csrf_from(page.body)}
        assert console.post_form("/console/login", form, {"Cookie": cookie}).status == 401
        with owner.connect() as conn:
            actions = conn.execute(text("SELECT action FROM audit_event")).scalars().all()
        assert "login.failure" in actions
    finally:
        for process in started:
            stop(process)  # their connections first
        with owner.begin() as conn:
            conn.execute(text(f"DROP OWNED BY {role}"))
            conn.execute(text(f"DROP ROLE {role}"))
        owner.dispose()
