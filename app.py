"""The composition root: ``create_app()`` wires settings, extensions and blueprints.

``app`` (the WSGI application for gunicorn) is built lazily on first attribute access, so
importing this module does no work and opens nothing.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flask import Flask, Response, jsonify, request
from sqlalchemy import create_engine, make_url, text
from werkzeug.middleware.proxy_fix import ProxyFix

import db
import jobs
import routing.models  # noqa: F401 - the handler table on the metadata
import services
from ivr.flow import load_flow
from logs import configure_logging
from settings import Settings, load_settings

ROOT = Path(__file__).resolve().parent
log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, **overrides: Any) -> Flask:
    """Build the hotline app. Tests pass their own ``settings``; otherwise the environment's."""
    settings = settings or load_settings(**overrides)
    configure_logging(settings.log_level)
    app = Flask(__name__, instance_path=str(settings.instance_path))
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=1024 * 1024,
        PROPAGATE_EXCEPTIONS=False,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.env == "production",
        # ``__Host-`` in production: browsers then keep the cookie only if it is Secure, has
        # Path=/ and no Domain, so no other site of the domain can set or shadow it.
        SESSION_COOKIE_NAME="__Host-session" if settings.env == "production" else "session",
        SESSION_COOKIE_PATH="/",
        SESSION_COOKIE_DOMAIN=None,
    )
    if settings.trusted_proxies:
        # The client's address (and scheme) from X-Forwarded-For/-Proto, as many hops from the
        # right as there are proxies of ours; never the host (signatures use PUBLIC_BASE_URL).
        hops = settings.trusted_proxies
        proxied = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=0)
        app.wsgi_app = proxied  # type: ignore[method-assign]
    settings.instance_path.mkdir(mode=0o700, parents=True, exist_ok=True)
    services.init_app(app, settings)
    db.init_app(app, settings.database_url)
    jobs.init_app(app, settings.rq_queue)
    schedule_periodic_jobs(app, settings)
    flow = load_flow()  # a broken menu stops the start-up here

    import console
    import messaging.cli
    import messaging.telegram_views  # noqa: F401 - /messaging/telegram on the messaging blueprint
    import routing.speech
    from ivr.cli import carrier_cli, ivr_cli
    from ivr.views import bp as voice_bp
    from keyrotation.cli import keys_cli
    from messaging.menu import load_menu
    from messaging.views import bp as messaging_bp
    from recordings.cli import recordings_cli
    from routing.cli import handlers_cli, routing_cli
    from routing.views import bp as routing_bp
    from staff.cli import staff_cli

    app.register_blueprint(voice_bp)
    app.register_blueprint(routing_bp)
    app.register_blueprint(messaging_bp)
    app.extensions["ivr_flow"] = flow
    # The text menu's catalogs, one per IVR language: a missing translation stops start-up.
    app.extensions["messaging_menu"] = load_menu(tuple(flow.catalogs), flow.kind_priority)
    routing.speech.init_app(app, caller_prompts=flow)  # the IVR's catalogs, for routing's words
    console.init_app(
        app, settings
    )  # the staff console, its security headers (app-wide) and languages
    app.add_url_rule("/healthz", "healthz", healthz)
    app.add_url_rule("/readyz", "readyz", readyz)
    app.cli.add_command(ivr_cli)
    app.cli.add_command(carrier_cli)
    app.cli.add_command(handlers_cli)
    app.cli.add_command(routing_cli)
    app.cli.add_command(recordings_cli)
    app.cli.add_command(staff_cli)
    app.cli.add_command(keys_cli)
    app.cli.add_command(migrate_command)
    serve_only(app, settings.serve)
    return app


#: What both parts answer: the process manager's and the proxy's health checks.
BOTH_PARTS = ("/healthz", "/readyz")


def serve_only(app: Flask, part: str) -> None:
    """``HOTLINE_SERVE``: a ``webhooks`` process answers everything but ``/console`` (the
    carrier's webhooks and the prompt audio its ``<Play>`` fetches), a ``console`` process only
    ``/console``; both answer ``/healthz`` and ``/readyz``. The other part's paths are a plain
    404 from the first ``before_request`` hook (no view, no signature or CSRF check, no console
    error page): a misrouted proxy cannot make one pool serve the other's requests."""
    if part == "all":
        return
    from console.security import is_console_request

    def other_part() -> Response | None:
        if request.path in BOTH_PARTS or is_console_request() == (part == "console"):
            return None
        return Response("Not Found\n", status=404, mimetype="text/plain")

    app.before_request_funcs.setdefault(None, []).insert(0, other_part)


def schedule_periodic_jobs(app: Flask, settings: Settings) -> None:
    """Safety nets and housekeeping, never the main path (routing is event-driven): every
    worker's timer enqueues each period's job once (``jobs.every``)."""
    if settings.routing_tick_s:  # reconcile, expire lost offers, dispatch
        jobs.every(app, settings.routing_tick_s, "routing.jobs.tick", name="routing-tick",
                   timeout_s=60)  # fmt: skip
    # Expired recordings and personal data deleted, hourly; lost recording jobs, every 10 min.
    jobs.every(app, 3600, "recordings.jobs.apply_retention", name="recordings-retention",
               timeout_s=1800)  # fmt: skip
    jobs.every(app, 600, "recordings.jobs.resume_stalled", name="recordings-resume")
    # Blocklist entries whose block has ended are deleted, hourly.
    jobs.every(app, 3600, "ivr.jobs.purge_expired_blocks", name="blocklist-purge")
    # Ended calls left at the carrier (their records hold callers' and handlers' numbers).
    jobs.every(app, 600, "recordings.jobs.sweep_carrier_calls", name="carrier-calls-sweep")


class Worker(jobs.AppWorker):
    """The Procfile's worker: ``rq worker --worker-class app.Worker`` (the app built once)."""

    app_factory = staticmethod(lambda: create_app())


def healthz() -> Any:
    """Liveness: the process answers."""
    return jsonify(status="ok")


def readyz() -> Any:
    """Readiness: the database and Redis answer. Anyone may ask (a load balancer, a probe), so
    the answer says only ok (200) or not (503): which component failed, and how, goes to the
    log for the operator, never to the client."""
    failed: dict[str, str] = {}
    try:
        with db.database().engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        failed["database"] = type(exc).__name__
    try:
        services.services().redis.ping()
    except Exception as exc:
        failed["redis"] = type(exc).__name__
    if failed:
        details = ", ".join(f"{name} ({error})" for name, error in sorted(failed.items()))
        log.warning("readyz: not ready: %s", details)
        return jsonify(status="unavailable"), 503
    return jsonify(status="ok")


def run_migrations(database_url: str, revision: str = "head") -> None:
    """Upgrade the database schema with Alembic."""
    from alembic import command
    from alembic.config import Config

    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["skip_logging"] = True  # keep the app's logging (and its redaction) as is
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    db.private_sqlite_files(database_url)  # Alembic's engine would create the file 0644
    command.upgrade(config, revision)


#: Tables the app's role may read and add to, never change: the audit log (migration 0006's
#: triggers also refuse UPDATE, DELETE and TRUNCATE to anyone who is not their owner).
APPEND_ONLY_TABLES = ("audit_event",)


def app_role_grants(role: str, schema: str = "public") -> list[str]:
    """The PostgreSQL statements that give the app's role what it needs and no more: rows of
    every table (only SELECT and INSERT on the append-only ones), the sequences behind ids,
    nothing on Alembic's version table. Run by the tables' owner; idempotent."""
    return [
        f"GRANT USAGE ON SCHEMA {schema} TO {role}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role}",
        *(f"REVOKE UPDATE, DELETE, TRUNCATE ON {name} FROM {role}" for name in APPEND_ONLY_TABLES),
        f"REVOKE ALL ON alembic_version FROM {role}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {role}",
    ]


def grant_app_role(owner_url: str, role: str) -> None:
    """Apply ``app_role_grants`` to ``role`` as the owner (``flask migrate`` does, each run)."""
    engine = create_engine(owner_url)
    try:
        with engine.begin() as conn:
            if conn.dialect.name != "postgresql":
                raise RuntimeError("database roles are PostgreSQL's: SQLite has none to grant")
            found = conn.execute(
                text("SELECT rolsuper, rolname = current_user FROM pg_roles WHERE rolname = :r"),
                {"r": role},
            ).first()
            if found is None:
                raise RuntimeError(f"there is no PostgreSQL role {role!r}")
            if found[0] or found[1]:
                raise RuntimeError(
                    f"the app's role {role!r} must be neither a superuser nor the role that "
                    "runs the migrations (either may alter the audit log)"
                )
            schema = conn.execute(text("SELECT current_schema()")).scalar_one()
            quote = conn.dialect.identifier_preparer.quote
            for statement in app_role_grants(quote(role), quote(schema)):
                conn.execute(text(statement))
    finally:
        engine.dispose()


def app_role_of(settings: Settings) -> str | None:
    """The app's role to grant to: the user of ``DATABASE_URL`` when ``MIGRATION_DATABASE_URL``
    names another user (no grants when both are one role: it owns everything anyway)."""
    if not settings.migration_database_url:
        return None
    app_user = make_url(settings.database_url).username
    owner = make_url(settings.migration_database_url).username
    return app_user if app_user and app_user != owner else None


def _migrate_command() -> Any:
    import click

    @click.command("migrate")
    @click.option(
        "--app-role",
        default=None,
        help="PostgreSQL: the role the app connects as, granted its privileges after the "
        "upgrade (default: the user of DATABASE_URL when MIGRATION_DATABASE_URL names another)",
    )
    def migrate(app_role: str | None) -> None:
        """Upgrade the database schema to the newest migration (as MIGRATION_DATABASE_URL's
        role when set, else DATABASE_URL's), then grant the app's role its privileges."""
        settings = services.services().settings
        run_migrations(settings.migrations_url)
        click.echo("database schema is up to date")
        role = app_role or app_role_of(settings)
        if role:
            try:
                grant_app_role(settings.migrations_url, role)
            except RuntimeError as exc:
                raise click.ClickException(str(exc)) from None
            click.echo(f"role {role}: rows of every table, the audit log read and append only")

    return migrate


migrate_command = _migrate_command()


def __getattr__(name: str) -> Any:
    """``app:app`` for gunicorn, built on first access (importing this module builds nothing)."""
    if name == "app":
        global app
        app = create_app()
        return app
    raise AttributeError(name)
