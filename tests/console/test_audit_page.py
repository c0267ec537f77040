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


def audit_actions_in_the_code() -> set[str]:
    """Every action code passed to ``audit.record`` anywhere in the hotline's own code."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    found: set[str] = set()
    for path in root.rglob("*.py"):
        if ".venv" in path.parts or "tests" in path.parts:
            continue
        text = path.read_text(encoding="utf-8")
        found |= set(re.findall(r'audit\.record\(\s*"([a-z_.]+)"', text))
        if "audit.record(" in text:  # ``action = "x.y" if … else "x.z"`` then record(action…)
            found |= set(re.findall(r'action = "([a-z_]+\.[a-z_]+)"', text))
            found |= set(re.findall(r'else "([a-z_]+\.[a-z_]+)"', text))
    return found


def test_every_audit_action_has_a_sentence() -> None:
    from console.audit_labels import ACTION_NAMES

    actions = audit_actions_in_the_code()
    assert {"inquiry.view", "recording.play", "staff.disable", "logout"} <= actions
    assert not actions - set(ACTION_NAMES), sorted(actions - set(ACTION_NAMES))


def test_the_log_reads_as_sentences(app, client) -> None:
    auditor_id, _ = make_user(app, "auditor", "iryna")
    olena_id, _ = make_user(app, "handler", "olena")
    rows = [
        {"time": dt.datetime(2026, 11, 20, 22, 30, tzinfo=dt.UTC), "staff_user_id": olena_id,
         "action": "inquiry.view", "object_type": "inquiry", "object_id": "7",
         "details": {"full_number": 0, "via": "handler_page"}},
        {"time": dt.datetime(2026, 11, 20, 22, 31, tzinfo=dt.UTC), "staff_user_id": auditor_id,
         "action": "staff.role", "object_type": "staff_user", "object_id": str(olena_id),
         "details": {"old": "handler", "new": "supervisor"}},
    ]  # fmt: skip
    with app.app_context():
        db = db_session()
        db.execute(insert(AuditEvent), rows)
        db.commit()
    sign_in(client, app, auditor_id)
    html = client.get("/console/audit?action=inquiry.view").get_data(as_text=True)
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    shown = body.split("<details", 1)[0]  # the stored row is behind the toggle
    assert "Viewed a case" in shown and "case 7" in shown and "Handler" in shown
    assert "Full number shown: no · From: the handler&#39;s page" in shown
    assert "21 Nov 2026, 00:30:00" in shown  # Kyiv: UTC+2 in November
    assert "inquiry.view" not in shown and "=" not in shown.replace('="', "")
    assert "<code>inquiry.view</code>" in body  # for auditors, behind the toggle
    role = client.get("/console/audit?action=staff.role").get_data(as_text=True)
    assert (
        "<td>Changed a staff member's role</td>" in role
        and "Before: handler · After: supervisor" in role
    )
    assert "<td>Handler</td>" in role  # the account by its name, not "staff_user 2"
