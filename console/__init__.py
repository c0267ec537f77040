"""The staff web console: server-rendered pages under ``/console``.

``init_app(app)`` (called by ``create_app``) sets up the languages, the security headers and
error pages, the template helpers, imports the view modules and registers the blueprint.
Building blocks for a new page: see ``docs/ARCHITECTURE.md``, "Staff and the console".
"""

from __future__ import annotations

import importlib

from flask import Flask
from flask_babel import get_locale, lazy_gettext

from console import i18n, nav, security
from console.csrf import csrf_field, csrf_token
from settings import Settings
from staff.authz import current_staff
from staff.models import ROLES

ROLE_NAMES = {
    "handler": lazy_gettext("handler"),
    "supervisor": lazy_gettext("supervisor"),
    "auditor": lazy_gettext("auditor"),
    "admin": lazy_gettext("admin"),
}
LANGUAGE_NAMES = {"uk": lazy_gettext("Ukrainian"), "en": lazy_gettext("English")}
assert set(ROLE_NAMES) == set(ROLES)

#: The modules that attach views to ``console.blueprint.bp``; a new page's module goes here.
VIEW_MODULES = (
    "console.auth_views",
    "console.home_views",
    "console.admin_views",
    "console.audit_views",
    "console.calls_views",
    "console.inquiry_views",
    "console.duty_views",
    "console.board_views",
    "console.dashboard_views",
    "console.account_views",
    "console.retention_views",
    "console.blocklist_views",
)


def init_app(app: Flask, settings: Settings) -> None:
    for name in VIEW_MODULES:
        importlib.import_module(name)
    from console.blueprint import bp

    i18n.init_app(app, time_zone=settings.time_zone)
    security.init_app(app, production=settings.env == "production")
    app.jinja_env.globals.update(
        csrf_field=csrf_field,
        csrf_token=csrf_token,
        current_staff=current_staff,
        nav_links=lambda: nav.links_for(current_staff()),
        staff_roles=ROLES,
        get_locale=get_locale,
        role_names=ROLE_NAMES,
        language_names=LANGUAGE_NAMES,
        time_zone=settings.time_zone,
    )
    app.register_blueprint(bp)
