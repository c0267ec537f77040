"""db_connection(): SQLite connections kept between app contexts, rolled back in between."""

from __future__ import annotations

from sqlalchemy import func, insert, select

from extensions import db_connection, services
from inquiries.models import Caller
from prepared import Prepared

_caller = Caller.__table__
_COUNT = Prepared(select(func.count()).select_from(_caller))


def add_caller(conn, number_hash: str) -> None:
    conn.execute(
        insert(_caller).values(number_hash=number_hash, created_at=func.current_timestamp())
    )


def test_a_contexts_connection_is_kept_on_sqlite_only(app) -> None:
    with app.app_context():
        first = db_connection()
        assert db_connection() is first  # one per context
    with app.app_context():
        second = db_connection()
    if services_dialect(app) == "sqlite":
        assert second is first and not first.closed
    else:  # PostgreSQL: back to the pool (which pings it at checkout)
        assert second is not first and first.closed


def test_what_a_context_left_uncommitted_is_rolled_back(app) -> None:
    with app.app_context():
        conn = db_connection()
        add_caller(conn, "a" * 64)
        assert _COUNT.scalar(conn) == 1  # written, never committed
    with app.app_context():
        conn = db_connection()
        assert _COUNT.scalar(conn) == 0
        add_caller(conn, "b" * 64)  # no lock left behind: another write goes through
        conn.commit()
    with app.app_context(), services().engine.connect() as other:
        assert _COUNT.scalar(other) == 1


def test_a_broken_connection_is_not_kept(app) -> None:
    with app.app_context():
        broken = db_connection()
        broken.invalidate()
    with app.app_context():
        fresh = db_connection()
        assert fresh is not broken and _COUNT.scalar(fresh) == 0
    assert broken.closed


def test_dispose_closes_the_kept_connections(app) -> None:
    with app.app_context():
        kept = db_connection()
        _COUNT.scalar(kept)
    app.extensions["hotline"].dispose()
    assert kept.closed


def services_dialect(app) -> str:
    return app.extensions["hotline"].engine.dialect.name
