"""The blocklist page (``/console/blocklist``, supervisors and admins): numbers whose calls are
refused with ``<Reject>``, with the limits against floods and today's refused calls.

A supervisor adds a number (typed, never shown again: the page and the database keep only its
keyed hash and a hint, ``+7 …67``), a reason and how long the block lasts (at most
``BLOCKLIST_MAX_DAYS``), or removes an entry. Both are audited (``blocklist.add``,
``blocklist.remove``) with the change, in one transaction (``inquiries.blocklist``). A form
with an error is shown again without the number.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext, lazy_gettext
from sqlalchemy import select

from console import nav
from console.blueprint import bp
from dataprotection import caller_address
from db import db_session
from inquiries import blocklist
from ivr import screening
from services import services
from staff.authz import current_staff, roles_required
from staff.models import StaffUser

BLOCKLIST_ROLES = ("supervisor", "admin")
#: The durations offered (hours), within ``BLOCKLIST_MAX_DAYS``.
DURATIONS_H = (1, 24, 7 * 24, 30 * 24, 90 * 24, 365 * 24)
DURATION_NAMES = {
    1: lazy_gettext("1 hour"),
    24: lazy_gettext("1 day"),
    7 * 24: lazy_gettext("7 days"),
    30 * 24: lazy_gettext("30 days"),
    90 * 24: lazy_gettext("90 days"),
    365 * 24: lazy_gettext("365 days"),
}
REFUSAL_NAMES = {
    screening.BLOCKED: lazy_gettext("blocked numbers"),
    screening.OVER_RATE: lazy_gettext("one number over its limit"),
    screening.WITHHELD_OVER_RATE: lazy_gettext("withheld numbers over their shared limit"),
}
assert set(DURATION_NAMES) == set(DURATIONS_H) and set(REFUSAL_NAMES) == set(screening.REASONS)

nav.add_link("console.blocklist_page", lazy_gettext("Blocklist"), *BLOCKLIST_ROLES, order=70)


def _durations() -> list[int]:
    longest = services().settings.blocklist_max_days * 24
    return [hours for hours in DURATIONS_H if hours <= longest]


def _error_message(error: blocklist.BlocklistError) -> tuple[str, str]:
    """(field, message) for a refused entry."""
    if error.problem == "number":
        return "number", gettext("Enter the number in international form: + and the digits.")
    if error.problem == "withheld":
        return "number", gettext("That is the carrier's stand-in for a withheld number.")
    if error.problem == "reason":
        return "reason", gettext(
            "Give a reason of up to 200 characters, without phone numbers or long runs of digits."
        )
    if error.problem == "duration":
        return "hours", gettext("Choose one of the durations offered.")
    return "number", gettext("That number is already on the blocklist.")


def _page(form: dict[str, str] | None = None, errors: dict[str, str] | None = None) -> Any:
    db = db_session()
    entries = blocklist.entries(db)
    added_by = {
        user_id: name
        for user_id, name in db.execute(
            select(StaffUser.id, StaffUser.display_name).where(
                StaffUser.id.in_({e.created_by for e in entries if e.created_by is not None})
            )
        ).all()
    }
    db.commit()  # before rendering (SQLite: every transaction holds the write lock)
    return render_template(
        "console/blocklist.html", entries=entries, added_by=added_by, form=form or {},
        errors=errors or {}, durations=_durations(), duration_names=DURATION_NAMES,
        refusals=screening.refusals_today(), refusal_names=REFUSAL_NAMES,
        # the counters restart at midnight UTC: that moment in the hotline's time
        refusals_since=dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0),
        settings=services().settings,
        window_minutes=f"{services().settings.call_limit_window_s / 60:g}",
    )  # fmt: skip


@bp.get("/blocklist")
@roles_required(*BLOCKLIST_ROLES)
def blocklist_page() -> Any:
    return _page()


@bp.post("/blocklist")
@roles_required(*BLOCKLIST_ROLES)
def blocklist_add() -> Any:
    form = request.form
    raw_hours = form.get("hours", "")[:8]
    me = current_staff()
    db = db_session()
    try:
        number = blocklist.parse_number(form.get("number", ""))
        if caller_address(number) is None:
            raise blocklist.BlocklistError("withheld")
        hours = int(raw_hours) if raw_hours.isascii() and raw_hours.isdigit() else 0
        if hours not in _durations():
            raise blocklist.BlocklistError("duration")
        blocklist.add(
            db, services().protector, number=number, reason=form.get("reason", "")[:400],
            hours=hours, max_days=services().settings.blocklist_max_days,
            actor=me.id if me else None,
        )  # fmt: skip
    except blocklist.BlocklistError as error:
        db.rollback()
        field, message = _error_message(error)
        # shown again: the duration, and the reason unless it was refused (it may hold a
        # number); never the number
        reason = "" if field == "reason" else form.get("reason", "")[:200]
        shown = {"reason": reason, "hours": raw_hours}
        return _page(shown, {field: message}), 400
    db.commit()
    flash(gettext("The number is on the blocklist: its calls are refused."), "info")
    return redirect(url_for("console.blocklist_page"))


@bp.post("/blocklist/<int:entry_id>/remove")
@roles_required(*BLOCKLIST_ROLES)
def blocklist_remove(entry_id: int) -> Any:
    me = current_staff()
    db = db_session()
    removed = blocklist.remove(db, entry_id, actor=me.id if me else None)
    db.commit()
    if removed:
        flash(gettext("Removed from the blocklist."), "info")
    else:
        flash(gettext("No such entry: it may have expired or been removed already."), "error")
    return redirect(url_for("console.blocklist_page"))
