"""The supervisor's live queue board and the dashboard.

The board (``routing.reports.board``) refreshes itself every few seconds through
``static/live.js``; a supervisor may put a handler on break or back (audited). The dashboard
(``routing.reports.dashboard``) draws its charts as SVG on the server: no chart library, nothing
fetched from elsewhere, and a table with the same numbers under each chart.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import redis
from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext, lazy_gettext

from console import nav
from console.blueprint import bp
from console.duty_views import change_presence
from extensions import db_connection, services
from routing.reports import board as board_report
from routing.reports import dashboard as dashboard_report
from routing.service import routing_core
from staff import audit
from staff.authz import roles_required

BOARD_ROLES = ("supervisor", "admin")
DASHBOARD_ROLES = ("supervisor", "auditor", "admin")
MAX_DAYS = 92

nav.add_link("console.board_page", lazy_gettext("Queue board"), *BOARD_ROLES, order=60)
nav.add_link("console.dashboard", lazy_gettext("Dashboard"), *DASHBOARD_ROLES, order=70)


def _board_data() -> dict[str, Any]:
    svc = services()
    core = routing_core(svc.settings, svc.redis)
    try:
        core.redis.ping()
    except redis.RedisError:
        core = None  # presences from the database, marked as such
    conn = db_connection()
    data = {"b": board_report(conn, core), "live_presence": core is not None}
    conn.commit()
    return data


@bp.get("/board")
@roles_required(*BOARD_ROLES)
def board_page() -> Any:
    return render_template("console/board.html", **_board_data())


@bp.get("/board/live")
@roles_required(*BOARD_ROLES)
def board_live() -> Any:
    return render_template("console/board_live.html", **_board_data())


@bp.post("/board/handlers/<int:handler_id>/presence")
@roles_required(*BOARD_ROLES)
def board_presence(handler_id: int) -> Any:
    presence = request.form.get("presence", "")
    if presence not in ("available", "break"):
        flash(gettext("That presence cannot be chosen."), "error")
        return redirect(url_for("console.board_page"))
    reason = request.form.get("reason", "").strip()[:200] or None
    problem = change_presence(handler_id, presence, reason)
    audit.record("handler.presence", "handler", handler_id, presence=presence, by="supervisor")
    flash(problem or gettext("Presence: %(presence)s", presence=presence),
          "error" if problem else "ok")  # fmt: skip
    return redirect(url_for("console.board_page"))


def _day(name: str, default: dt.date) -> dt.date:
    try:
        return dt.date.fromisoformat(request.args.get(name, "")[:10])
    except ValueError:
        return default


def bars(values: list[float], *, width: int = 600, height: int = 120) -> list[dict[str, float]]:
    """Bar geometry for an SVG chart (x, y, w, h), scaled to the largest value."""
    if not values:
        return []
    top = max(values) or 1
    step = width / len(values)
    room = height - 14  # the bottom line keeps the labels
    shapes = []
    for i, value in enumerate(values):
        h = round(value / top * room, 1)
        shapes.append({"x": round(i * step + 1, 1), "w": round(max(step - 2, 1), 1), "h": h,
                       "y": round(room - h, 1)})  # fmt: skip
    return shapes


@bp.get("/dashboard")
@roles_required(*DASHBOARD_ROLES)
def dashboard() -> Any:
    today = dt.datetime.now(dt.UTC).date()
    until = min(_day("until", today), today)
    since = _day("since", until - dt.timedelta(days=13))
    since = max(min(since, until), until - dt.timedelta(days=MAX_DAYS - 1))
    conn = db_connection()
    d = dashboard_report(conn, since, until)
    conn.commit()
    audit.record("dashboard.view", None, None, days=len(d.days))
    charts = {
        "calls": bars([day.calls for day in d.days]),
        "sl": bars([(day.service_level or 0) * 100 for day in d.days]),
        "asa": bars([day.asa_s or 0 for day in d.days]),
        "abandon": bars([(day.abandonment_rate or 0) * 100 for day in d.days]),
        "waits": bars([count for _, count in d.wait_buckets]),
    }
    return render_template(
        "console/dashboard.html", d=d, charts=charts, since=since, until=until,
        kinds=sorted({k for day in d.days for k in day.by_kind}),
        languages=sorted({lang for day in d.days for lang in day.by_language}),
    )  # fmt: skip
