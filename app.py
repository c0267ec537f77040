"""The composition root: ``create_app()`` wires settings, extensions and blueprints.

``app`` (the WSGI application for gunicorn) is built lazily on first attribute access, so
importing this module does no work and opens nothing.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flask import Flask, jsonify
from sqlalchemy import text
from werkzeug.middleware.proxy_fix import ProxyFix

import db
import jobs
import routing.models  # noqa: F401 - the handler table on the metadata
import services
from ivr.flow import load_flow
from logs import configure_logging
from settings import Settings, load_settings

ROOT = Path(__file__).resolve().parent


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
    )
    if settings.trusted_proxies:
        # The client's address (and scheme) from X-Forwarded-For/-Proto, as many hops from the
        # right as there are proxies of ours; never the host (signatures use PUBLIC_BASE_URL).
        hops = settings.trusted_proxies
        proxied = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=0)
        app.wsgi_app = proxied  # type: ignore[method-assign]
    settings.instance_path.mkdir(parents=True, exist_ok=True)
    services.init_app(app, settings)
    db.init_app(app, settings.database_url)
    jobs.init_app(app, settings.rq_queue)
    schedule_periodic_jobs(app, settings)
    flow = load_flow()  # a broken menu stops the start-up here

    import console
    import routing.speech
    from ivr.cli import carrier_cli, ivr_cli
    from ivr.views import bp as voice_bp
    from recordings.cli import recordings_cli
    from routing.cli import handlers_cli, routing_cli
    from routing.views import bp as routing_bp
    from staff.cli import staff_cli

    app.register_blueprint(voice_bp)
    app.register_blueprint(routing_bp)
    app.extensions["ivr_flow"] = flow
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
    app.cli.add_command(migrate_command)
    return app


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


class Worker(jobs.AppWorker):
    """The Procfile's worker: ``rq worker --worker-class app.Worker`` (the app built once)."""

    app_factory = staticmethod(lambda: create_app())


def healthz() -> Any:
    """Liveness: the process answers."""
    return jsonify(status="ok")


def readyz() -> Any:
    """Readiness: the database and Redis answer; 503 naming whichever does not."""
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
        return jsonify(status="unavailable", failed=sorted(failed), errors=failed), 503
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
    command.upgrade(config, revision)


def _migrate_command() -> Any:
    import click

    @click.command("migrate")
    def migrate() -> None:
        """Upgrade the database schema to the newest migration."""
        url = services.services().settings.database_url
        run_migrations(url)
        click.echo("database schema is up to date")

    return migrate


migrate_command = _migrate_command()


def __getattr__(name: str) -> Any:
    """``app:app`` for gunicorn, built on first access (importing this module builds nothing)."""
    if name == "app":
        global app
        app = create_app()
        return app
    raise AttributeError(name)
