"""The dashboard (``/console/dashboard``, supervisors, auditors and admins).

``routing.reports.dashboard`` over a range of days in the hotline's time zone (default: the
last 14; a GET form picks another, at most ``MAX_DAYS``): calls per day by topic and by
language; service level, average speed of answer and abandonment per day; how long answered
callers waited; each handler's occupancy. Each chart is SVG drawn on the server
(``console.charts``; no script, nothing from elsewhere) with a table of the same numbers under
it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from flask import render_template, request
from flask_babel import format_date, gettext, lazy_gettext

from console import nav
from console.blueprint import bp
from console.charts import bar_chart
from console.labels import kind_name, language_name, mmss
from db import db_session
from routing.reports import WAIT_BUCKETS
from routing.reports import dashboard as dashboard_report
from services import services
from staff import audit
from staff.authz import roles_required

DASHBOARD_ROLES = ("supervisor", "auditor", "admin")
DEFAULT_DAYS = 14
MAX_DAYS = 92

nav.add_link("console.dashboard", lazy_gettext("Dashboard"), *DASHBOARD_ROLES, order=70)


def _day(name: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(request.args.get(name, "")[:10])
    except ValueError:
        return None


def day_range(today: dt.date) -> tuple[dt.date, dt.date, bool]:
    """(since, until, shortened): the form's days, in order, not past today, at most MAX_DAYS."""
    until = min(_day("until") or today, today)
    since = _day("since") or until - dt.timedelta(days=DEFAULT_DAYS - 1)
    since, until = min(since, until), max(since, until)
    shortened = (until - since).days >= MAX_DAYS
    if shortened:
        since = until - dt.timedelta(days=MAX_DAYS - 1)
    return since, until, shortened


def _percent(value: float | None) -> float | None:
    return None if value is None else round(value * 100, 1)


@bp.get("/dashboard")
@roles_required(*DASHBOARD_ROLES)
def dashboard() -> Any:
    zone = ZoneInfo(services().settings.time_zone)
    since, until, shortened = day_range(dt.datetime.now(zone).date())
    conn = db_session()
    d = dashboard_report(conn, since, until, zone)
    conn.commit()
    audit.record("dashboard.view", None, None, days=len(d.days))
    days = [format_date(day.day, "d MMM") for day in d.days]
    kinds = sorted({k for day in d.days for k in day.by_kind})
    languages = sorted({lang for day in d.days for lang in day.by_language})
    by_kind = [(str(kind_name(k)), [day.by_kind.get(k, 0) for day in d.days]) for k in kinds]
    by_language = [(str(language_name(lang)), [day.by_language.get(lang, 0) for day in d.days])
                   for lang in languages]  # fmt: skip
    sl = [_percent(day.service_level) for day in d.days]
    asa = [None if day.asa_s is None else round(day.asa_s, 1) for day in d.days]
    abandon = [_percent(day.abandonment_rate) for day in d.days]
    occupancy = sorted(
        (
            (d.handler_names.get(hid) or gettext("a handler no longer listed"), _percent(value))
            for hid, value in d.occupancy.items()
        ),
        key=lambda pair: pair[0],
    )
    waits = [count for _, count in d.wait_buckets]
    # "< 0:10" … "≥ 5:00": minutes and seconds read the same in every language
    wait_labels = [f"< {mmss(b)}" for b in WAIT_BUCKETS] + [f"≥ {mmss(WAIT_BUCKETS[-1])}"]
    if len(wait_labels) != len(waits):  # the report's buckets changed: its own labels
        wait_labels = [label for label, _ in d.wait_buckets]
    seconds = " " + gettext("s")  # the unit after a number of seconds ("с" in Ukrainian)
    charts = {
        "kind": bar_chart(days, by_kind),
        "language": bar_chart(days, by_language),
        "sl": bar_chart(days, [(gettext("Service level"), sl)], top=100, unit="%"),
        "asa": bar_chart(days, [(gettext("Average speed of answer"), asa)], unit=seconds),
        "abandon": bar_chart(days, [(gettext("Abandonment"), abandon)], top=100, unit="%"),
        "waits": bar_chart(wait_labels, [(gettext("Calls"), waits)]),
        "occupancy": bar_chart([name for name, _ in occupancy],
                               [(gettext("Occupancy"), [v for _, v in occupancy])],
                               top=100, unit="%"),
    }  # fmt: skip
    return render_template(
        "console/dashboard.html", d=d, charts=charts, since=since, until=until,
        shortened=shortened, max_days=MAX_DAYS, by_kind=by_kind, by_language=by_language,
        day_names=days, wait_labels=wait_labels, seconds=seconds,
        since_name=format_date(since, "d MMM yyyy"), until_name=format_date(until, "d MMM yyyy"),
        sl=sl, asa=asa, abandon=abandon, occupancy=occupancy,
    )  # fmt: skip
