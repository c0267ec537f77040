"""Shared services: the SQLAlchemy engine and session, Redis, RQ queues, the Twilio client.

Nothing here connects at import. ``init_app`` builds the objects for one app; connections open
on first use. Every package may import this module (it imports no app package).
"""

from __future__ import annotations

import datetime as dt
import importlib
import io
import logging
import os
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import redis
from flask import Flask, Request, has_app_context
from flask.ctx import AppContext
from flask.globals import _cv_app
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from rq import Queue, Retry
from rq.job import Job, validate_job_id
from rq.serializers import DefaultSerializer
from rq.utils import get_call_string, utcformat
from rq.utils import now as rq_now
from sqlalchemy import Connection, DateTime, Engine, MetaData, TypeDecorator, create_engine, event
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from twilio.rest import Client
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.exceptions import ClientDisconnected
from werkzeug.sansio.utils import get_content_length
from werkzeug.utils import cached_property

import prepared
from dataprotection import DataProtector
from settings import Settings

log = logging.getLogger(__name__)

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

    def bind_processor(self, dialect: Any) -> Any:
        """On SQLite, a datetime goes straight to the text SQLAlchemy would store for it (UTC,
        ``YYYY-MM-DD HH:MM:SS.ffffff``) in one step instead of three; anything else, and every
        other database, through SQLAlchemy's own processors."""
        general = super().bind_processor(dialect)
        if dialect.name != "sqlite" or general is None:
            return general
        utc, datetime = dt.UTC, dt.datetime

        def process(value: Any) -> Any:
            if type(value) is not datetime:
                return general(value)
            # SQLAlchemy's "%04d-%02d-%02d %02d:%02d:%02d.%06d" in one C call (26 characters,
            # then the UTC offset of an aware value: dropped)
            if value.tzinfo is not None:
                return value.astimezone(utc).isoformat(" ", "microseconds")[:26]
            return value.isoformat(" ", "microseconds")

        return process

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value


#: Checkpoint the WAL when it reaches this many pages (SQLite's default: 1,000). Two processes
#: that write in turn keep a WAL from restarting, and past the threshold every commit starts a
#: checkpoint again, each with two fsyncs: at 1,000 pages that was one checkpoint per ~7 webhooks;
#: at 10,000 (a WAL of up to ~40 MB) a quarter as many fsyncs. With ``synchronous=NORMAL`` a
#: commit is on disk when the WAL is synced (at the next checkpoint) or written back by the OS
#: (within ~30 s on Linux), whichever comes first: at the usual load the OS comes first either
#: way; in a surge of ~1,000 webhooks/s the checkpoints come every ~0.6 s instead of ~0.06 s.
SQLITE_WAL_AUTOCHECKPOINT_PAGES = 10_000
SQLITE_BUSY_TIMEOUT_MS = 30_000


def make_engine(url: str) -> Engine:
    """An engine with the settings each database needs to behave under concurrent writers."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute(f"PRAGMA wal_autocheckpoint={SQLITE_WAL_AUTOCHECKPOINT_PAGES}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cur.close()
            record.info[prepared.BUSY_TIMEOUT_MS] = SQLITE_BUSY_TIMEOUT_MS
            record.info[prepared.BUSY_TIMEOUT_RESTORED_LAZILY] = True

        @event.listens_for(engine, "before_cursor_execute")
        def _busy_timeout_back(conn: Any, cursor: Any, *_args: Any) -> None:
            # Prepared statements may leave it at 0 (prepared.begin_immediate); SQLAlchemy's own
            # statements (the ORM, Core) rely on SQLite's busy handler.
            info = conn.connection.info
            if info.get(prepared.BUSY_TIMEOUT_OFF):
                prepared.restore_busy_timeout(cursor.connection, info)

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


def redis_url_for(settings: Settings) -> str:
    """``REDIS_URL`` if set, else the embedded redis-server's socket under ``instance/``."""
    return settings.redis_url or f"unix://{settings.embedded_redis_socket}"


class ConnectionShelf:
    """Core connections kept from one app context to the next (SQLite only; ``size`` 0: none).

    Taking a ``Connection`` from the engine and closing it costs SQLAlchemy a pool checkout and
    check-in (a new Connection object, events, the reset rollback): together about as much as
    one of a webhook's statements. SQLite has no server whose restart could leave a kept
    connection dead, so a finished context's connection is rolled back and shelved, and the
    next context takes it. PostgreSQL's go back to the pool, which pings them at checkout.
    """

    def __init__(self, engine: Engine, size: int):
        self.engine = engine
        self.size = size
        self._lock = threading.Lock()
        self._shelf: list[Connection] = []

    def take(self) -> Connection:
        if self._shelf:
            with self._lock:
                if self._shelf:
                    return self._shelf.pop()
        return self.engine.connect()

    def give_back(self, connection: Connection) -> None:
        """Roll back what the context left uncommitted, then shelve the connection or close it."""
        try:
            if connection.in_transaction():
                connection.rollback()
            if self.size and not connection.invalidated:
                with self._lock:
                    if len(self._shelf) < self.size:
                        self._shelf.append(connection)
                        return
        except Exception:  # a broken connection is not kept
            log.warning("a database connection could not be reset; it is closed", exc_info=True)
        connection.close()

    def clear(self) -> None:
        with self._lock:
            shelved, self._shelf = self._shelf, []
        for connection in shelved:
            connection.close()


@dataclass
class Services:
    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    protector: DataProtector
    connections: ConnectionShelf
    _redis: redis.Redis | None = field(default=None, repr=False)
    _twilio: Client | None = field(default=None, repr=False)
    _queue: Queue | None = field(default=None, repr=False)
    _enqueue_script: Any = field(default=None, repr=False)
    _enqueue_client: redis.Redis | None = field(default=None, repr=False)
    _enqueue_pid: int = field(default=0, repr=False)

    @property
    def redis(self) -> redis.Redis:
        if self._redis is None:
            self._redis = redis.Redis.from_url(
                redis_url_for(self.settings), socket_timeout=5, socket_connect_timeout=2
            )
        return self._redis

    @property
    def queue(self) -> Queue:
        """One per process: a Queue remembers the Redis server's version, which a new one asks
        for again (an INFO round trip) on its first enqueue."""
        if self._queue is None or self._queue.connection is not self.redis:
            self._queue = Queue(self.settings.rq_queue, connection=self.redis)
        return self._queue

    @property
    def enqueue_script(self) -> Any:
        """``enqueue``'s Lua script (EVALSHA, loaded once) on a Redis client of its own that
        keeps one connection: a pool's check-out and check-in (a pid check each, a lock, a poll
        of the socket, an event dispatched) cost ~40 µs of a webhook's enqueue. redis-py's pool
        notices a fork by itself; this client does not, so a forked child makes its own (its
        parent's socket is only closed in the child, never shut down). redis-py reconnects a
        broken connection and retries the script (idempotent: a job already waiting is left)."""
        pid = os.getpid()
        if self._enqueue_script is None or self._enqueue_pid != pid:
            client = redis.Redis.from_url(
                redis_url_for(self.settings), socket_timeout=5, socket_connect_timeout=2,
                single_connection_client=True,
            )  # fmt: skip
            self._enqueue_client, self._enqueue_pid = client, pid
            self._enqueue_script = client.register_script(_ENQUEUE_UNLESS_PENDING)
        return self._enqueue_script

    @property
    def twilio(self) -> Client:
        """twilio-python's REST client at ``TWILIO_API_BASE_URL`` (Twilio or the emulator)."""
        if self._twilio is None:
            client = Client(self.settings.twilio_account_sid, self.settings.twilio_auth_token)
            client.api.base_url = self.settings.twilio_api_base_url
            self._twilio = client
        return self._twilio

    def dispose(self) -> None:
        """Drop pooled connections (before a fork, and at shutdown)."""
        self.connections.clear()
        self.engine.dispose()
        if self._redis is not None:
            self._redis.close()
            self._redis = None
        self._queue = None
        if self._enqueue_client is not None and self._enqueue_pid == os.getpid():
            self._enqueue_client.close()
        self._enqueue_client = None
        self._enqueue_script = None


class CookieSessionOnDemand(SecureCookieSessionInterface):
    """Flask's signed-cookie session, opened only when the request carries the cookie.

    A carrier webhook never has one; Flask's own interface would still derive the signing key
    (an HMAC key derivation) for every such request before finding no cookie, and work out the
    cookie's attributes after it only to find there is nothing to save.
    """

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        name = self.get_cookie_name(app)
        if name not in request.environ.get("HTTP_COOKIE", "") or not request.cookies.get(name):
            return self.session_class()
        return super().open_session(app, request)

    def save_session(self, app: Flask, session: Any, response: Any) -> None:
        if not session and not session.modified and not session.accessed:
            return  # nothing read, nothing to set or delete
        super().save_session(app, session, response)


#: ``%XX`` escapes of ASCII bytes (either case), which stand for that one character in UTF-8.
_ASCII_ESCAPES = {spelling: chr(byte) for byte in range(128)
                  for spelling in (f"{byte:02x}", f"{byte:02X}")}  # fmt: skip


def _unquote(text: str) -> str:
    """``unquote(text, errors="werkzeug.url_quote")``: escapes of ASCII bytes (a carrier's
    ``%2B``, ``%3A``, ``%2F``) replaced directly, anything else by ``unquote``."""
    head, *chunks = text.split("%")
    out = [head]
    for chunk in chunks:
        char = _ASCII_ESCAPES.get(chunk[:2])
        if char is None:  # a UTF-8 sequence, or not an escape at all
            return unquote(text, errors="werkzeug.url_quote")
        out.append(char)
        out.append(chunk[2:])
    return "".join(out)


def _parse_urlencoded(text: str) -> dict[str, list[str]]:
    """``parse_qsl(text, keep_blank_values=True, errors="werkzeug.url_quote")`` (what werkzeug
    calls), grouped by name as a MultiDict keeps it, without a function call per name and value
    that has nothing to unquote."""
    lists: dict[str, list[str]] = {}
    for part in text.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        if "+" in name:
            name = name.replace("+", " ")
        if "%" in name:
            name = _unquote(name)
        if "+" in value:
            value = value.replace("+", " ")
        if "%" in value:
            value = _unquote(value)
        found = lists.get(name)
        if found is None:
            lists[name] = [value]
        else:
            found.append(value)
    return lists


_URLENCODED = "application/x-www-form-urlencoded"
#: The spellings carriers send, recognised without parsing the header (werkzeug's form parser
#: reads every url-encoded body as UTF-8 whatever the charset parameter says).
_URLENCODED_AS_SENT = frozenset(
    (_URLENCODED, f"{_URLENCODED}; charset=utf-8", f"{_URLENCODED}; charset=UTF-8")
)


class CarrierForm(ImmutableMultiDict[str, str]):
    """Werkzeug's immutable MultiDict, with ``getall``: the method twilio-python's
    ``RequestValidator`` asks a parameter container for first (for each parameter: a MultiDict
    has only ``getlist``, and the validator would raise and catch an AttributeError before it
    tried that). A MultiDict is a dict of lists underneath: ``getall`` gives the list itself,
    which the validator only reads."""

    getall = dict.__getitem__


class FormRequest(Request):
    """Flask's request, with small url-encoded bodies (every carrier webhook) parsed directly.

    Werkzeug's general form parser (limits, streams, a parser object) costs about twice the
    parsing itself for a 500-byte body; a body that is not url-encoded, has no length or is
    larger than ``MAX_DIRECT_FORM`` goes to it as before. The result is the same as its: a body
    that is not UTF-8 is an empty form, a percent-escape that is not UTF-8 stays escaped.
    """

    MAX_DIRECT_FORM = 64 * 1024
    parameter_storage_class = CarrierForm

    @cached_property
    def content_length(self) -> int | None:
        """Werkzeug's, read from the environ: through the headers object, the absent
        ``Transfer-Encoding`` of every carrier request is a KeyError raised and caught."""
        environ = self.environ
        return get_content_length(
            environ.get("CONTENT_LENGTH"), environ.get("HTTP_TRANSFER_ENCODING")
        )

    def _load_form_data(self) -> None:
        if "form" in self.__dict__:
            return
        length = self.content_length
        if (
            length is None
            or length > self.MAX_DIRECT_FORM
            or (
                self.environ.get("CONTENT_TYPE") not in _URLENCODED_AS_SENT
                and self.mimetype != _URLENCODED  # any other spelling: parsed
            )
        ):
            super()._load_form_data()
            return
        body = self.environ["wsgi.input"].read(length) if length else b""
        if len(body) < length:
            raise ClientDisconnected()
        try:  # exactly as werkzeug's parser: a body that is not UTF-8 is an empty form
            lists = _parse_urlencoded(body.decode())
        except ValueError:
            lists = {}
        form = self.parameter_storage_class()
        dict.update(form, lists)  # a MultiDict is a dict of lists: the parse is its content
        d = self.__dict__
        d["stream"] = io.BytesIO()  # consumed, as after werkzeug's parser
        d["form"] = form
        d["files"] = self.parameter_storage_class()

    def close(self) -> None:
        if self.__dict__.get("files"):  # no uploads, nothing to close (werkzeug checks for any)
            super().close()


def init_app(app: Flask, settings: Settings) -> Services:
    app.session_interface = CookieSessionOnDemand()
    app.request_class = FormRequest
    engine = make_engine(settings.database_url)
    services = Services(
        settings=settings,
        engine=engine,
        session_factory=sessionmaker(engine, expire_on_commit=False),
        protector=DataProtector(settings.phone_hmac_key, settings.data_keys),
        connections=ConnectionShelf(engine, size=5 if engine.dialect.name == "sqlite" else 0),
    )
    app.extensions["hotline"] = services

    @app.teardown_appcontext
    def _close_session(_exc: BaseException | None) -> None:
        g_ = app_context().g  # not the ``g`` proxy: this runs after every request
        session = g_.pop("db_session", None)
        if session is not None:
            session.close()
        connection = g_.pop("db_connection", None)
        if connection is not None:
            services.connections.give_back(connection)  # what was not committed: rolled back

    return services


def app_context() -> AppContext:
    """The current app context, from Flask's context variable: ``current_app`` and ``g`` are
    proxies that cost about a microsecond per use, and a webhook uses them a dozen times."""
    try:
        return _cv_app.get()
    except LookupError:
        raise RuntimeError("Working outside of application context.") from None


def services() -> Services:
    return app_context().app.extensions["hotline"]  # type: ignore[no-any-return]


def db_session() -> Session:
    """The database session of the current app context (closed when the context ends)."""
    ctx = app_context()
    session = ctx.g.get("db_session")
    if session is None:
        session = ctx.g.db_session = ctx.app.extensions["hotline"].session_factory()
    return session  # type: ignore[no-any-return]


def db_connection() -> Connection:
    """A Core connection for the current app context (webhooks: few statements, no ORM)."""
    ctx = app_context()
    connection = ctx.g.get("db_connection")
    if connection is None:
        connection = ctx.g.db_connection = ctx.app.extensions["hotline"].connections.take()
    return connection  # type: ignore[no-any-return]


#: Enqueue a job unless its id is already waiting, in one round trip and atomically: the status
#: check, the job hash, the queue's registration and the push (RQ's own ``unique=True`` refuses
#: any job whose hash still exists, a finished one too, for as long as its result is kept).
#: KEYS: the job hash, the queue list, the set of queues. ARGV: the job id, then field, value, …
_ENQUEUE_UNLESS_PENDING = """
local status = redis.call("HGET", KEYS[1], "status")
if status == "queued" or status == "scheduled" then
    return 0
end
redis.call("HSET", KEYS[1], unpack(ARGV, 2))
redis.call("PERSIST", KEYS[1])
redis.call("SADD", KEYS[3], KEYS[2])
redis.call("RPUSH", KEYS[2], ARGV[1])
return 1
"""
JOB_TIMEOUT_S = 120
JOB_RETRY_INTERVALS_S = [5, 30, 120, 600, 1800]


def enqueue(func: str, *args: Any, job_id: str, **kwargs: Any) -> str | None:
    """Enqueue a job by dotted path with the project's retry/timeout policy.

    Call only after the rows the job reads are committed. ``job_id`` makes a job unique: a second
    enqueue with the same id while the first is queued or scheduled is a no-op returning None
    (idempotent triggers); otherwise the job's id: the new job replaces a finished or failed one.
    """
    validate_job_id(job_id)
    services_ = services()
    queue = services_.queue
    fields = _job_hash(queue, func, args, kwargs)
    script = services_.enqueue_script
    if not script(keys=[Job.key_for(job_id), queue.key, queue.redis_queues_keys],
                  args=[job_id, *fields]):  # fmt: skip
        return None
    return job_id


_job_templates: dict[tuple[str, str], dict[str, Any]] = {}


def _job_hash(queue: Queue, func: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
    """The job's hash as RQ writes it (``Job.save``), flattened for HSET.

    RQ builds it once per function and queue (``Job.create``, ``Queue._prepare_for_queue``,
    ``Job.to_dict``); each job then differs in its times, its call and the call's description,
    filled in here as RQ fills them. Building a Job and its dict for every job cost ~100 µs per
    enqueue, ~40 µs of it zlib's default set-up for a job of a few dozen bytes.
    tests/test_enqueue.py compares the hash with RQ's own for the same job.
    """
    key = (queue.name, func)
    template = _job_templates.get(key)
    if template is None:
        job = Job.create(
            func,
            connection=queue.connection,
            timeout=JOB_TIMEOUT_S,
            result_ttl=3600,
            failure_ttl=7 * 24 * 3600,
            retry=Retry(max=len(JOB_RETRY_INTERVALS_S), interval=JOB_RETRY_INTERVALS_S),
        )
        queue._prepare_for_queue(job)  # RQ's own: origin, enqueued_at, status
        template = _job_templates[key] = {
            name: value
            for name, value in job.to_dict().items()
            if value is not None  # as RQ's scripts flatten a job for HSET
        }
    stamp = utcformat(rq_now())
    fields = {
        **template,
        "created_at": stamp,
        "enqueued_at": stamp,
        "data": _compress_job_data(DefaultSerializer.dumps((func, None, args, kwargs))),
        "description": get_call_string(func, args, kwargs, max_length=75),
    }
    return [item for pair in fields.items() for item in pair]


def _compress_job_data(data: bytes) -> bytes:
    """A zlib stream, as ``Job.to_dict`` stores the call (the worker reads it with
    ``zlib.decompress``). zlib's defaults set up ~270 KB of state per call; a 512-byte window and
    the least memory compress a job's few dozen bytes as well, in a tenth of the time."""
    packer = zlib.compressobj(1, zlib.DEFLATED, 9, 1)
    return packer.compress(data) + packer.flush()


_job_app: Flask | None = None


@contextmanager
def job_context() -> Iterator[None]:
    """An app context for an RQ job: the caller's if there is one (tests), else this process's app.

    The worker's app is built on first use inside the process that runs jobs (after any fork), so
    no connection pool is shared across a fork.
    """
    global _job_app
    if has_app_context():
        yield
        return
    if _job_app is None:
        _job_app = importlib.import_module("app").create_app()  # the composition root
    with _job_app.app_context():
        yield
