"""prepared.Prepared: the webhooks' statements run on the DB-API cursor must store and read what
SQLAlchemy itself would, take part in the Connection's transaction, and (SQLite) wait for the
write lock by polling instead of failing or sleeping in SQLite's long steps."""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import bindparam, create_engine, select, update
from sqlalchemy.types import TypeDecorator

from extensions import SQLITE_WAL_AUTOCHECKPOINT_PAGES, Base, UTCDateTime, make_engine
from inquiries.models import Caller, CallEvent, Inquiry, Interaction
from prepared import Prepared, _polling, insert_ignoring_duplicates

_event = CallEvent.__table__
_inquiry = Inquiry.__table__


@pytest.fixture
def engine(app):
    return app.extensions["hotline"].engine


def _interaction(conn) -> int:
    now = dt.datetime.now(dt.UTC)
    caller = conn.execute(
        Caller.__table__.insert().returning(Caller.__table__.c.id),
        {"number_hash": "h-prepared", "created_at": now},
    ).scalar_one()
    inquiry = conn.execute(
        _inquiry.insert().returning(_inquiry.c.id),
        {"caller_id": caller, "created_at": now, "updated_at": now},
    ).scalar_one()
    return conn.execute(
        Interaction.__table__.insert().returning(Interaction.__table__.c.id),
        {"inquiry_id": inquiry, "provider_sid": "CA" + "1" * 32, "started_at": now},
    ).scalar_one()


def test_values_are_stored_and_read_as_sqlalchemy_would(engine):
    at = dt.datetime(2026, 11, 27, 5, 30, 1, 123456, tzinfo=dt.UTC)
    data = {"node": "main", "answer": "1", "nested": [1, "два", None]}
    with engine.connect() as conn:
        interaction = _interaction(conn)
        conn.commit()
        values = {
            "interaction_id": interaction, "event": "IVR_STEP", "data": data,
            "dedupe_key": "k1", "time": at,
        }  # fmt: skip
        new_id = insert_ignoring_duplicates(conn, _event, values, "dedupe_key")
        assert isinstance(new_id, int)
        # the same dedupe key again: ignored, no id
        assert insert_ignoring_duplicates(conn, _event, values, "dedupe_key") is None
        conn.commit()
        # read back through SQLAlchemy's own execution: the same values, types included
        row = conn.execute(select(_event).where(_event.c.id == new_id)).one()
        assert (row.data, row.time, row.event) == (data, at, "IVR_STEP")
        # and read through Prepared: the JSON decoded, the datetime aware UTC
        by_id = Prepared(
            select(_event.c.data, _event.c.time, _event.c.dedupe_key).where(
                _event.c.id == bindparam("id")
            )
        )
        assert by_id.first(conn, {"id": new_id}) == (data, at, "k1")
        assert by_id.first(conn, {"id": new_id + 1000}) is None
        assert by_id.scalar(conn, {"id": new_id}) == data
        assert by_id.all(conn, {"id": new_id}) == [(data, at, "k1")]


def test_column_defaults_fill_what_the_caller_left_out_and_required_values_are_checked(engine):
    statement = Prepared(_inquiry.insert().returning(_inquiry.c.id), column_keys=("caller_id",))
    with engine.connect() as conn:
        interaction = _interaction(conn)
        caller = conn.execute(
            select(_inquiry.c.caller_id)
            .join(Interaction.__table__)
            .where(Interaction.__table__.c.id == interaction)
        ).scalar_one()
        before = dt.datetime.now(dt.UTC)
        new_id = statement.scalar(conn, {"caller_id": caller})
        row = conn.execute(select(_inquiry).where(_inquiry.c.id == new_id)).one()
        # the model's defaults: kind, priority, status, callback flag, timestamps
        assert (row.kind, row.priority, row.status, row.callback_requested) == (
            "other", 0, "new", False,
        )  # fmt: skip
        assert row.created_at >= before - dt.timedelta(seconds=1)
        with pytest.raises(KeyError, match="caller_id"):
            statement.scalar(conn, {})


def test_a_literal_in_a_statement_is_bound_and_the_row_count_returned(engine):
    reopen = Prepared(
        update(_inquiry)
        .where(_inquiry.c.id == bindparam("inquiry"), _inquiry.c.status == "new")
        .values(status="open")
    )
    with engine.connect() as conn:
        interaction = _interaction(conn)
        inquiry = conn.execute(
            select(Interaction.__table__.c.inquiry_id).where(
                Interaction.__table__.c.id == interaction
            )
        ).scalar_one()
        assert reopen.execute(conn, {"inquiry": inquiry}) == 1
        assert reopen.execute(conn, {"inquiry": inquiry}) == 0  # no longer 'new'


def test_expanding_parameters_are_refused(engine):
    statement = Prepared(select(_inquiry.c.id).where(_inquiry.c.status.in_(["new", "open"])))
    with engine.connect() as conn, pytest.raises(ValueError, match="expanding"):
        statement.first(conn)


def test_writes_belong_to_the_connections_transaction(engine):
    count = select(_event.c.id).where(_event.c.event == "TX_TEST")
    values = {"interaction_id": None, "event": "TX_TEST", "data": {}, "dedupe_key": None,
              "time": dt.datetime.now(dt.UTC)}  # fmt: skip
    with engine.connect() as conn:
        insert_ignoring_duplicates(conn, _event, values, "dedupe_key")
        assert conn.in_transaction()
        # closed without a commit: rolled back
    with engine.connect() as conn:
        assert conn.execute(count).all() == []
        insert_ignoring_duplicates(conn, _event, values, "dedupe_key")
        conn.commit()
    with engine.connect() as conn:
        assert len(conn.execute(count).all()) == 1


def _hold_write_lock(path: str, seconds: float, held: threading.Event) -> None:
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    held.set()
    time.sleep(seconds)
    other.execute("COMMIT")
    other.close()


@contextmanager
def write_lock_held_elsewhere(path: str, seconds: float) -> Iterator[None]:
    """Another connection holds ``path``'s write lock for ``seconds`` from now."""
    held = threading.Event()
    holder = threading.Thread(target=_hold_write_lock, args=(path, seconds, held))
    holder.start()
    try:
        held.wait(5)
        yield
    finally:
        holder.join()


def _lock_test_event() -> dict:
    return {"interaction_id": None, "event": "LOCK_TEST", "data": {}, "dedupe_key": None,
            "time": dt.datetime.now(dt.UTC)}  # fmt: skip


@pytest.fixture
def sqlite_file(tmp_path) -> str:
    """A SQLite database of its own (whichever database the suite runs on): the write lock."""
    path = str(tmp_path / "lock.sqlite3")
    engine = make_engine(f"sqlite:///{path}")
    Base.metadata.create_all(engine)
    engine.dispose()
    return path


def test_sqlite_write_waits_for_the_lock_and_keeps_the_busy_timeout(sqlite_file):
    engine = make_engine(f"sqlite:///{sqlite_file}")
    try:
        with write_lock_held_elsewhere(sqlite_file, 0.3), engine.connect() as conn:
            started = time.monotonic()
            assert insert_ignoring_duplicates(conn, _event, _lock_test_event(), "dedupe_key")
            waited = time.monotonic() - started
            conn.commit()
            raw = conn.connection.dbapi_connection
            left = raw.execute("PRAGMA busy_timeout").fetchone()[0]
            seen = conn.exec_driver_sql("PRAGMA busy_timeout").scalar()  # SQLAlchemy's own
            after = raw.execute("PRAGMA busy_timeout").fetchone()[0]
    finally:
        engine.dispose()
    assert 0.2 < waited < 5  # it waited for the holder, and got the lock soon after
    assert left == 0  # prepared statements poll; the busy timeout is restored lazily...
    assert seen == after == 30000  # ...before SQLAlchemy's next statement, which relies on it


def test_sqlite_busy_timeout_is_restored_at_once_on_other_engines(sqlite_file):
    engine = create_engine(f"sqlite:///{sqlite_file}", connect_args={"timeout": 7})
    try:
        with engine.connect() as conn:
            assert insert_ignoring_duplicates(conn, _event, _lock_test_event(), "dedupe_key")
            raw = conn.connection.dbapi_connection
            assert raw.execute("PRAGMA busy_timeout").fetchone()[0] == 7000  # no hook to do it
    finally:
        engine.dispose()


def _hold_exclusive(path: str, seconds: float, held: threading.Event) -> None:
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")  # readers too get "database is locked" until it closes
    held.set()
    time.sleep(seconds)
    holder.close()


def test_a_read_while_the_busy_timeout_is_off_polls_too(sqlite_file):
    held = threading.Event()
    holder = threading.Thread(target=_hold_exclusive, args=(sqlite_file, 0.3, held))
    holder.start()
    try:
        held.wait(5)
        reader = sqlite3.connect(sqlite_file, isolation_level=None, timeout=0)
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            reader.execute("SELECT count(*) FROM call_event")
        started = time.monotonic()
        cursor = reader.cursor()
        _polling(cursor, "SELECT count(*) FROM call_event", (), 5000)
        assert cursor.fetchone() == (0,)
        assert 0.1 < time.monotonic() - started < 4
        reader.close()
    finally:
        holder.join()


def test_sqlite_write_gives_up_after_the_busy_timeout(sqlite_file):
    engine = create_engine(f"sqlite:///{sqlite_file}", connect_args={"timeout": 0.2})
    try:
        with write_lock_held_elsewhere(sqlite_file, 1.0), engine.connect() as conn:
            started = time.monotonic()
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                insert_ignoring_duplicates(conn, _event, _lock_test_event(), "dedupe_key")
            assert 0.15 < time.monotonic() - started < 0.9
    finally:
        engine.dispose()


@settings(max_examples=300, deadline=None)
@given(value=st.datetimes(timezones=st.none() | st.timezones() | st.just(dt.UTC)) | st.none())
def test_utc_datetimes_are_stored_on_sqlite_as_sqlalchemys_own_processors_store_them(value):
    """extensions.UTCDateTime's one-step SQLite bind processor against SQLAlchemy's chain."""
    dialect = create_engine("sqlite://").dialect
    impl = UTCDateTime().dialect_impl(dialect)
    assert impl.bind_processor(dialect)(value) == TypeDecorator.bind_processor(impl, dialect)(value)


def test_sqlite_connections_are_set_up_for_concurrent_writers(tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'pragmas.sqlite3'}")
    try:
        with engine.connect() as conn:
            raw = conn.connection.dbapi_connection
            assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert raw.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
            checkpoint = raw.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
            assert checkpoint == SQLITE_WAL_AUTOCHECKPOINT_PAGES > 1000  # SQLite's default
            assert raw.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    finally:
        engine.dispose()
