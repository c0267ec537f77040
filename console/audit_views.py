"""The audit log for auditors: newest first, filtered by staff member, action and dates."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import render_template, request
from sqlalchemy import func, select

from console.blueprint import bp
from db import db_session
from staff.authz import roles_required
from staff.models import AuditEvent, StaffUser

PAGE_SIZE = 50


def _date(value: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _start_of(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)


@bp.get("/audit")
@roles_required("auditor")
def audit_log() -> Any:
    db = db_session()
    args = request.args
    username = args.get("user", "").strip().lower()[:64]
    action = args.get("action", "").strip()[:64]
    since, until = _date(args.get("since")), _date(args.get("until"))
    page = max(1, min(args.get("page", 1, type=int) or 1, 10_000))

    query = select(AuditEvent, StaffUser.username).outerjoin(
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
    return render_template(
        "console/audit.html", rows=rows, filters=filters, page=page, pages=pages, total=total,
    )  # fmt: skip
