"""Rows for the handler's page, board and dashboard tests: handlers, cases in the queue, audit
rows, and HTML tables read back as lists of cells."""

from __future__ import annotations

import datetime as dt
from html.parser import HTMLParser
from itertools import count

from sqlalchemy import select

from db import db_session
from inquiries.models import Caller, Inquiry, Interaction
from routing.models import QueueEntry
from routing.service import create_handler
from staff.models import AuditEvent
from tests.support import handles

_numbers = count(1)


def handler_row(app, name: str = "Anna", languages: tuple[str, ...] = ("ru",)) -> int:
    """A routing handler (offline), reached in the browser."""
    with app.app_context():
        svc = handles(app)
        session = db_session()
        handler_id = create_handler(session, svc.protector, display_name=name,
                                    languages=list(languages), skills=["other", "family"],
                                    client=name.lower())  # fmt: skip
        session.commit()
        return handler_id


def a_case(
    app,
    *,
    handler_id: int | None = None,
    state: str = "waiting",
    kind: str = "family",
    language: str = "ru",
    waited_s: int = 75,
    earlier_calls: int = 0,
) -> tuple[int, int]:
    """A case whose newest call is queued in ``state`` (connected: to ``handler_id``), after
    ``earlier_calls`` completed ones; (inquiry id, interaction id)."""
    with app.app_context():
        session = db_session()
        n = next(_numbers)
        caller = Caller(number_hash=f"{n:064x}")
        session.add(caller)
        session.flush()
        inquiry = Inquiry(caller_id=caller.id, kind=kind, language=language)
        session.add(inquiry)
        session.flush()
        now = dt.datetime.now(dt.UTC)
        for i in range(earlier_calls):
            session.add(Interaction(inquiry_id=inquiry.id, provider_sid=f"CA{n:016x}{i:016x}",
                                    status="completed", duration_s=42,
                                    started_at=now - dt.timedelta(days=i + 1)))  # fmt: skip
        call = Interaction(inquiry_id=inquiry.id, provider_sid=f"CA{n:016x}{99:016x}",
                           status="in-progress", started_at=now - dt.timedelta(seconds=waited_s + 30),
                           ivr_path=[{"node": "language", "answer": None},
                                     {"node": "language", "answer": "1", "choice": "ru"},
                                     {"node": "main", "answer": "2", "choice": "family"}])  # fmt: skip
        session.add(call)
        session.flush()
        talking = state in ("connected", "done")
        session.add(QueueEntry(interaction_id=call.id, state=state, language=language, kind=kind,
                               enqueued_at=now - dt.timedelta(seconds=waited_s),
                               handler_id=handler_id if talking else None,
                               connected_at=now if talking else None))  # fmt: skip
        session.commit()
        return inquiry.id, call.id


def audits(app, action: str) -> list[AuditEvent]:
    with app.app_context():
        query = select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        return list(db_session().scalars(query))


class _Tables(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._table: list[list[str]] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self._table = self.tables.setdefault(dict(attrs).get("id") or "", [])
        elif tag == "tr" and self._table is not None:
            self._table.append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self._table:
            self._table[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def tables(html: str) -> dict[str, list[list[str]]]:
    """Each ``<table id=…>`` of the page as rows of cell texts (header row included)."""
    parser = _Tables()
    parser.feed(html)
    return parser.tables


def row(table: list[list[str]], first: str) -> list[str]:
    """The cells after the row's first cell, for the row whose first cell is ``first``."""
    for cells in table:
        if cells and cells[0] == first:
            return cells[1:]
    raise AssertionError(f"no row {first!r} in {table}")
