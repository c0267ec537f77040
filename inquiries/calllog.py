"""The call log's read side: filtered, keyset-paginated lists of interactions, one inquiry's
timeline, CSV rows. SQLAlchemy Core over the connection it is given; no Flask, no auth (the
console checks roles and object access, and audits, before it calls these).

Pagination is by keyset on ``(started_at, id)`` descending, so the 2,000th page costs what the
first does (an index on ``interaction (started_at, id)``; migration 0007). A cursor is opaque
to the browser: base64 of the last row's time and id, never anything personal.

Phone numbers leave this module masked (``+7 ••• ••• 45 67``) unless the caller asks for
``full_numbers`` (roles allowed to see them; the console audits it).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, and_, bindparam, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from dataprotection import DataProtector, Sealed, mask_address
from db import Base
from inquiries.models import Caller, CallEvent, Inquiry, Interaction

_interaction = Interaction.__table__
_inquiry = Inquiry.__table__
_caller = Caller.__table__
_event = CallEvent.__table__

PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


def _routing_tables():
    """The routing package's ``queue_entry`` and ``routing_offer`` tables, from the shared
    metadata by name: inquiries sits below routing (DESIGN.md's import order) and imports none
    of it; the app registers routing's models at start-up."""
    tables = Base.metadata.tables
    return tables["queue_entry"], tables["routing_offer"]


@dataclass(frozen=True)
class CallLogFilter:
    """What the call log is narrowed to; every field optional. Times are UTC-aware."""

    since: dt.datetime | None = None
    until: dt.datetime | None = None
    channel: str | None = None
    kind: str | None = None
    language: str | None = None
    status: str | None = None  # the inquiry's status
    outcome: str | None = None
    handler_id: int | None = None


@dataclass
class CallLogRow:
    interaction_id: int
    inquiry_id: int
    started_at: dt.datetime
    channel: str
    direction: str
    call_status: str
    duration_s: int | None
    kind: str
    language: str | None
    inquiry_status: str
    outcome: str | None
    number: str  # masked unless full numbers were asked for
    waited_s: int | None = None
    handler_id: int | None = None
    queue_state: str | None = None


@dataclass
class CallLogPage:
    rows: list[CallLogRow]
    next_cursor: str | None
    extra: dict[str, Any] = field(default_factory=dict)


def encode_cursor(started_at: dt.datetime, interaction_id: int) -> str:
    raw = f"{started_at.isoformat()}|{interaction_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> tuple[dt.datetime, int] | None:
    """The (time, id) a cursor stands for; None for a missing or malformed one."""
    if not cursor or len(cursor) > 200:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        when, _, ident = raw.partition("|")
        parsed = dt.datetime.fromisoformat(when)
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)), int(ident)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None


def inquiries_of_handler(handler_id: Any) -> Select:
    """The ids of the inquiries a handler took part in (connected to, or accepted an offer for,
    one of its calls): a small set, evaluated once, rather than a check per logged call."""
    entry, offer = _routing_tables()
    via_entry = (
        select(_interaction.c.inquiry_id)
        .join(entry, entry.c.interaction_id == _interaction.c.id)
        .where(entry.c.handler_id == handler_id)
    )
    via_offer = (
        select(_interaction.c.inquiry_id)
        .join(offer, offer.c.interaction_id == _interaction.c.id)
        .where(offer.c.handler_id == handler_id, offer.c.state == "accepted")
    )
    return via_entry.union(via_offer)


#: The filter fields that are equality tests, and their columns (``entry``: the queue entry).
_EQUAL = ("channel", "kind", "language", "status", "outcome", "handler_id")


def _equal_column(name: str, entry: Table) -> Any:
    return {
        "channel": _interaction.c.channel, "kind": _inquiry.c.kind,
        "language": _inquiry.c.language, "status": _inquiry.c.status,
        "outcome": _inquiry.c.outcome, "handler_id": entry.c.handler_id,
    }[name]  # fmt: skip


@functools.lru_cache(maxsize=512)
def _statement(present: frozenset[str], restricted: bool, after: bool, limit: int | None) -> Select:
    """The call log's SELECT for one shape of filter (which fields are set, a handler's view,
    a cursor, a page size), values left as bound parameters. Built once per shape: building a
    SELECT and its cache key cost about as much as a page's rows (``bench/console.py``)."""
    entry, _ = _routing_tables()
    columns = (
        _interaction.c.id, _interaction.c.inquiry_id, _interaction.c.started_at,
        _interaction.c.channel, _interaction.c.direction, _interaction.c.status,
        _interaction.c.duration_s, _inquiry.c.kind, _inquiry.c.language,
        _inquiry.c.status.label("inquiry_status"), _inquiry.c.outcome,
        _caller.c.number_hash, _caller.c.number_ciphertext, _caller.c.number_key_id,
        _caller.c.withheld, entry.c.enqueued_at, entry.c.connected_at,
        entry.c.ended_at.label("queue_ended_at"), entry.c.handler_id,
        entry.c.state.label("queue_state"),
    )  # fmt: skip
    query = (
        select(*columns)
        .join(_inquiry, _inquiry.c.id == _interaction.c.inquiry_id)
        .join(_caller, _caller.c.id == _inquiry.c.caller_id)
        .outerjoin(entry, entry.c.interaction_id == _interaction.c.id)
    )
    conditions = []
    if "since" in present:
        conditions.append(_interaction.c.started_at >= bindparam("f_since"))
    if "until" in present:
        conditions.append(_interaction.c.started_at < bindparam("f_until"))
    for name in _EQUAL:
        if name in present:
            conditions.append(_equal_column(name, entry) == bindparam(f"f_{name}"))
    if restricted:
        conditions.append(
            _interaction.c.inquiry_id.in_(inquiries_of_handler(bindparam("f_visible_to")))
        )
    if after:
        when, ident = bindparam("after_when"), bindparam("after_id")
        conditions.append(
            or_(
                _interaction.c.started_at < when,
                and_(_interaction.c.started_at == when, _interaction.c.id < ident),
            )
        )
    if conditions:
        query = query.where(*conditions)
    if limit is not None:
        query = query.order_by(_interaction.c.started_at.desc(), _interaction.c.id.desc()).limit(
            limit
        )
    return query


def _query(
    flt: CallLogFilter,
    visible_to_handler: int | None,
    *,
    after: tuple[dt.datetime, int] | None = None,
    limit: int | None = None,
) -> tuple[Select, dict[str, Any]]:
    """The call log's SELECT for ``flt`` and its parameters; with ``limit``, newest first and
    that many rows (after the keyset position ``after``)."""
    params: dict[str, Any] = {}
    for name in ("since", "until", *_EQUAL):
        value = getattr(flt, name)
        if value is not None:
            params[f"f_{name}"] = value
    if visible_to_handler is not None:
        params["f_visible_to"] = visible_to_handler
    if after is not None:
        params["after_when"], params["after_id"] = after
    present = frozenset(name[2:] for name in params if name.startswith("f_"))
    statement = _statement(present, visible_to_handler is not None, after is not None, limit)
    return statement, params


def _number(protector: DataProtector, row: Any, full: bool) -> str:
    if row.withheld:
        return "withheld"
    if row.number_ciphertext is None or row.number_key_id is None:
        return "erased"
    sealed = Sealed(row.number_key_id, row.number_ciphertext)
    address = protector.open_text(sealed, associated=row.number_hash.encode())
    return address if full else mask_address(address)


def _row(protector: DataProtector, row: Any, full: bool) -> CallLogRow:
    waited = None
    if row.enqueued_at is not None:
        end = row.connected_at or row.queue_ended_at
        if end is not None:
            waited = max(0, round((end - row.enqueued_at).total_seconds()))
    return CallLogRow(
        interaction_id=row.id, inquiry_id=row.inquiry_id, started_at=row.started_at,
        channel=row.channel, direction=row.direction, call_status=row.status,
        duration_s=row.duration_s, kind=row.kind, language=row.language,
        inquiry_status=row.inquiry_status, outcome=row.outcome,
        number=_number(protector, row, full), waited_s=waited, handler_id=row.handler_id,
        queue_state=row.queue_state,
    )  # fmt: skip


def list_interactions(
    conn: Session,
    protector: DataProtector,
    flt: CallLogFilter,
    *,
    cursor: str | None = None,
    limit: int = PAGE_SIZE,
    visible_to_handler: int | None = None,
    full_numbers: bool = False,
) -> CallLogPage:
    """One page of the call log, newest first; ``next_cursor`` continues after its last row."""
    limit = max(1, min(MAX_PAGE_SIZE, limit))
    query, params = _query(flt, visible_to_handler, after=decode_cursor(cursor), limit=limit + 1)
    rows = conn.execute(query, params).all()
    page = [_row(protector, row, full_numbers) for row in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor(last.started_at, last.id)
    return CallLogPage(page, next_cursor)


def csv_rows(
    conn: Session,
    protector: DataProtector,
    flt: CallLogFilter,
    *,
    visible_to_handler: int | None = None,
    full_numbers: bool = False,
    batch: int = 500,
) -> Iterator[list[str]]:
    """The header, then every matching interaction, newest first, read ``batch`` at a time;
    every cell ``spreadsheet_safe``."""
    yield [
        "interaction", "inquiry", "started_at", "channel", "direction", "call_status",
        "duration_s", "kind", "language", "inquiry_status", "outcome", "waited_s", "handler",
        "number",
    ]  # fmt: skip
    cursor = None
    while True:
        page = list_interactions(
            conn, protector, flt, cursor=cursor, limit=batch,
            visible_to_handler=visible_to_handler, full_numbers=full_numbers,
        )  # fmt: skip
        for r in page.rows:
            yield [spreadsheet_safe(cell) for cell in (
                str(r.interaction_id), str(r.inquiry_id), r.started_at.isoformat(), r.channel,
                r.direction, r.call_status, _text(r.duration_s), r.kind, r.language or "",
                r.inquiry_status, r.outcome or "", _text(r.waited_s), _text(r.handler_id),
                r.number,
            )]  # fmt: skip
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


#: A cell starting with one of these is a formula to a spreadsheet (Excel, LibreOffice Calc,
#: Google Sheets): OWASP's "CSV Injection" list (= + - @, tab, carriage return), with NUL
#: (ASVS 1.2.10) and line feed.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "\0")


def spreadsheet_safe(cell: str) -> str:
    """``cell`` as a spreadsheet shows it but never runs it: a leading single quote (the "this is
    text" mark) when it starts like a formula. A caller's number is whatever the carrier passed
    as ``From`` (a SIP caller chooses it), so ``=HYPERLINK(…)`` can reach the export;
    E.164 numbers start with ``+`` and get the quote too (Excel hides it and keeps the ``+``)."""
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


def _text(value: object) -> str:
    return "" if value is None else str(value)


@dataclass
class TimelineItem:
    time: dt.datetime
    interaction_id: int | None
    kind: str  # "event" here; the console adds notes and recordings
    name: str
    data: dict[str, Any]


@dataclass
class InquiryDetail:
    inquiry: Any
    number: str
    interactions: list[Any]
    timeline: list[TimelineItem]


def inquiry_detail(
    conn: Session, protector: DataProtector, inquiry_id: int, *, full_number: bool = False
) -> InquiryDetail | None:
    """The case: its fields, the caller's (masked) number, its calls and every event in order."""
    inquiry = conn.execute(
        select(_inquiry, _caller.c.number_hash, _caller.c.number_ciphertext,
               _caller.c.number_key_id, _caller.c.withheld)
        .join(_caller, _caller.c.id == _inquiry.c.caller_id)
        .where(_inquiry.c.id == inquiry_id)
    ).first()  # fmt: skip
    if inquiry is None:
        return None
    entry, _ = _routing_tables()
    interactions = conn.execute(
        select(_interaction, entry.c.enqueued_at, entry.c.connected_at, entry.c.handler_id,
               entry.c.state.label("queue_state"))
        .outerjoin(entry, entry.c.interaction_id == _interaction.c.id)
        .where(_interaction.c.inquiry_id == inquiry_id)
        .order_by(_interaction.c.started_at, _interaction.c.id)
    ).all()  # fmt: skip
    ids = [row.id for row in interactions]
    events = (
        conn.execute(
            select(_event.c.time, _event.c.interaction_id, _event.c.event, _event.c.data)
            .where(_event.c.interaction_id.in_(ids))
            .order_by(_event.c.time, _event.c.id)
        ).all()
        if ids
        else []
    )
    timeline = [
        TimelineItem(row.time, row.interaction_id, "event", row.event, dict(row.data or {}))
        for row in events
    ]
    return InquiryDetail(inquiry, _number(protector, inquiry, full_number), interactions, timeline)
