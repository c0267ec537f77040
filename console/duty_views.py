"""The handler's page: their presence, the call offered or in progress with its case (language,
topic, menu answers, wait, earlier calls, notes, outcome), and the wrap-up countdown.

The page refreshes its "current" panel by itself (``static/live.js``); without script, a link
reloads it. Presence changes go the same way as the CLI's: the database first, then the routing
core, a ringing offer withdrawn, a dispatch for whoever waits.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import Any

import redis
from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext, lazy_gettext
from sqlalchemy import Connection, select

from console import nav
from console.blueprint import bp
from extensions import db_connection, db_session, services
from inquiries.calllog import InquiryDetail, inquiry_detail
from inquiries.models import CallEvent, Interaction
from inquiries.notes import Note, notes_of
from routing import offers
from routing.models import Offer, QueueEntry
from routing.service import HandlerNotFound, routing_core, set_presence
from staff import audit
from staff.authz import current_staff, roles_required

nav.add_link("console.duty", lazy_gettext("My calls"), "handler", order=50)

CHOSEN = ("available", "break", "offline")
_offer = Offer.__table__
_entry = QueueEntry.__table__
_event = CallEvent.__table__


@dataclass
class Current:
    what: str  # "offer", "call", "calling_back", or "" (nothing now)
    interaction_id: int | None = None
    detail: InquiryDetail | None = None
    notes: list[Note] | None = None
    waited_s: int | None = None


def _core():
    svc = services()
    return routing_core(svc.settings, svc.redis)


def presence_of(handler_id: int) -> tuple[str, str | None]:
    try:
        return _core().presence(str(handler_id))
    except redis.RedisError:
        return ("unknown", None)


def current_for(conn: Connection, handler_id: int) -> Current:
    """The call offered to or taken by this handler now, with its case."""
    now = dt.datetime.now(dt.UTC)
    entry = conn.execute(
        select(_entry)
        .where(_entry.c.handler_id == handler_id,
               _entry.c.state.in_(("connected", "calling_back")))
        .order_by(_entry.c.id.desc())
    ).first()  # fmt: skip
    what = "call" if entry is not None and entry.state == "connected" else "calling_back"
    interaction_id = entry.interaction_id if entry is not None else None
    if entry is None:
        pending = conn.execute(
            select(_offer.c.interaction_id)
            .where(_offer.c.handler_id == handler_id, _offer.c.state.in_(offers.PENDING))
            .order_by(_offer.c.id.desc())
        ).first()
        if pending is None:
            return Current("")
        what, interaction_id = "offer", pending.interaction_id
        entry = offers.entry_row(conn, interaction_id)
    inquiry_id = conn.execute(
        select(Interaction.inquiry_id).where(Interaction.id == interaction_id)
    ).scalar_one()
    protector = services().protector
    detail = inquiry_detail(conn, protector, inquiry_id)
    waited = None
    if entry is not None:
        until = offers.aware(entry.connected_at) if entry.connected_at else now
        waited = max(0, int((until - offers.aware(entry.enqueued_at)).total_seconds()))
    return Current(what, interaction_id, detail, notes_of(conn, protector, inquiry_id), waited)


def wrap_up_left(conn: Connection, handler_id: int, presence: str) -> int | None:
    """Seconds of wrap-up left, from the last completed call's time and wrap-up length."""
    if presence != "wrap_up":
        return None
    for when, data in conn.execute(
        select(_event.c.time, _event.c.data)
        .where(_event.c.event.in_(("COMPLETECALLER", "COMPLETEAGENT")))
        .order_by(_event.c.id.desc())
        .limit(200)
    ):
        if isinstance(data, dict) and data.get("handler_id") == handler_id:
            end = offers.aware(when) + dt.timedelta(seconds=int(data.get("wrapup_s") or 0))
            return max(0, int((end - dt.datetime.now(dt.UTC)).total_seconds()))
    return 0


def _page_data() -> dict[str, Any]:
    me = current_staff()
    if me.handler_id is None:
        return {"handler_id": None}
    conn = db_connection()
    presence, reason = presence_of(me.handler_id)
    current = current_for(conn, me.handler_id)
    conn.commit()
    if current.detail is not None:
        audit.record("inquiry.view", "inquiry", current.detail.inquiry.id, via="duty")
    return {
        "handler_id": me.handler_id, "presence": presence, "reason": reason,
        "current": current, "wrap_up_left": wrap_up_left(conn, me.handler_id, presence),
        "outcomes": services().settings.case_outcomes, "chosen": CHOSEN,
    }  # fmt: skip


@bp.get("/duty")
@roles_required("handler")
def duty() -> Any:
    return render_template("console/duty.html", **_page_data())


@bp.get("/duty/live")
@roles_required("handler")
def duty_live() -> Any:
    return render_template("console/duty_current.html", **_page_data())


def change_presence(handler_id: int, presence: str, reason: str | None) -> str | None:
    """Database, then core; a ringing offer withdrawn; a dispatch. An error message or None."""
    try:
        result = set_presence(db_session(), _core(), handler_id, presence, reason)
    except HandlerNotFound:
        return gettext("No such handler.")
    except ValueError:
        return gettext("That presence cannot be chosen.")
    except redis.RedisError:
        return gettext("Saved, but routing did not hear of it yet; it will catch up.")
    if result.core.withdrawn:
        offers.cancel_offers(db_connection(), int(result.core.withdrawn), [str(handler_id)])
    if presence == "available" or result.core.withdrawn:
        offers.enqueue_dispatch(f"presence:{handler_id}:{int(time.time() * 1000)}")
    return None


@bp.post("/duty/presence")
@roles_required("handler")
def duty_presence() -> Any:
    me = current_staff()
    presence = request.form.get("presence", "")
    reason = request.form.get("reason", "").strip()[:200] or None
    if me.handler_id is None or presence not in CHOSEN:
        flash(gettext("That presence cannot be chosen."), "error")
        return redirect(url_for("console.duty"))
    problem = change_presence(me.handler_id, presence, reason)
    audit.record("handler.presence", "handler", me.handler_id, presence=presence)
    flash(problem or gettext("Presence: %(presence)s", presence=presence),
          "error" if problem else "ok")  # fmt: skip
    return redirect(url_for("console.duty"))
