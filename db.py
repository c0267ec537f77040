"""The database: the SQLAlchemy engine, the declarative base, and one session per request or job.

``init_app`` builds the engine and the session factory for one app; nothing connects at import.
``db_session()`` is the one database handle of the current app context (a request, a job, a CLI
command): ORM queries and Core statements alike run through it, and it is closed when the
context ends (what was not committed is rolled back). Every package may import this module.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import stat
from pathlib import Path
from typing import Any

from flask import Flask, current_app, g
from sqlalchemy import (
    Connection,
    DateTime,
    Engine,
    MetaData,
    Table,
    TypeDecorator,
    create_engine,
    event,
    make_url,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def one_of(column: str, values: tuple[str, ...]) -> str:
    """A CHECK constraint's SQL: ``column IN ('a', 'b')`` (the codes a column may hold)."""
    return f"{column} IN (" + ", ".join(f"'{v}'" for v in values) + ")"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on both databases (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
            if dialect.name == "sqlite":
                value = value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value


#: How long a SQLite write waits for another process's write to finish before it fails.
SQLITE_BUSY_TIMEOUT_S = 30
#: Checkpoint the WAL at this many pages (SQLite's default: 1,000). With several processes
#: writing in turn the WAL rarely restarts, and past the threshold every commit checkpoints
#: (two fsyncs): a larger threshold means fewer of them in a surge.
SQLITE_WAL_AUTOCHECKPOINT_PAGES = 10_000


#: An execution option: a long read (a CSV export) takes no write lock on SQLite (``BEGIN``
#: DEFERRED: WAL readers never block writers), so webhooks are not kept waiting meanwhile.
READ_ONLY = "hotline_read_only"


#: The files of a SQLite database: the database, its write-ahead log and shared memory, and the
#: rollback journal (SQLite creates each of the last three with the database file's mode).
SQLITE_FILE_SUFFIXES = ("", "-wal", "-shm", "-journal")


def private_sqlite_files(url: str) -> None:
    """A SQLite database's files readable by this user only (0600), before SQLite opens them.

    The database file is created 0600 if it does not exist (SQLite would create it with the
    umask's mode, usually 0644: readable by every local user), and an existing one, its WAL,
    shared memory and journal are narrowed to 0600. Nothing for other databases, in-memory
    SQLite or a ``file:`` URI. A file this user may not change is left as it is, with a warning.
    """
    parsed = make_url(url)
    path_text = parsed.database
    if parsed.get_backend_name() != "sqlite" or not path_text or path_text == ":memory:":
        return
    if path_text.startswith("file:"):
        return
    path = Path(path_text)
    with contextlib.suppress(OSError):  # no folder, no access: SQLite reports it when it opens
        os.close(os.open(path, os.O_RDONLY | os.O_CREAT, 0o600))  # an existing file: untouched
    for suffix in SQLITE_FILE_SUFFIXES:
        one = path.with_name(path.name + suffix)
        try:
            if stat.S_IMODE(one.stat().st_mode) & 0o077:
                one.chmod(0o600)
        except FileNotFoundError:
            continue
        except PermissionError:
            logging.getLogger(__name__).warning(
                "the database file %s is readable by others and not ours to change", one.name
            )


def make_engine(url: str) -> Engine:
    """An engine with the settings each database needs to behave under concurrent writers.

    SQLite: WAL, ``synchronous=NORMAL``, foreign keys, ``secure_delete`` (deleted and overwritten
    content is zeroed in the file, so an erased number's ciphertext or hash does not linger in a
    free page for a copy of the file to reveal), and every transaction started with
    ``BEGIN IMMEDIATE`` (SQLAlchemy's documented pysqlite recipe): a transaction takes the write
    lock when it starts, waiting up to the busy timeout, instead of failing with "database is
    locked" when a read transaction later wants to write. PostgreSQL: a pool that pings its
    connections, so a database restart costs no request.
    """
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
    private_sqlite_files(url)
    engine = create_engine(
        url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False}
    )

    @event.listens_for(engine, "connect")
    def _sqlite_settings(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # pysqlite emits no BEGIN of its own
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA wal_autocheckpoint={SQLITE_WAL_AUTOCHECKPOINT_PAGES}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection: Any) -> None:
        read_only = connection.get_execution_options().get(READ_ONLY, False)
        # on the DB-API connection (SQLAlchemy's own statement path would cost as much again
        # as the BEGIN itself; this runs for every transaction)
        connection.connection.dbapi_connection.execute("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


#: How long the checkpoint after an erasure waits for readers (holding the write lock meanwhile).
SQLITE_CHECKPOINT_WAIT_MS = 500


def truncate_wal(handle: Session | Connection | Engine) -> bool | None:
    """SQLite: copy the write-ahead log into the database file and truncate it to zero bytes.

    In WAL mode a changed page is appended to the ``-wal`` file and the database file keeps the
    old page until a checkpoint copies the new one over it: an erased number's hash would stay in
    the file (and in the log's older frames) until then. Run after an erasure; with
    ``secure_delete`` the pages copied in hold zeros where the erased values were. Waits at most
    ``SQLITE_CHECKPOINT_WAIT_MS`` for readers (a long export): False if one kept it from
    finishing (the next erasure tries again), True when done, None on other databases.
    """
    if isinstance(handle, Session):
        engine = handle.get_bind()
    elif isinstance(handle, Connection):
        engine = handle.engine
    else:
        engine = handle
    if engine.dialect.name != "sqlite":
        return None
    raw = engine.raw_connection()
    try:
        connection = raw.driver_connection
        connection.execute(f"PRAGMA busy_timeout={SQLITE_CHECKPOINT_WAIT_MS}")
        try:
            busy, _frames, _copied = connection.execute(
                "PRAGMA wal_checkpoint(TRUNCATE)"
            ).fetchone()
        finally:
            connection.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
    finally:
        raw.close()
    return busy == 0


class Database:
    """One app's engine and session factory (``app.extensions["db"]``)."""

    def __init__(self, url: str):
        self.engine = make_engine(url)
        self.session_factory = sessionmaker(self.engine, expire_on_commit=False)

    def dispose(self) -> None:
        """Close the pool's connections (before a fork, and at shutdown)."""
        self.engine.dispose()


def init_app(app: Flask, url: str) -> Database:
    database = Database(url)
    app.extensions["db"] = database

    @app.teardown_appcontext
    def _close_session(_exc: BaseException | None) -> None:
        session = g.pop("db_session", None)
        if session is not None:
            session.close()  # what was not committed is rolled back

    return database


def read_only_connection(engine: Engine) -> Connection:
    """A connection of its own for a long read (a streamed export): no write lock on SQLite.
    Use it as a context manager."""
    return engine.connect().execution_options(**{READ_ONLY: True})


def reading_only(session: Session) -> Session:
    """Mark the session's next transaction as a read (call before its first statement): on
    SQLite it takes no write lock (a plain BEGIN), so a view that only reads (a waiting
    caller's hold message) never keeps a writer waiting. A write in it may fail as "locked"."""
    session.connection(execution_options={READ_ONLY: True})
    return session


def database() -> Database:
    """The current app's database."""
    return current_app.extensions["db"]  # type: ignore[no-any-return]


def db_session() -> Session:
    """The database session of the current app context (closed when the context ends)."""
    session = g.get("db_session")
    if session is None:
        session = g.db_session = database().session_factory()
    return session  # type: ignore[no-any-return]


_INSERTS: dict[tuple[str, str, str], Any] = {}


def insert_ignoring_duplicates(
    db: Session | Connection, table: Table, values: dict[str, Any], unique: str
) -> Any:
    """``INSERT … ON CONFLICT (unique) DO NOTHING RETURNING id``: the new row's id, or None
    when a row with the same ``unique`` value exists (carrier retries, concurrent webhooks).
    Run on the session's connection (in its transaction), without the ORM's layer."""
    connection = db.connection() if isinstance(db, Session) else db
    dialect = connection.dialect.name
    key = (dialect, table.name, unique)
    statement = _INSERTS.get(key)
    if statement is None:
        insert = sqlite_insert if dialect == "sqlite" else postgresql_insert
        statement = _INSERTS[key] = (
            insert(table).on_conflict_do_nothing(index_elements=[unique]).returning(table.c.id)
        )
    return connection.execute(statement, values).scalar()


def dialect_name(handle: Session | Connection) -> str:
    """``sqlite`` or ``postgresql``, for a session or a connection."""
    if isinstance(handle, Session):
        return handle.get_bind().dialect.name
    return handle.dialect.name
