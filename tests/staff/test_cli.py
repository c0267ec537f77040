"""``flask staff …``: the first admin, accounts, roles, resets — audited, secrets shown once."""

from __future__ import annotations

import re

from sqlalchemy import select

from db import db_session
from services import services
from staff import totp
from staff.models import AuditEvent, StaffSession, StaffUser
from tests.staff.support import PASSWORD, make_user, sign_in

URI = re.compile(r"otpauth://totp/\S+")


def run(app, *args: str, input: str | None = None):
    return app.test_cli_runner().invoke(args=["staff", *args], input=input)


def actions(app) -> list[str]:
    with app.app_context():
        return list(db_session().scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


def test_create_admin_prompts_for_the_password_and_shows_no_totp_secret(app, caplog) -> None:
    """The operator never sees the new account's TOTP secret: none exists until its owner's
    first login makes it; that login must replace the password the operator typed."""
    result = run(
        app, "create-admin", "--username", "Root", "--display-name", "Ada",
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert not URI.search(result.output) and "secret=" not in result.output
    assert "choose a new password" in result.output
    assert PASSWORD not in result.output.replace("Password", "")
    with app.app_context():
        user = db_session().scalar(select(StaffUser).where(StaffUser.username == "root"))
        assert user.role == "admin" and not user.totp_enabled
        assert user.totp_ciphertext is None and user.must_change_password
    assert PASSWORD not in caplog.text
    again = run(
        app, "create-admin", "--username", "root2", "--display-name", "B", "--generate-password"
    )
    assert again.exit_code != 0 and "exists" in again.output


def test_a_weak_password_is_refused(app) -> None:
    result = run(
        app, "create-admin", "--username", "root", "--display-name", "Ada",
        input="password1234\npassword1234\n",
    )  # fmt: skip
    assert result.exit_code != 0 and "common" in result.output
    with app.app_context():
        assert db_session().scalars(select(StaffUser)).all() == []


def test_create_role_disable_enable_reset_list(app, client) -> None:
    created = run(
        app, "create", "--role", "auditor", "--username", "olena", "--display-name", "Olena",
        "--generate-password",
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    assert re.search(r"password for olena \(shown once\): \S{16,}", created.output)
    assert run(app, "role", "olena", "supervisor").exit_code == 0
    with app.app_context():
        user_id = db_session().scalar(select(StaffUser.id).where(StaffUser.username == "olena"))
    sign_in(client, app, user_id)
    assert run(app, "disable", "olena").exit_code == 0
    assert client.get("/console/").status_code == 302  # her session ended with the account
    assert run(app, "enable", "olena").exit_code == 0
    with app.app_context():  # she had enrolled and changed her password
        user = db_session().get(StaffUser, user_id)
        user.must_change_password = False
        totp.seal_secret(services().protector, user, totp.new_secret())
        user.totp_enabled = True
        db_session().commit()
    reset = run(app, "reset", "olena", "--generate-password")
    assert reset.exit_code == 0 and not URI.search(reset.output)
    assert re.search(r"password for olena \(shown once\): \S{16,}", reset.output)
    with app.app_context():  # a new password to change at the next login, a new enrolment
        user = db_session().get(StaffUser, user_id)
        assert user.must_change_password and not user.totp_enabled
        assert user.totp_ciphertext is None and user.totp_last_step is None
    listing = run(app, "list")
    assert "olena" in listing.output and "supervisor" in listing.output
    assert "totp-pending" in listing.output
    assert actions(app) == [
        "staff.create",
        "staff.role",
        "staff.disable",
        "staff.enable",
        "staff.reset",
    ]
    with app.app_context():
        reasons = db_session().scalars(select(StaffSession.end_reason)).all()
    assert reasons == ["disabled"]


def test_the_last_admin_cannot_be_demoted_or_disabled(app) -> None:
    make_user(app, "admin", "root")
    assert "last active admin" in run(app, "role", "root", "auditor").output
    assert "last active admin" in run(app, "disable", "root").output
    make_user(app, "admin", "root2")
    assert run(app, "role", "root", "auditor").exit_code == 0


def test_unknown_users_and_handlers_are_errors(app) -> None:
    assert run(app, "disable", "nobody").exit_code != 0
    result = run(
        app, "create", "--role", "handler", "--username", "olena", "--display-name", "O",
        "--handler-id", "999", "--generate-password",
    )  # fmt: skip
    assert result.exit_code != 0 and "no handler 999" in result.output
    assert "handlers list" in result.output  # where the ids are
    with app.app_context():
        assert db_session().scalars(select(StaffUser)).all() == []


def test_a_handler_account_needs_its_handler_id_and_says_where_it_comes_from(app) -> None:
    """Without --handler-id a handler's account could never take a call (nothing links it
    later): refused, naming the command that makes the handler and prints N."""
    result = run(
        app, "create", "--role", "handler", "--username", "olena", "--display-name", "Olena",
        "--generate-password",
    )  # fmt: skip
    assert result.exit_code != 0
    assert "--handler-id N" in result.output
    assert "handlers add" in result.output and "handlers list" in result.output
    assert "password for" not in result.output
    with app.app_context():
        assert db_session().scalars(select(StaffUser)).all() == []


def test_only_a_handler_account_is_linked_to_a_handler(app) -> None:
    """A supervisor linked to handler N would take N's link from the handler's own account."""
    result = run(
        app, "create", "--role", "supervisor", "--username", "sofia", "--display-name", "Sofia",
        "--handler-id", "1", "--generate-password",
    )  # fmt: skip
    assert result.exit_code != 0 and "--role handler only" in result.output
    with app.app_context():
        assert db_session().scalars(select(StaffUser)).all() == []


def test_the_help_names_the_console_languages_and_the_roles(app) -> None:
    text = " ".join(run(app, "create", "--help").output.split())
    assert "[uk|en]" in text and "the console's language" in text
    assert "[handler|supervisor|auditor|admin]" in text
    assert "handler: takes calls (needs --handler-id)" in text
    assert "flask handlers add" in text
