"""Admin page: the retention periods in force, where each comes from, and changing them.

Each period is the environment's value unless an admin set one here (``recordings.
retention_policy``); a blank field goes back to the environment's value. The form is saved
whole or not at all; every change is a ``retention.change`` audit row with the old and new
values, in the same transaction.
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext, lazy_gettext

from console import nav
from console.blueprint import bp
from db import db_session
from recordings.models import RETENTION_MAX_DAYS, RETENTION_NAMES
from recordings.retention_policy import (
    ENVIRONMENT_NAMES,
    RetentionValueError,
    parse_days,
    periods,
    set_period,
)
from services import services
from staff.authz import current_staff, roles_required

nav.add_link("console.admin_retention", lazy_gettext("Retention"), "admin", order=905)

LABELS = {
    "recording_retention_days_message": lazy_gettext("Messages left in the message box"),
    "recording_retention_days_conversation": lazy_gettext("Recorded conversations"),
    "personal_data_retention_days": lazy_gettext("Callers' numbers and case notes"),
}
HINTS = {
    "recording_retention_days_message": lazy_gettext("days after the recording"),
    "recording_retention_days_conversation": lazy_gettext("days after the recording"),
    "personal_data_retention_days": lazy_gettext("days after the caller's last call"),
}
assert set(LABELS) == set(HINTS) == set(RETENTION_NAMES)


def _error_message(error: RetentionValueError) -> str:
    if error.reason == "range":
        return gettext("Enter a number from 0 to %(max)s.", max=RETENTION_MAX_DAYS)
    return gettext("Enter a whole number of days (0 keeps forever), or leave it blank.")


def _page(form: dict[str, str] | None = None, errors: dict[str, str] | None = None) -> Any:
    current = periods(db_session(), services().settings)
    values = {
        name: "" if period.override is None else str(period.override)
        for name, period in current.items()
    }
    values.update(form or {})  # what was typed, shown again with its error
    return render_template(
        "console/admin/retention.html", periods=current, values=values, errors=errors or {},
        labels=LABELS, hints=HINTS, env_names=ENVIRONMENT_NAMES, max_days=RETENTION_MAX_DAYS,
    )  # fmt: skip


@bp.get("/admin/retention")
@roles_required("admin")
def admin_retention() -> Any:
    return _page()


@bp.post("/admin/retention")
@roles_required("admin")
def admin_retention_post() -> Any:
    chosen: dict[str, int | None] = {}
    errors: dict[str, str] = {}
    form = {name: request.form[name][:32] for name in RETENTION_NAMES if name in request.form}
    for name, raw in form.items():  # a field not sent at all is left as it is
        try:
            chosen[name] = parse_days(raw)
        except RetentionValueError as error:
            errors[name] = _error_message(error)
    if errors:
        return _page(form, errors), 400
    db = db_session()
    me = current_staff()
    settings = services().settings
    changed = [
        name
        for name, days in chosen.items()
        if set_period(db, settings, name, days, actor=me.id if me else None)
    ]
    db.commit()
    if changed:
        flash(gettext("Retention changed."), "info")
    else:
        flash(gettext("Nothing changed."), "info")
    return redirect(url_for("console.admin_retention"))
