"""``flask staff …``: accounts from the command line (the first admin, resets, listing).

Passwords are prompted for (hidden, typed twice) or generated and printed once. A new or reset
account's first login must replace that password, then enrol an authenticator app: its TOTP
secret is made in that login and shown only there, so whoever creates the account (or reads
this terminal) never sees it. Nothing is logged. Changes are audited with no actor (the CLI).
"""

from __future__ import annotations

import click
from flask.cli import AppGroup
from sqlalchemy import select

from db import db_session
from services import services
from staff import accounts
from staff.accounts import AccountError, Enrolment
from staff.models import ROLES, STAFF_LANGUAGES, StaffUser
from staff.passwords import MIN_LENGTH

staff_cli = AppGroup("staff", help="Staff accounts of the console.")


def _password(generate: bool) -> str | None:
    if generate:
        return None
    return click.prompt(
        f"Password (at least {MIN_LENGTH} characters)", hide_input=True, confirmation_prompt=True
    )


def _user(username: str) -> StaffUser:
    user = accounts.find_user(db_session(), username)
    if user is None:
        raise click.ClickException(f"no staff user {username!r}")
    return user


def _show(enrolment: Enrolment, username: str) -> None:
    if enrolment.password is not None:
        click.echo(f"password for {username} (shown once): {enrolment.password}")
    click.echo(
        "At the first login they choose a new password, then set up their authenticator app."
    )


def _create(**fields: object) -> None:
    db = db_session()
    try:
        enrolment = accounts.create_user(db, services().protector, **fields)  # type: ignore[arg-type]
    except ValueError as exc:
        db.rollback()
        raise click.ClickException(str(exc)) from None
    db.commit()
    click.echo(f"staff user {enrolment.user_id} created: {fields['username']} ({fields['role']})")
    _show(enrolment, str(fields["username"]).lower())


_language = click.option(
    "--language", type=click.Choice(STAFF_LANGUAGES), default="uk", show_default=True,
    help="the console's language for this person (callers' languages: handlers add --languages)",
)  # fmt: skip
_generate = click.option(
    "--generate-password", is_flag=True, help="generate a password and print it once"
)


@staff_cli.command("create-admin")
@click.option("--username", required=True)
@click.option("--display-name", required=True)
@_language
@_generate
def create_admin(username: str, display_name: str, language: str, generate_password: bool) -> None:
    """Create the first admin (refused once an admin exists: use create --role admin)."""
    if accounts.active_admins(db_session()) > 0:
        raise click.ClickException("an admin exists already; use: flask staff create --role admin")
    password = _password(generate_password)
    _create(
        username=username, display_name=display_name, role="admin", password=password,
        language=language,
    )  # fmt: skip


WHERE_N = (
    "N is the id `flask --app app handlers add` printed for them; "
    "`flask --app app handlers list` shows every handler's id"
)


def _check_link(role: str, handler_id: int | None) -> None:
    """A handler's account names its handler (the phone that rings); no other account does."""
    if role != "handler":
        if handler_id is not None:
            raise click.ClickException(
                f"--handler-id is for --role handler only (a {role} takes no calls)"
            )
        return
    if handler_id is None:
        raise click.ClickException(
            "a handler's account needs --handler-id N, the handler whose phone rings for them: "
            "add the handler first (flask --app app handlers add --name … --languages … "
            f"--skills … --phone …|--client …); {WHERE_N}"
        )
    try:
        accounts.check_handler(db_session(), handler_id)
    except AccountError as exc:
        raise click.ClickException(
            f"{exc} (`flask --app app handlers list` shows every handler's id, "
            "`flask --app app staff list` the accounts linked to them)"
        ) from None


@staff_cli.command("create")
@click.option(
    "--role", type=click.Choice(ROLES), required=True,
    help="handler: takes calls (needs --handler-id); supervisor: the queue board and every "
    "case; auditor: every case read-only and the audit log; admin: accounts and retention",
)  # fmt: skip
@click.option("--username", required=True)
@click.option("--display-name", required=True)
@click.option(
    "--handler-id", type=int, default=None,
    help="with --role handler (required): the id `flask handlers add` printed "
    "(`flask handlers list`)",
)  # fmt: skip
@_language
@_generate
def create(
    role: str,
    username: str,
    display_name: str,
    handler_id: int | None,
    language: str,
    generate_password: bool,
) -> None:
    """Create a staff account (a handler's: after `flask handlers add`, with --handler-id)."""
    _check_link(role, handler_id)
    password = _password(generate_password)
    _create(
        username=username, display_name=display_name, role=role, password=password,
        language=language, handler_id=handler_id,
    )  # fmt: skip


def _change(action: str, username: str, change) -> None:  # type: ignore[no-untyped-def]
    db = db_session()
    user = _user(username)
    try:
        result = change(db, user)
    except (AccountError, ValueError) as exc:
        db.rollback()
        raise click.ClickException(str(exc)) from None
    db.commit()
    click.echo(f"{user.username}: {action}")
    if isinstance(result, Enrolment):
        _show(result, user.username)


@staff_cli.command("disable")
@click.argument("username")
def disable(username: str) -> None:
    """Disable an account (its sessions end at once)."""
    _change("disabled", username, lambda db, user: accounts.set_active(db, user, False))


@staff_cli.command("enable")
@click.argument("username")
def enable(username: str) -> None:
    """Enable a disabled account."""
    _change("enabled", username, lambda db, user: accounts.set_active(db, user, True))


@staff_cli.command("role")
@click.argument("username")
@click.argument("role", type=click.Choice(ROLES))
def set_role(username: str, role: str) -> None:
    """Change an account's role (audited)."""
    _change(f"role {role}", username, lambda db, user: accounts.set_role(db, user, role))


@staff_cli.command("reset")
@click.argument("username")
@_generate
def reset(username: str, generate_password: bool) -> None:
    """A new password to change at the next login, and a new TOTP enrolment at it; the
    account's sessions end (audited)."""
    _user(username)
    password = _password(generate_password)
    _change(
        "password and TOTP reset",
        username,
        lambda db, user: accounts.reset_credentials(
            db, services().protector, user, password=password
        ),
    )


@staff_cli.command("list")
def list_users() -> None:
    """List staff accounts."""
    users = db_session().scalars(select(StaffUser).order_by(StaffUser.id)).all()
    for user in users:
        state = "active" if user.active else "disabled"
        mfa = "totp" if user.totp_enabled else "totp-pending"
        link = f" handler {user.handler_id}" if user.handler_id is not None else ""
        last = user.last_login_at.isoformat(timespec="seconds") if user.last_login_at else "never"
        click.echo(
            f"{user.id:>4}  {user.username:<20} {user.role:<10} {state:<8} {mfa:<12} "
            f"{user.language}  last login {last}{link}  {user.display_name}"
        )
    if not users:
        click.echo("no staff accounts (flask staff create-admin …)")
