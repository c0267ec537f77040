"""The call log: every interaction, newest first, filtered; numbers masked; CSV export.

Handlers see the cases they took part in; supervisors, auditors and admins see all. The full
number is shown only to ``FULL_NUMBER_ROLES``, on request, and audited. Every view and export
writes an audit row with its filters (ids and short codes only).
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
from collections.abc import Callable, Iterator
from typing import Any
from zoneinfo import ZoneInfo

from flask import Response, abort, render_template, request, url_for
from flask_babel import lazy_gettext
from markupsafe import Markup
from sqlalchemy import select

from console import labels, nav
from console.blueprint import bp
from db import database, db_session, read_only_connection
from inquiries.calllog import CallLogFilter, CallLogRow, csv_rows, list_interactions
from inquiries.models import INQUIRY_KINDS, LANGUAGES
from routing.models import Handler
from routing.reports import midnight
from services import services
from staff import audit
from staff.authz import current_staff, roles_required

#: Who may see a caller's full number (on request; audited).
FULL_NUMBER_ROLES = ("supervisor", "admin")
CHANNELS = ("voice", "sms", "whatsapp", "telegram")
INQUIRY_STATUSES = ("new", "open", "resolved", "closed")
VIEW_ROLES = ("handler", "supervisor", "auditor", "admin")
EXPORT_ROLES = ("supervisor", "auditor", "admin")

nav.add_link("console.call_log", lazy_gettext("Call log"), *VIEW_ROLES, order=100)


def _choice(name: str, allowed: tuple[str, ...]) -> str | None:
    value = request.args.get(name, "").strip()
    return value if value in allowed else None


def _date(name: str) -> dt.date | None:
    value = request.args.get(name, "").strip()[:10]
    try:
        return dt.date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _day_start(day: dt.date | None) -> dt.datetime | None:
    """Midnight of ``day`` in the hotline's time zone: the form's days are the staff's days."""
    if day is None:
        return None
    return midnight(day, ZoneInfo(services().settings.time_zone))


def read_filter() -> tuple[CallLogFilter, dict[str, str]]:
    """The filter from the query string (unknown values ignored) and the form's values."""
    since, until = _date("since"), _date("until")
    handler = request.args.get("handler", "").strip()
    flt = CallLogFilter(
        since=_day_start(since),
        until=_day_start(until + dt.timedelta(days=1)) if until else None,
        channel=_choice("channel", CHANNELS),
        kind=_choice("kind", INQUIRY_KINDS),
        language=_choice("language", LANGUAGES),
        status=_choice("status", INQUIRY_STATUSES),
        outcome=_choice("outcome", tuple(getattr(services().settings, "case_outcomes", ()))),
        handler_id=int(handler) if handler.isdigit() and len(handler) < 10 else None,
    )
    form = {
        "since": since.isoformat() if since else "", "until": until.isoformat() if until else "",
        "channel": flt.channel or "", "kind": flt.kind or "", "language": flt.language or "",
        "status": flt.status or "", "outcome": flt.outcome or "",
        "handler": str(flt.handler_id) if flt.handler_id is not None else "",
    }  # fmt: skip
    return flt, form


def _audit_filters(form: dict[str, str]) -> dict[str, Any]:
    """The filters as audit details: codes and numbers only (dates as yyyymmdd ints)."""
    details: dict[str, Any] = {}
    for key, value in form.items():
        if not value:
            continue
        if key in ("since", "until"):
            details[key] = int(value.replace("-", ""))
        elif key == "handler":
            details[key] = int(value)
        else:
            details[key] = value
    return details


def rows_html(
    rows: list[CallLogRow], case_url: str, handlers: dict[int, str] | None = None
) -> Markup:
    """The table's rows, escaped and joined here: a Jinja expression per cell, or even
    ``Markup.format`` per cell, cost more than the query on a page of 50 (bench/console.py).
    Every value is escaped (``html.escape``, quotes included); a page repeats most values (the
    topic, the status…), so each distinct one is escaped once. Only the case link is built as
    markup, from an integer. Codes are shown by their names (``console.labels``), times in the
    hotline's time zone, handlers by name (``handlers``: id to display name)."""
    href = html.escape(case_url)
    names = handlers or {}
    td: dict[str, str] = {}

    def cell(value: object) -> str:
        text = str(value)
        found = td.get(text)
        if found is None:
            found = td[text] = f"<td>{html.escape(text)}</td>"
        return found

    named: dict[tuple, str] = {}

    def name(label: Callable[..., Any], *code: Any) -> str:
        """A code's cell, its name translated once per page (most codes repeat on a page)."""
        key = (label, *code)
        found = named.get(key)
        if found is None:
            found = named[key] = cell(label(*code))
        return found

    out = []
    times = labels.when_s_all([r.started_at for r in rows])
    for r, time_shown in zip(rows, times, strict=True):
        case = int(r.inquiry_id)
        handler = "" if r.handler_id is None else names.get(r.handler_id, f"#{r.handler_id}")
        out.append(
            f'<tr><td class="time">{html.escape(time_shown)}</td>'
            f'<td><a href="{href}{case}">#{case}</a></td>'
            + name(labels.call_channel_name, r.channel, r.direction) + cell(r.number)
            + name(labels.kind_name, r.kind) + name(labels.language_name, r.language)
            + name(labels.call_status_name, r.call_status)
            + cell("" if r.duration_s is None else labels.mmss(r.duration_s))
            + cell("" if r.waited_s is None else labels.mmss(r.waited_s))
            + cell(handler)
            + name(labels.case_status_name, r.inquiry_status)
            + (cell("") if not r.outcome else name(labels.outcome_name, r.outcome))
            + "</tr>\n"
        )  # fmt: skip
    return Markup("".join(out))  # noqa: S704 - every value was escaped above


def handler_choices() -> dict[int, str]:
    """Every handler (active or not: old calls name them too), id to display name."""
    return {
        row.id: row.display_name
        for row in db_session().execute(
            select(Handler.id, Handler.display_name).order_by(Handler.display_name, Handler.id)
        )
    }


def _scope() -> tuple[int | None, bool]:
    """(handler id to restrict to, or None for all; may this member see full numbers)."""
    me = current_staff()
    assert me is not None  # roles_required ran
    if me.role == "handler":
        return (me.handler_id if me.handler_id is not None else -1), False
    return None, me.role in FULL_NUMBER_ROLES


@bp.get("/calls")
@roles_required(*VIEW_ROLES)
def call_log() -> Any:
    flt, form = read_filter()
    restrict, may_see_numbers = _scope()
    full = may_see_numbers and request.args.get("numbers") == "full"
    cursor = request.args.get("after", "")[:200] or None
    page = list_interactions(
        db_session(), services().protector, flt, cursor=cursor, visible_to_handler=restrict,
        full_numbers=full,
    )  # fmt: skip
    handlers = handler_choices()
    audit.record("calllog.view", None, None, rows=len(page.rows), full_numbers=int(full),
                 **_audit_filters(form))  # fmt: skip
    return render_template(
        "console/calls.html", page=page, form=form, full=full, may_see_numbers=may_see_numbers,
        rows=rows_html(page.rows, url_for("console.inquiry", inquiry_id=0)[:-1], handlers),
        handlers=handlers,
        can_export=current_staff().role in EXPORT_ROLES, channels=CHANNELS, kinds=INQUIRY_KINDS,
        languages=LANGUAGES, statuses=INQUIRY_STATUSES,
        outcomes=tuple(getattr(services().settings, "case_outcomes", ())),
        query={k: v for k, v in form.items() if v},
    )  # fmt: skip


@bp.get("/calls.csv")
@roles_required(*EXPORT_ROLES)
def call_log_csv() -> Any:
    flt, form = read_filter()
    _, may_see_numbers = _scope()
    full = may_see_numbers and request.args.get("numbers") == "full"
    if request.args.get("numbers") == "full" and not may_see_numbers:
        abort(403)
    audit.record("calllog.export", None, None, full_numbers=int(full), **_audit_filters(form))
    svc, engine = services(), database().engine  # the stream runs after the request's context

    def generate() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        with read_only_connection(engine) as conn:  # its own: the request's ends before the stream
            for row in csv_rows(conn, svc.protector, flt, full_numbers=full):
                writer.writerow(row)
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate(0)

    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    return Response(
        generate(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="calls-{stamp}.csv"'},
    )
