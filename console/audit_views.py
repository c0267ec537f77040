"""The audit log for auditors: newest first, filtered by staff member, action and dates.

Read as sentences (``console.audit_labels``): who (their name), did what ("Viewed a case"), to
what ("case 12", a staff account or a handler by name), with which details in words; times in
the hotline's time zone. The stored row (action code and details) is behind a toggle."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from flask import render_template, request
from sqlalchemy import func, select

from console.audit_labels import ACTION_NAMES, action_name, detail_pairs, object_name
from console.blueprint import bp
from db import db_session
from routing.models import Handler
from services import services
from staff.authz import roles_required
from staff.models import AuditEvent, StaffUser

PAGE_SIZE = 50


def _date(value: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _start_of(day: dt.date) -> dt.datetime:
    """Midnight of ``day`` in the hotline's time zone (the days the page shows)."""
    local = dt.datetime.combine(day, dt.time.min, tzinfo=ZoneInfo(services().settings.time_zone))
    return local.astimezone(dt.UTC)


def _names(db, rows) -> tuple[dict[tuple[str, str], str], dict[int, str]]:
    """Names for the objects that are people (staff accounts, handlers) and the handlers the
    details mention."""
    staff_ids = {int(e.object_id) for e, _u, _n in rows
                 if e.object_type == "staff_user" and (e.object_id or "").isdigit()}  # fmt: skip
    handler_ids = {int(e.object_id) for e, _u, _n in rows
                   if e.object_type == "handler" and (e.object_id or "").isdigit()}  # fmt: skip
    for e, _u, _n in rows:
        value = (e.details or {}).get("handler_id")
        if isinstance(value, int):
            handler_ids.add(value)
    objects: dict[tuple[str, str], str] = {}
    if staff_ids:
        for uid, name in db.execute(select(StaffUser.id, StaffUser.display_name)
                                    .where(StaffUser.id.in_(staff_ids))):  # fmt: skip
            objects[("staff_user", str(uid))] = name
    handlers: dict[int, str] = {}
    if handler_ids:
        for hid, name in db.execute(select(Handler.id, Handler.display_name)
                                    .where(Handler.id.in_(handler_ids))):  # fmt: skip
            handlers[hid] = name
            objects[("handler", str(hid))] = name
    return objects, handlers


@bp.get("/audit")
@roles_required("auditor")
def audit_log() -> Any:
    db = db_session()
    args = request.args
    username = args.get("user", "").strip().lower()[:64]
    action = args.get("action", "").strip()[:64]
    since, until = _date(args.get("since")), _date(args.get("until"))
    page = max(1, min(args.get("page", 1, type=int) or 1, 10_000))

    query = select(AuditEvent, StaffUser.username, StaffUser.display_name).outerjoin(
        StaffUser, StaffUser.id == AuditEvent.staff_user_id
    )
    if username:
        query = query.where(StaffUser.username == username)
    if action:  # "login" matches login.success and login.failure; "login.failure" only that
        prefix = AuditEvent.action.startswith(action + ".", autoescape=True)
        query = query.where((AuditEvent.action == action) | prefix)
    if since:
        query = query.where(AuditEvent.time >= _start_of(since))
    if until:  # the whole day of ``until``
        query = query.where(AuditEvent.time < _start_of(until + dt.timedelta(days=1)))
    total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = db.execute(
        query.order_by(AuditEvent.id.desc()).limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)
    ).all()
    filters = {"user": username, "action": action, "since": args.get("since", "")[:10],
               "until": args.get("until", "")[:10]}  # fmt: skip
    pages = max(1, -(-total // PAGE_SIZE))
    objects, handlers = _names(db, rows)
    shown = [
        {"event": event, "username": username, "name": name or username,
         "action": action_name(event.action),
         "object": object_name(event.object_type, event.object_id, objects),
         "details": detail_pairs(event.details, handlers)}
        for event, username, name in rows
    ]  # fmt: skip
    actions = sorted(ACTION_NAMES.items(), key=lambda pair: str(pair[1]))
    staff = db.execute(
        select(StaffUser.username, StaffUser.display_name).order_by(StaffUser.display_name)
    ).all()
    db.commit()
    return render_template(
        "console/audit.html", rows=shown, filters=filters, page=page, pages=pages, total=total,
        actions=actions, staff=staff,
    )  # fmt: skip
