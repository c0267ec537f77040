"""Core statements compiled once per dialect and run on the DB-API cursor: the webhooks' SQL.

A carrier webhook is a handful of short statements. Run through ``Connection.execute`` each
costs SQLAlchemy about as much again as the database's own work (cache-key generation, an
execution context, a result object); ``Prepared`` keeps SQLAlchemy's compiler and its type
processing (JSON, UTC datetimes, booleans: the same bind and result processors) and drops the
rest. The statements still run inside the ``Connection``'s transaction: ``Connection.commit``
commits them, ``close`` rolls back what was not committed.

SQLite: a write that starts a transaction takes the write lock at once (``BEGIN IMMEDIATE``),
tried again while another process holds it (``_polling``: the first ~100 tries yield the CPU,
then every ~0.1 ms, growing to 2 ms). SQLite's own busy handler sleeps 1, 2, 5, 10 … ms between
tries, while a webhook holds the lock for well under a millisecond: under load a worker would
sleep far longer than it waits. The deadline is the connection's busy timeout. A statement's
values are converted before the lock is asked for; a read outside a transaction polls the same
way while ``begin_immediate`` has left the busy timeout at 0.

Not supported (refused when the statement is prepared): expanding ``IN`` parameters and
parameters rendered at execution time. A parameter the statement needs and the caller did not
give is a ``KeyError`` unless its column has a Python-side default.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement

_MISSING = object()


class _Compiled:
    """One statement for one dialect: its SQL, how to build its parameters, its result types."""

    __slots__ = ("binds", "positional", "results", "sql")

    def __init__(self, statement: Any, dialect: Dialect, column_keys: Sequence[str] | None):
        compiled = statement.compile(dialect=dialect, column_keys=column_keys)
        if compiled.post_compile_params or compiled.literal_execute_params:
            raise ValueError("a prepared statement takes no expanding or literal-execute params")
        if getattr(compiled, "escaped_bind_names", None):
            raise ValueError("a prepared statement's bind names must not need escaping")
        self.sql: str = compiled.string
        self.positional: bool = compiled.positional
        defaults = {}  # Python-side column defaults (INSERT) / onupdate values (UPDATE)
        for column in (*compiled.insert_prefetch, *compiled.update_prefetch):
            spec = column.default if column in compiled.insert_prefetch else column.onupdate
            if spec is not None and getattr(spec, "is_scalar", False):
                defaults[column.key] = (False, spec.arg)
            elif spec is not None and getattr(spec, "is_callable", False):
                defaults[column.key] = (True, spec.arg)
        by_name: dict[str, tuple[Callable[[Any], Any] | None, Any, Any]] = {}
        for bind, name in compiled.bind_names.items():
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            default = defaults.get(name)
            value = _MISSING if bind.required or default is not None else bind.effective_value
            by_name[name] = (processor, value, default)
        names = compiled.positiontup if self.positional else list(by_name)
        self.binds = tuple((name, *by_name[name]) for name in names or ())
        columns = getattr(statement, "exported_columns", None) or ()
        self.results = tuple(
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
        )

    def parameters(self, params: Mapping[str, Any]) -> Any:
        values = []
        for name, processor, fixed, default in self.binds:
            value = params.get(name, fixed)
            if value is _MISSING:
                if default is None:
                    raise KeyError(f"no value for the statement's parameter {name!r}")
                value = default[1](None) if default[0] else default[1]
            values.append(processor(value) if processor is not None else value)
        if self.positional:
            return values
        return {bind[0]: value for bind, value in zip(self.binds, values, strict=True)}

    def row(self, raw: Sequence[Any]) -> tuple[Any, ...]:
        if not self.results:
            return tuple(raw)
        return tuple(p(v) if p is not None else v for p, v in zip(self.results, raw, strict=False))


class Prepared:
    """A Core statement (SELECT, INSERT, UPDATE, DELETE) to run often with different values.

    ``column_keys``: for an ``insert()``/``update()`` without ``.values()``, the columns the
    caller always gives (as ``Connection.execute`` would derive them from its parameters).
    """

    __slots__ = ("_by_dialect", "column_keys", "is_write", "statement")

    def __init__(self, statement: ClauseElement, column_keys: Sequence[str] | None = None):
        self.statement = statement
        self.column_keys = list(column_keys) if column_keys is not None else None
        self.is_write = bool(getattr(statement, "is_dml", False))
        self._by_dialect: dict[int, _Compiled] = {}

    def compiled(self, dialect: Dialect) -> _Compiled:
        found = self._by_dialect.get(id(dialect))
        if found is None:
            found = _Compiled(self.statement, dialect, self.column_keys)
            self._by_dialect[id(dialect)] = found
        return found

    def _run(self, conn: Connection, params: Mapping[str, Any]) -> tuple[_Compiled, Any]:
        compiled = self.compiled(conn.dialect)
        if not conn.in_transaction():
            conn.begin()  # so that Connection.commit() commits what runs here
        fairy = conn.connection
        dbapi = fairy.dbapi_connection
        cursor = dbapi.cursor()
        parameters = compiled.parameters(params)  # before the write lock: it waits for no one
        if isinstance(dbapi, sqlite3.Connection) and not dbapi.in_transaction:
            info = fairy.info
            if self.is_write:
                begin_immediate(dbapi, info)
            elif info.get(BUSY_TIMEOUT_OFF):  # a read outside a transaction: it may wait too
                _polling(cursor, compiled.sql, parameters, info[BUSY_TIMEOUT_MS])
                return compiled, cursor
        cursor.execute(compiled.sql, parameters)
        return compiled, cursor

    def execute(self, conn: Connection, params: Mapping[str, Any] | None = None) -> int:
        """Run it; the number of rows it changed (``rowcount``)."""
        _compiled, cursor = self._run(conn, params or {})
        count = cursor.rowcount
        cursor.close()
        return count

    def first(self, conn: Connection, params: Mapping[str, Any] | None = None) -> Any:
        """The first row (a tuple, values converted as SQLAlchemy would), or None."""
        compiled, cursor = self._run(conn, params or {})
        raw = cursor.fetchone()
        cursor.close()
        return None if raw is None else compiled.row(raw)

    def scalar(self, conn: Connection, params: Mapping[str, Any] | None = None) -> Any:
        """The first column of the first row, or None."""
        row = self.first(conn, params)
        return None if row is None else row[0]

    def all(self, conn: Connection, params: Mapping[str, Any] | None = None) -> list[Any]:
        compiled, cursor = self._run(conn, params or {})
        rows = cursor.fetchall()
        cursor.close()
        return [compiled.row(raw) for raw in rows]


_inserts: dict[tuple[str, str, str, tuple[str, ...]], Prepared] = {}


def insert_ignoring_duplicates(
    conn: Connection, table: Table, values: Mapping[str, Any], unique: str
) -> Any:
    """``INSERT … ON CONFLICT (unique) DO NOTHING RETURNING id``: the new row's id, or None
    when a row with the same ``unique`` value exists (carrier retries, concurrent webhooks)."""
    name = conn.dialect.name
    key = (name, table.name, unique, tuple(values))
    statement = _inserts.get(key)
    if statement is None:
        dialect = sqlite_dialect if name == "sqlite" else postgresql
        statement = Prepared(
            dialect.insert(table).on_conflict_do_nothing(index_elements=[unique])
            .returning(table.c.id),
            column_keys=tuple(values),
        )  # fmt: skip
        _inserts[key] = statement
    return statement.scalar(conn, values)


#: ``connection.info`` keys (the pool's per-connection dict). The connection's busy timeout in
#: ms; whether an engine hook restores it before SQLAlchemy's next statement (``make_engine``'s
#: engines), so that ``begin_immediate`` may leave it at 0; and whether it is at 0 now.
BUSY_TIMEOUT_MS = "busy_timeout_ms"
BUSY_TIMEOUT_RESTORED_LAZILY = "busy_timeout_restored_lazily"
BUSY_TIMEOUT_OFF = "busy_timeout_off"
_YIELDING_TRIES = 100  # ~0.3-0.5 ms of tries before the first sleep


def begin_immediate(dbapi: sqlite3.Connection, info: dict[str, Any] | None = None) -> None:
    """Start a write transaction on SQLite, polling for the write lock (see the module).

    ``info``: the connection's ``connection.info``, to remember its busy timeout instead of
    asking for it each time. On a connection whose engine restores the busy timeout before its
    own statements (``BUSY_TIMEOUT_RESTORED_LAZILY``) it is left at 0: the webhooks' statements
    (here) poll, and setting it twice per transaction costs two statements per webhook."""
    info = info if info is not None else {}
    cursor = dbapi.cursor()
    try:
        timeout_ms = _busy_timeout_ms(cursor, info)
        if not info.get(BUSY_TIMEOUT_OFF):
            cursor.execute("PRAGMA busy_timeout=0")
            info[BUSY_TIMEOUT_OFF] = True
        try:
            _polling(cursor, "BEGIN IMMEDIATE", (), timeout_ms)
        finally:
            if not info.get(BUSY_TIMEOUT_RESTORED_LAZILY):
                restore_busy_timeout(dbapi, info)
    finally:
        cursor.close()


def restore_busy_timeout(dbapi: sqlite3.Connection, info: dict[str, Any]) -> None:
    """Give the connection its busy timeout back if ``begin_immediate`` left it at 0."""
    if info.get(BUSY_TIMEOUT_OFF):
        dbapi.execute(f"PRAGMA busy_timeout={int(info[BUSY_TIMEOUT_MS])}")
        info[BUSY_TIMEOUT_OFF] = False


def _busy_timeout_ms(cursor: sqlite3.Cursor, info: dict[str, Any]) -> int:
    timeout_ms = info.get(BUSY_TIMEOUT_MS)
    if timeout_ms is None:
        cursor.execute("PRAGMA busy_timeout")
        timeout_ms = info[BUSY_TIMEOUT_MS] = cursor.fetchone()[0]
    return int(timeout_ms)


def _polling(cursor: sqlite3.Cursor, sql: str, parameters: Any, timeout_ms: int) -> None:
    """``cursor.execute``, tried again while the database is locked, up to ``timeout_ms``.

    A webhook holds the write lock for a few hundred microseconds, so the first tries only
    yield the CPU (to the lock's holder, or to whatever else is ready to run) instead of
    sleeping: a sleep, even of 0.1 ms, often outlasts the holder. Then every ~0.1 ms, growing to
    2 ms (SQLite's own busy handler would sleep 1, 2, 5, 10 … ms)."""
    deadline = time.monotonic() + timeout_ms / 1000
    tries = 0
    pause = 0.0001
    while True:
        try:
            cursor.execute(sql, parameters)
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
        tries += 1
        if tries <= _YIELDING_TRIES:
            os.sched_yield()
            continue
        time.sleep(pause)
        pause = min(pause * 1.25, 0.002)
