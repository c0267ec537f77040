"""Command-line tools: call handlers (add, list, presence), the routing reconciler, metrics."""

from __future__ import annotations

import datetime as dt
import shlex
import time

import click
import redis
from flask.cli import AppGroup
from sqlalchemy import select

from db import db_session
from inquiries.models import INQUIRY_KINDS, LANGUAGES
from routing import offers
from routing.chats import open_conversations
from routing.metrics import queue_metrics, render
from routing.models import Handler
from routing.reconcile import (
    mark_current,
    rebuild_callers,
    rebuild_calls,
    rebuild_chats,
    rebuild_handlers,
)
from routing.service import (
    HandlerNotFound,
    create_handler,
    handler_phone,
    masked_phone,
    routing_core,
    set_presence,
)
from services import services

handlers_cli = AppGroup("handlers", help="Call handlers: add them, list them, set presence.")
routing_cli = AppGroup("routing", help="The routing state in Redis.")


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _core():
    svc = services()
    return routing_core(svc.settings, svc.redis)


@handlers_cli.command("add")
@click.option("--name", required=True, help="display name")
@click.option(
    "--languages", required=True,
    help=f"the callers' languages they take, comma-separated: {','.join(LANGUAGES)}",
)  # fmt: skip
@click.option(
    "--skills", required=True,
    help="the topics they take (the main menu's choices), comma-separated: "
    + ",".join(INQUIRY_KINDS),
)  # fmt: skip
@click.option("--phone", default=None, help="their phone, E.164 (stored sealed, never shown)")
@click.option(
    "--client", default=None,
    help="instead of a phone: a browser client name (in the emulator's softphone: client:NAME)",
)  # fmt: skip
@click.option("--level", default=1, type=int, show_default=True, help="lower is offered first")
@click.option("--position", default=0, type=int, show_default=True, help="order in the level")
@click.option("--wrap-up", "wrap_up", default=30, type=int, show_default=True, help="seconds")
@click.option("--fallback-languages", default=None, help="default: ROUTING_FALLBACK_LANGUAGES")
def add_handler(
    name: str,
    languages: str,
    skills: str,
    phone: str | None,
    client: str | None,
    level: int,
    position: int,
    wrap_up: int,
    fallback_languages: str | None,
) -> None:
    """Add a handler (offline until they set themselves available)."""
    svc = services()
    session = db_session()
    try:
        handler_id = create_handler(
            session, svc.protector, display_name=name, languages=_split(languages),
            skills=_split(skills), phone=phone, client=client, level=level, position=position,
            wrap_up_s=wrap_up, settings=svc.settings,
            fallback_languages=None if fallback_languages is None else _split(fallback_languages),
        )  # fmt: skip
    except ValueError as exc:
        session.rollback()
        raise click.ClickException(str(exc)) from None
    session.commit()
    click.echo(f"handler {handler_id} added ({name}, offline)")
    click.echo(
        "Their console account (to take calls and set themselves available): "
        f"flask --app app staff create --role handler --handler-id {handler_id} "
        f"--username USERNAME --display-name {shlex.quote(name)} --generate-password"
    )


def _reach(handler: Handler) -> str:
    if handler.client_identity is not None:
        return f"client:{handler.client_identity}"
    number = handler_phone(services().protector, handler)
    return masked_phone(number) if number else "-"


@handlers_cli.command("list")
@click.option("--all", "show_all", is_flag=True, help="include inactive handlers")
def list_handlers(show_all: bool) -> None:
    """List handlers: languages, skills, the masked phone or client, level and presence."""
    query = select(Handler).order_by(Handler.level, Handler.position, Handler.id)
    if not show_all:
        query = query.where(Handler.active.is_(True))
    rows = [
        (
            str(h.id), h.display_name, ",".join(h.languages), ",".join(h.skills), _reach(h),
            str(h.level), h.presence, h.presence_reason or "",
        )
        for h in db_session().scalars(query)
    ]  # fmt: skip
    if not rows:
        click.echo("no handlers")
        return
    header = ("id", "name", "languages", "skills", "reached at", "level", "presence", "reason")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


@handlers_cli.command("presence")
@click.argument("handler_id", type=int)
@click.argument("presence", type=click.Choice(["available", "break", "offline"]))
@click.option("--reason", default=None, help="why (shown to supervisors)")
def presence_command(handler_id: int, presence: str, reason: str | None) -> None:
    """Set a handler available, on break or offline."""
    session = db_session()
    try:
        result = set_presence(session, _core(), handler_id, presence, reason)
    except HandlerNotFound as exc:
        raise click.ClickException(str(exc.args[0])) from None
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    except redis.RedisError:
        raise click.ClickException(
            f"handler {handler_id} is {presence} in the database, but Redis did not answer; "
            "run `flask routing reconcile` when it is back"
        ) from None
    if result.core.withdrawn:  # their ringing offer goes to someone else: stop the ringing
        offers.cancel_offers(db_session(), int(result.core.withdrawn), [str(handler_id)])
    if presence == "available" or result.core.withdrawn:
        offers.enqueue_dispatch(f"presence:{handler_id}:{int(time.time() * 1000)}")
    note = ""
    if result.core.deferred:
        note = " (after their current call)"
    elif result.core.withdrawn:
        note = " (the call offered to them goes to someone else)"
    click.echo(f"handler {handler_id}: {result.previous} → {presence}{note}")


@routing_cli.command("reconcile")
def reconcile_command() -> None:
    """Rebuild the routing state in Redis from the database (handlers, calls, waiting callers,
    conversations)."""
    counts = rebuild_handlers(db_session(), _core())
    calls = rebuild_calls(db_session(), _core())
    callers = rebuild_callers(db_session(), _core())
    chats = rebuild_chats(_core(), open_conversations(db_session()), held=True)
    mark_current(_core())
    offers.enqueue_dispatch(f"reconcile:{int(time.time() * 1000)}")
    click.echo(
        f"handlers: {counts['handlers']} restored ({counts['available']} available, "
        f"{counts['break']} on break, {counts['offline']} offline; {counts['restored']} "
        f"caught mid-call set available), {counts['inactive']} inactive set offline; "
        f"calls in progress: {calls} restored; "
        f"callers: {callers['requeued']} queued again, {callers['closed']} closed (call ended), "
        f"{callers['callbacks_later']} call-backs due later; "
        f"conversations: {chats['chats_restored']} restored to their handlers, "
        f"{chats['chats_requeued']} queued again"
    )


def _when(value: str | None, default: dt.datetime) -> dt.datetime:
    if value is None:
        return default
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"not an ISO 8601 time: {value}") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)


@routing_cli.command("metrics")
@click.option("--since", default=None, help="ISO 8601, UTC if no offset (default: 24 h ago)")
@click.option("--until", default=None, help="ISO 8601, UTC if no offset (default: now)")
@click.option("--threshold", default=20, type=int, show_default=True, help="service level, s")
def metrics_command(since: str | None, until: str | None, threshold: int) -> None:
    """Queue metrics for [since, until): service level, ASA, abandons, AHT, offer outcomes."""
    now = dt.datetime.now(dt.UTC)
    end = _when(until, now)
    start = _when(since, end - dt.timedelta(days=1))
    if start >= end:
        raise click.BadParameter("--since must be before --until")
    result = queue_metrics(db_session(), start, end, threshold_s=threshold, now=now)
    for line in render(result):
        click.echo(line)
