"""The home page: who is signed in, and the links their role may follow (``console.nav``)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import get_timezone_location
from flask import render_template
from flask_babel import get_locale, lazy_gettext

from console import nav
from console.blueprint import bp
from staff.authz import login_required

nav.add_link("console.admin_users", lazy_gettext("Staff accounts"), "admin", order=900)
nav.add_link("console.audit_log", lazy_gettext("Audit log"), "auditor", order=910)


@bp.app_template_filter("zone_name")
def zone_name(zone: str) -> str:
    """The hotline's time zone as staff say it, with its offset now: ``Kyiv (UTC+2)``,
    ``Київ (UTC+2)``; ``UTC`` for UTC. Every page's footer says it once (base.html)."""
    offset = dt.datetime.now(ZoneInfo(zone)).utcoffset() or dt.timedelta(0)
    if zone in ("UTC", "Etc/UTC") or "/" not in zone:
        return "UTC" if not offset else zone
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "−"
    hours, rest = divmod(abs(minutes), 60)
    shown = f"UTC{sign}{hours}" + (f":{rest:02d}" if rest else "") if minutes else "UTC"
    try:
        city = get_timezone_location(zone, locale=str(get_locale() or "en"), return_city=True)
    except LookupError:
        city = zone
    return f"{city} ({shown})"


@bp.get("/")
@login_required
def home() -> Any:
    return render_template("console/home.html")
