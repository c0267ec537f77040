"""The composition root: ``create_app()`` wires settings, extensions and blueprints.

``app`` (the WSGI application for gunicorn) is built lazily on first attribute access, so
importing this module does no work and opens nothing.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from flask import Flask, jsonify
from flask.ctx import RequestContext
from sqlalchemy import text
from werkzeug.middleware.proxy_fix import ProxyFix

import extensions
import routing.models  # noqa: F401 - the handler table on the metadata
from ivr.flow import load_flow
from settings import Settings, load_settings
from webhooks import CarrierRoutes

ROOT = Path(__file__).resolve().parent
_PHONE_LIKE = re.compile(r"(?<![\w.])\+?\d[\d\s().\-]{5,}\d(?![\w.])")


class RedactPhoneNumbers(logging.Filter):
    """Defence in depth: no log line leaves the process with something shaped like a number.

    The code never logs numbers; this catches what a library or an exception message might.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _PHONE_LIKE.sub("[number]", message)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = _PHONE_LIKE.sub("[number]", record.exc_text)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def configure_logging(level: str) -> None:
    root = logging.getLogger()
    if not any(isinstance(h, logging.StreamHandler) for h in root.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    for handler in root.handlers:
        if not any(isinstance(f, RedactPhoneNumbers) for f in handler.filters):
            handler.addFilter(RedactPhoneNumbers())
    root.setLevel(level)


class HotlineFlask(Flask):
    """Flask with two savings per request, for the carrier's webhooks above all.

    Flask asks ``ensure_sync`` for the view and every request hook on every request, and
    inspects each function again to see whether it is a coroutine; the answer never changes, so
    it is remembered. A carrier webhook gets a request context without URL adapter and session.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._sync_functions: dict[Any, Any] = {}
        self._carrier_routes = CarrierRoutes(self)

    def request_context(self, environ: dict[str, Any]) -> RequestContext:
        """A carrier webhook's context skips the URL adapter and the session (see
        ``webhooks.CarrierRequestContext``); every other request gets Flask's."""
        return self._carrier_routes.context_for(environ) or super().request_context(environ)

    def ensure_sync(self, func: Any) -> Any:
        try:
            return self._sync_functions[func]
        except KeyError:
            result = self._sync_functions[func] = super().ensure_sync(func)
            return result
        except TypeError:  # not hashable: ask every time
            return super().ensure_sync(func)


def create_app(settings: Settings | None = None, **overrides: Any) -> Flask:
    """Build the hotline app. Tests pass their own ``settings``; otherwise the environment's."""
    settings = settings or load_settings(**overrides)
    configure_logging(settings.log_level)
    app = HotlineFlask(__name__, instance_path=str(settings.instance_path))
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
    extensions.init_app(app, settings)
    app.extensions["ivr_flow"] = load_flow()  # a broken menu stops the start-up here

    import console
    from ivr.cli import carrier_cli, ivr_cli
    from ivr.views import bp as voice_bp
    from recordings.cli import recordings_cli
    from routing.cli import handlers_cli, routing_cli
    from routing.views import bp as routing_bp
    from staff.cli import staff_cli

    app.register_blueprint(voice_bp)
    app.register_blueprint(routing_bp)
    console.init_app(app)  # the staff console, its security headers (app-wide) and languages
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


def healthz() -> Any:
    """Liveness: the process answers."""
    return jsonify(status="ok")


def readyz() -> Any:
    """Readiness: the database and Redis answer; 503 naming whichever does not."""
    svc = extensions.services()
    failed: dict[str, str] = {}
    try:
        with svc.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        failed["database"] = type(exc).__name__
    try:
        svc.redis.ping()
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
    from flask import current_app

    @click.command("migrate")
    def migrate() -> None:
        """Upgrade the database schema to the newest migration."""
        url = current_app.extensions["hotline"].settings.database_url
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
