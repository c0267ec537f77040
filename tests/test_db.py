"""db: SQLite set up for several processes writing (WAL, BEGIN IMMEDIATE, the busy timeout),
UTC datetimes on both databases, insert-or-ignore, and one session per app context."""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
import time

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, select, text

from db import (
    SQLITE_WAL_AUTOCHECKPOINT_PAGES,
    UTCDateTime,
    db_session,
    insert_ignoring_duplicates,
    make_engine,
    read_only_connection,
)

metadata = MetaData()
things = Table(
    "thing",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(20), unique=True),
    Column("at", UTCDateTime()),
)


@pytest.fixture
def sqlite_engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'test.sqlite3'}")
    metadata.create_all(engine)
    yield engine
    engine.dispose()


def test_sqlite_connections_are_set_up_for_concurrent_writers(sqlite_engine):
    with sqlite_engine.connect() as conn:
        pragma = lambda name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()  # noqa: E731
        assert pragma("journal_mode") == "wal"
        assert pragma("synchronous") == 1  # NORMAL
        assert pragma("foreign_keys") == 1
        assert pragma("wal_autocheckpoint") == SQLITE_WAL_AUTOCHECKPOINT_PAGES
        assert pragma("busy_timeout") == 30_000


def test_every_transaction_takes_the_write_lock_at_its_start(sqlite_engine, tmp_path):
    """A read that later writes cannot fail half-way: another process's write waits for it."""
    with sqlite_engine.connect() as conn:
        conn.execute(select(things.c.id)).all()  # a read: the transaction began IMMEDIATE
        other = sqlite3.connect(tmp_path / "test.sqlite3", timeout=0)
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
        conn.rollback()
        other.execute("BEGIN IMMEDIATE")  # free again
        other.rollback()
        other.close()


def test_a_writer_waits_for_the_lock_instead_of_failing(sqlite_engine, tmp_path):
    holder = sqlite3.connect(
        tmp_path / "test.sqlite3", isolation_level=None, check_same_thread=False
    )
    holder.execute("BEGIN IMMEDIATE")
    threading.Timer(0.3, holder.rollback).start()
    start = time.monotonic()
    with sqlite_engine.begin() as conn:
        conn.execute(things.insert().values(name="waited"))
    assert 0.25 < time.monotonic() - start < 5
    holder.close()
    with sqlite_engine.connect() as conn:
        assert conn.execute(select(things.c.name)).scalars().all() == ["waited"]


def test_a_long_read_only_connection_leaves_the_lock_to_writers(sqlite_engine, tmp_path):
    with read_only_connection(sqlite_engine) as conn:
        conn.execute(select(things.c.id)).all()
        assert conn.in_transaction()
        writer = sqlite3.connect(tmp_path / "test.sqlite3", timeout=0, isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")  # not blocked by the reader
        writer.execute("INSERT INTO thing (name) VALUES ('meanwhile')")
        writer.execute("COMMIT")
        writer.close()


@pytest.mark.parametrize(
    "value",
    [
        dt.datetime(2026, 3, 29, 1, 30, tzinfo=dt.UTC),
        dt.datetime(2026, 3, 29, 3, 30, 0, 123456, tzinfo=dt.timezone(dt.timedelta(hours=3))),
    ],
)
def test_datetimes_come_back_aware_and_in_utc(sqlite_engine, value):
    with sqlite_engine.begin() as conn:
        conn.execute(things.insert().values(name="t", at=value))
    with sqlite_engine.connect() as conn:
        stored = conn.execute(select(things.c.at)).scalar_one()
        raw = conn.execute(text("SELECT at FROM thing")).scalar_one()
    assert stored == value and stored.tzinfo == dt.UTC
    assert "+" not in raw  # SQLite keeps the UTC time without an offset


def test_insert_ignoring_duplicates_returns_the_new_id_or_none(app):
    with app.app_context():
        session = db_session()
        assert db_session() is session  # one session for the whole context
        from inquiries.models import Caller

        table = Caller.__table__
        values = {"number_hash": "h" * 64, "created_at": dt.datetime.now(dt.UTC)}
        first = insert_ignoring_duplicates(session, table, values, "number_hash")
        again = insert_ignoring_duplicates(session, table, values, "number_hash")
        session.commit()
        assert isinstance(first, int) and again is None
    with app.app_context():
        assert db_session() is not session  # a new context, a new session
