"""The blocklist page (supervisors and admins): entries listed without their numbers (a hint: the
country code and last two digits), added and removed with a CSRF token, each change audited;
a refused form never shows the number again; the blocklist's hash is not the callers' hash."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from db import db_session, utcnow
from inquiries import blocklist
from inquiries.blocklist import BlockedNumber
from ivr.jobs import purge_expired_blocks
from staff.models import AuditEvent
from tests.console.seed import audits
from tests.staff.support import csrf_from, csrf_token, make_user, sign_in
from tests.support import handles

PAGE = "/console/blocklist"
NUMBER = "+380671234567"


@pytest.fixture
def supervisor(app, client) -> int:
    user_id, _ = make_user(app, "supervisor", "olena")
    sign_in(client, app, user_id)
    return user_id


def add(client, number: str = NUMBER, reason: str = "hundreds of silent calls", hours="24"):
    return client.post(
        PAGE,
        data={"csrf_token": csrf_token(client), "number": number, "reason": reason, "hours": hours},
    )


def entries(app) -> list[BlockedNumber]:
    with app.app_context():
        return list(db_session().scalars(select(BlockedNumber)))


def test_the_page_is_linked_and_shows_the_limits(app, client, supervisor) -> None:
    assert f'href="{PAGE}"'.encode() in client.get("/console/").data
    page = client.get(PAGE)
    assert page.status_code == 200 and csrf_from(page.data)
    body = page.data.decode()
    assert "No number is blocked." in body
    assert "at most 6 every 10 minutes" in body and "at most 30 every 10 minutes" in body
    assert 'data-reason="blocked">0<' in body
    assert "<script" not in body and " style=" not in body


def test_a_number_is_added_listed_without_its_number_and_audited(app, client, supervisor) -> None:
    response = add(client, "+380 (67) 123-45-67", hours="168")
    assert response.status_code == 302 and response.headers["Location"] == PAGE
    (entry,) = entries(app)
    assert entry.hint == "+380 …67" and entry.created_by == supervisor
    assert entry.reason == "hundreds of silent calls"
    assert dt.timedelta(hours=167) < entry.expires_at - utcnow() <= dt.timedelta(hours=168)
    with app.app_context():
        protector = handles(app).protector
        assert entry.number_hash == blocklist.number_hash(protector, NUMBER)
        assert entry.number_hash != protector.lookup_hash(NUMBER)  # not the callers' hash
    body = client.get(PAGE).data.decode()
    assert "The number is on the blocklist" in body
    assert "+380 …67" in body and "hundreds of silent calls" in body and "Supervisor" in body
    for shape in ("1234567", "123-45-67", "671234567"):
        assert shape not in body
    (row,) = audits(app, "blocklist.add")
    assert (row.staff_user_id, row.object_type, row.object_id) == (
        supervisor, "blocked_number", str(entry.id),
    )  # fmt: skip
    assert row.details == {"hours": 168} and row.ip == "127.0.0.1"


def test_a_number_already_blocked_is_refused(app, client, supervisor) -> None:
    assert add(client).status_code == 302
    again = add(client, "+380671234567")
    assert again.status_code == 400
    assert "That number is already on the blocklist." in again.data.decode()
    assert len(entries(app)) == 1


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"number": "0671234567"}, "international form"),
        ({"number": "+266696687"}, "withheld number"),
        ({"reason": ""}, "Give a reason"),
        ({"reason": "he calls from +380 50 123 45 67 too"}, "Give a reason"),
        ({"reason": "x" * 201}, "Give a reason"),
        ({"hours": "5"}, "Choose one of the durations"),
        ({"hours": str(365 * 24)}, "Choose one of the durations"),  # over BLOCKLIST_MAX_DAYS
    ],
)
def test_a_refused_form_says_why_and_never_shows_the_number(
    app, client, supervisor, fields, message
) -> None:
    response = add(client, **fields)
    assert response.status_code == 400
    body = response.data.decode()
    assert message in body and 'aria-invalid="true"' in body
    assert "1234567" not in body and "96687" not in body
    assert entries(app) == [] and audits(app, "blocklist.add") == []


def test_an_entry_is_removed_and_audited(app, client, supervisor) -> None:
    add(client)
    (entry,) = entries(app)
    url = f"{PAGE}/{entry.id}/remove"
    response = client.post(url, data={"csrf_token": csrf_token(client)})
    assert response.status_code == 302
    assert entries(app) == []
    (row,) = audits(app, "blocklist.remove")
    assert (row.staff_user_id, row.object_id) == (supervisor, str(entry.id))
    again = client.post(url, data={"csrf_token": csrf_token(client)})
    assert again.status_code == 302
    assert "No such entry" in client.get(PAGE).data.decode()
    assert len(audits(app, "blocklist.remove")) == 1


def test_changes_need_the_csrf_token(app, client, supervisor) -> None:
    response = client.post(PAGE, data={"number": NUMBER, "reason": "flood", "hours": "24"})
    assert response.status_code == 400
    assert entries(app) == []


def test_handlers_and_auditors_may_not_see_or_change_it(app, client) -> None:
    for role in ("handler", "auditor"):
        user_id, _ = make_user(app, role, f"{role}-x")
        sign_in(client, app, user_id)
        assert client.get(PAGE).status_code == 403
        assert add(client).status_code == 403
    assert entries(app) == []


def test_expired_entries_leave_the_list_and_are_purged_with_an_audit_row(app, client, supervisor):
    with app.app_context():
        db = db_session()
        old = blocklist.add(
            db, handles(app).protector, number=NUMBER, reason="an old flood", hours=1,
            max_days=90, actor=supervisor, now=utcnow() - dt.timedelta(hours=2),
        )  # fmt: skip
        db.commit()
    assert "an old flood" not in client.get(PAGE).data.decode()
    with app.app_context():
        assert purge_expired_blocks() == 1
    assert entries(app) == []
    (row,) = audits(app, "blocklist.expire")
    assert row.object_id == str(old) and row.staff_user_id is None
    assert add(client).status_code == 302  # the number may be blocked again


def test_the_audit_log_holds_no_reason_and_no_number(app, client, supervisor) -> None:
    add(client, reason="silent calls every minute")
    (entry,) = entries(app)
    client.post(f"{PAGE}/{entry.id}/remove", data={"csrf_token": csrf_token(client)})
    with app.app_context():
        rows = db_session().scalars(select(AuditEvent).where(AuditEvent.action.like("blocklist.%")))
        text = " ".join(f"{r.object_id} {r.details}" for r in rows)
    assert "silent" not in text and "1234567" not in text
