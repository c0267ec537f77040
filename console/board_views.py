"""The supervisor's live queue board (``/console/board``, supervisors and admins).

``routing.reports.board``: callers waiting by language and topic (how many, the longest wait,
call-backs), each handler's presence, reason and time on the current call, today's service
level, answered, abandoned and average speed of answer. The board refreshes itself every few
seconds (``static/live.js`` fetching ``/console/board/live``; a link without script). A
supervisor may put a handler on a break (with a reason) or back to available: the same path as
the handler's own change (``console.duty_views.change_presence``), audited as
``handler.presence``.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

import redis
from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext, lazy_gettext

from console import nav
from console.blueprint import bp
from console.duty_views import change_presence, presence_of
from db import db_session
from routing.models import Handler
from routing.reports import board as board_report
from routing.service import routing_core
from services import services
from staff import audit
from staff.authz import roles_required

BOARD_ROLES = ("supervisor", "admin")

nav.add_link("console.board_page", lazy_gettext("Queue board"), *BOARD_ROLES, order=60)


def _board_data() -> dict[str, Any]:
    svc = services()
    core = routing_core(svc.settings, svc.redis)
    try:
        core.redis.ping()
    except redis.RedisError:
        core = None  # presences from the database, marked as such
    conn = db_session()
    zone = ZoneInfo(svc.settings.time_zone)
    data = {"b": board_report(conn, core, zone=zone), "live_presence": core is not None,
            "idle_s": svc.settings.staff_idle_timeout_s}  # fmt: skip
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


def _presence_now(handler_id: int) -> str:
    """The handler's presence: the core's, or the database's while Redis is down."""
    presence, _ = presence_of(handler_id)
    if presence == "unknown":
        row = db_session().get(Handler, handler_id)
        presence = row.presence if row is not None else "offline"
    return presence


@bp.post("/board/handlers/<int:handler_id>/presence")
@roles_required(*BOARD_ROLES)
def board_presence(handler_id: int) -> Any:
    """Break (with a reason) for a handler who is on duty; back to available from a break."""
    presence = request.form.get("presence", "")
    now = _presence_now(handler_id)
    refused = None
    if presence not in ("available", "break"):
        refused = gettext("That presence cannot be chosen.")
    elif presence == "available" and now != "break":
        refused = gettext("Only a handler on a break can be put back.")
    elif presence == "break" and now == "offline":
        refused = gettext("An offline handler cannot be put on a break.")
    if refused:
        flash(refused, "error")
        return redirect(url_for("console.board_page"))
    reason = request.form.get("reason", "").strip()[:200] or None
    note = change_presence(handler_id, presence, reason if presence == "break" else None)
    if note.saved:
        audit.record("handler.presence", "handler", handler_id, presence=presence,
                     previous=note.previous, via="board")  # fmt: skip
    flash(note.message, "error" if note.error else "ok")
    return redirect(url_for("console.board_page"))
