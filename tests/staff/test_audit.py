"""The audit log: who, what, when, from where; append-only in the database itself."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.exc import DBAPIError

from app import run_migrations
from db import db_session
from staff import audit
from staff.authz import login_required
from staff.models import AuditEvent
from tests.staff.support import make_user, sign_in


def events(app) -> list[AuditEvent]:
    with app.app_context():
        return list(db_session().scalars(select(AuditEvent).order_by(AuditEvent.id)))


def test_record_in_a_request_names_the_staff_member_and_address(app, client) -> None:
    @login_required
    def view_case() -> str:
        audit.record("inquiry.view", "inquiry", 42, section="notes")
        return "ok"

    app.add_url_rule("/test/case", "view_case", view_case)
    user_id, _ = make_user(app, "supervisor", "olena")
    sign_in(client, app, user_id)
    assert client.get("/test/case", environ_base={"REMOTE_ADDR": "198.51.100.7"}).data == b"ok"
    event = events(app)[-1]
    assert (event.staff_user_id, event.action, event.object_type, event.object_id) == (
        user_id, "inquiry.view", "inquiry", "42",
    )  # fmt: skip
    assert event.ip == "198.51.100.7" and event.details == {"section": "notes"}
    assert event.time is not None


def test_record_outside_a_request_has_no_actor(app) -> None:
    with app.app_context():
        audit.record("retention.delete", "recording", 7, count=3)
    event = events(app)[-1]
    assert event.staff_user_id is None and event.ip is None and event.details == {"count": 3}


def test_record_joins_the_callers_transaction(app) -> None:
    with app.app_context():
        db = db_session()
        audit.record("staff.role", "staff_user", 1, using=db, actor=None)
        db.rollback()  # the change failed: its audit row goes with it
    assert events(app) == []


@pytest.mark.parametrize(
    "details",
    [{"number": "+380501234567"}, {"number": "380 50 123 45 67"}, {"numbers": ["ok", "+7 916 123"]},
     {"nested": {"a": 1}}, {"long": "x" * 201}],
)  # fmt: skip
def test_personal_data_in_details_is_refused(app, details) -> None:
    with app.app_context(), pytest.raises(ValueError):
        audit.record("inquiry.view", "inquiry", 1, **details)
    assert events(app) == []


@pytest.mark.parametrize("action", ["Inquiry.View", "inquiry view", "", "x" * 65])
def test_bad_action_names_are_refused(app, action) -> None:
    with app.app_context(), pytest.raises(ValueError):
        audit.record(action)


def assert_append_only(url: str) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO audit_event (time, action, details) VALUES (CURRENT_TIMESTAMP, 'x.y', '{}')"
                )
            )
        for statement in (
            "UPDATE audit_event SET action = 'forged.entry'",
            "DELETE FROM audit_event",
        ):
            with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
                conn.execute(text(statement))
        if engine.dialect.name == "postgresql":
            with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
                conn.execute(text("TRUNCATE audit_event"))
        with engine.connect() as conn:
            assert conn.execute(text("SELECT action FROM audit_event")).scalars().all() == ["x.y"]
    finally:
        engine.dispose()


def test_the_database_refuses_update_and_delete(app, settings) -> None:
    assert_append_only(settings.database_url)


def test_a_freshly_migrated_sqlite_database_is_append_only_too(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    run_migrations(url)
    assert_append_only(url)
