"""The schema: the models say what the migrations made, and the reads by time use their index."""

from __future__ import annotations

import datetime as dt

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, event, insert, text

from console.duty_views import wrap_up_left
from db import Base
from inquiries.models import QUEUE_EVENTS, CallEvent
from routing.estimate import recent_handling
from routing.metrics import OFFER_OUTCOMES, PRESENCE_EVENTS, queue_metrics
from routing.reports import dashboard
from tests.support import handles

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def test_the_models_match_the_migrated_schema(database_url):
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            differences = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_the_queue_index_holds_the_events_read_by_time_only(database_url):
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                sql = conn.execute(
                    text("SELECT sql FROM sqlite_master WHERE name = 'ix_call_event_queue'")
                ).scalar_one()
            else:
                sql = conn.execute(
                    text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_call_event_queue'")
                ).scalar_one()
    finally:
        engine.dispose()
    named = {name for name in QUEUE_EVENTS if f"'{name}'" in sql}
    assert named == set(QUEUE_EVENTS)
    assert "'IVR_STEP'" not in sql and "WHERE" in sql.upper()


def test_the_events_the_figures_name_are_queue_events():
    assert set(PRESENCE_EVENTS) | set(OFFER_OUTCOMES) <= set(QUEUE_EVENTS)


def _plans(conn, statements):
    """EXPLAIN each SELECT from call_event, on this connection (PostgreSQL: no table scans, so
    that a usable index is used however few rows the test wrote)."""
    plans = []
    if conn.dialect.name == "postgresql":
        conn.execute(text("SET LOCAL enable_seqscan = off"))
    for statement, parameters in statements:
        if "FROM call_event" not in statement:
            continue
        if conn.dialect.name == "sqlite":
            rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
            plans.append((statement, " ".join(str(row[-1]) for row in rows)))
        else:
            rows = conn.exec_driver_sql("EXPLAIN " + statement, parameters).all()
            plans.append((statement, " ".join(str(row[0]) for row in rows)))
    return plans


def test_every_read_by_time_uses_the_queue_index(app):
    svc = handles(app)
    rows = [
        {"time": NOW - dt.timedelta(minutes=m), "event": name, "data": {"handler_id": 1}}
        for m, name in enumerate([*QUEUE_EVENTS, "IVR_STEP", "IVR_ENTER", "CALL_STATUS"])
    ]
    statements: list[tuple[str, object]] = []

    def remember(_conn, _cursor, statement, parameters, _context, _many):
        statements.append((statement, parameters))

    with svc.engine.begin() as conn:
        conn.execute(insert(CallEvent.__table__), rows)
    event.listen(svc.engine, "before_cursor_execute", remember)
    try:
        with svc.engine.begin() as conn:
            recent_handling(conn)
            queue_metrics(conn, NOW - dt.timedelta(days=1), NOW)
            dashboard(conn, (NOW - dt.timedelta(days=2)).date(), NOW.date())
            wrap_up_left(conn, 1, "wrap_up")
            plans = _plans(conn, list(statements))
    finally:
        event.remove(svc.engine, "before_cursor_execute", remember)
    # the estimate, the range and the presence before it, the dashboard's days, its wait
    # buckets, the wrap-up: every read of call_event here is by time
    assert len(plans) >= 5
    for statement, plan in plans:
        assert "ix_call_event_queue" in plan, (statement, plan)
