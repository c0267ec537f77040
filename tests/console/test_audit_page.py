"""The auditor's page: the audit log, filtered and paginated."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import insert

from db import db_session
from staff.models import AuditEvent
from tests.staff.support import make_user, sign_in


def seed(app, olena_id: int) -> None:
    base = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)
    rows = [
        {"time": base + dt.timedelta(days=i % 3), "staff_user_id": olena_id if i % 2 else None,
         "action": "login.failure" if i % 4 == 0 else "inquiry.view", "object_type": "inquiry",
         "object_id": str(i), "details": {"n": i}}
        for i in range(120)
    ]  # fmt: skip
    with app.app_context():
        db = db_session()
        db.execute(insert(AuditEvent), rows)
        db.commit()


def rows_in(html: bytes) -> int:
    body = html.split(b"<tbody>", 1)[1].split(b"</tbody>", 1)[0]
    return body.count(b"<tr>")


def test_filters_and_pages(app, client) -> None:
    auditor_id, _ = make_user(app, "auditor", "iryna")
    olena_id, _ = make_user(app, "handler", "olena")
    seed(app, olena_id)
    sign_in(client, app, auditor_id)
    everything = client.get("/console/audit")
    assert everything.status_code == 200
    assert rows_in(everything.data) == 50 and b"Page 1 of 3" in everything.data
    assert rows_in(client.get("/console/audit?page=3").data) == 122 - 100  # + 2 staff.create
    assert rows_in(client.get("/console/audit?user=olena").data) == 50
    assert b"Events: 60" in client.get("/console/audit?user=olena").data
    assert b"Events: 30" in client.get("/console/audit?action=login").data
    assert b"Events: 30" in client.get("/console/audit?action=login.failure").data
    assert b"Events: 0" in client.get("/console/audit?action=login.fail").data
    one_day = client.get("/console/audit?since=2026-11-21&until=2026-11-21")
    assert b"Events: 40" in one_day.data
    assert client.get("/console/audit?since=garbage&page=-4").status_code == 200
    assert b"Events: 0" in client.get("/console/audit?action=%25").data  # no LIKE wildcards
