"""The call log, the case page and the CSV export: who sees what, masking, audit rows."""

from __future__ import annotations

import csv
import io

from sqlalchemy import select

from db import db_session
from inquiries.models import CaseNote, Inquiry
from staff.models import AuditEvent
from tests.inquiries.test_calllog import seed
from tests.staff.support import csrf_token, make_user, sign_in
from tests.support import handles


def audits(app, action: str) -> list[AuditEvent]:
    with app.app_context():
        return list(db_session().scalars(select(AuditEvent).where(AuditEvent.action == action)))


def as_role(app, client, role: str, **kwargs) -> int:
    user_id, _ = make_user(app, role, f"{role}-x", **kwargs)
    sign_in(client, app, user_id)
    return user_id


def test_a_supervisor_filters_the_log_and_sees_masked_numbers(app, client):
    seed(handles(app))
    as_role(app, client, "supervisor")
    page = client.get("/console/calls?kind=family&language=uk")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert html.count('href="/console/inquiries/') == 10
    assert "+380 ••• ••• 12 34" in html and "+380501231234" not in html
    assert "+7 ••• ••• 45 67" not in html  # filtered out
    (row,) = audits(app, "calllog.view")
    assert row.details["kind"] == "family" and row.details["full_numbers"] == 0
    assert page.headers["Cache-Control"].startswith("no-store")


def test_pages_follow_the_cursor(app, client):
    seed(handles(app), n=120)
    as_role(app, client, "auditor")
    first = client.get("/console/calls").get_data(as_text=True)
    assert first.count('href="/console/inquiries/') == 50 and 'id="older"' in first
    older = first.split('id="older" href="')[1].split('"')[0].replace("&amp;", "&")
    second = client.get(older).get_data(as_text=True)
    assert second.count('href="/console/inquiries/') == 50


def test_full_numbers_only_for_roles_allowed_and_audited(app, client):
    seed(handles(app))
    as_role(app, client, "auditor")
    assert "+79161234567" not in client.get("/console/calls?numbers=full").get_data(as_text=True)
    as_role(app, client, "admin")
    html = client.get("/console/calls?numbers=full&kind=surrender").get_data(as_text=True)
    assert "+79161234567" in html
    assert [a.details["full_numbers"] for a in audits(app, "calllog.view")] == [0, 1]


def test_a_handler_sees_only_their_cases(app, client):
    ids = seed(handles(app))
    as_role(app, client, "handler", handler_id=ids["anna"])
    html = client.get("/console/calls").get_data(as_text=True)
    linked = {int(part.split('"')[0]) for part in html.split('href="/console/inquiries/')[1:]}
    assert linked == {ids["surrender"]}
    assert client.get(f"/console/inquiries/{ids['surrender']}").status_code == 200
    assert client.get(f"/console/inquiries/{ids['family']}").status_code == 404
    token = csrf_token(client)
    refused = client.post(f"/console/inquiries/{ids['family']}/notes",
                          data={"csrf_token": token, "text": "not mine"})  # fmt: skip
    assert refused.status_code == 404


def test_the_case_page_notes_and_outcome(app, client):
    ids = seed(handles(app))
    svc = handles(app)
    svc.settings = svc.settings.replace(case_outcomes=("advised", "referred"))
    as_role(app, client, "supervisor")
    page = client.get(f"/console/inquiries/{ids['family']}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "+380 ••• ••• 12 34" in html and "IVR_ENTER" in html
    token = csrf_token(client)
    assert client.post(f"/console/inquiries/{ids['family']}/notes",
                       data={"text": "no token"}).status_code in (400, 403)  # fmt: skip
    saved = client.post(f"/console/inquiries/{ids['family']}/notes",
                        data={"csrf_token": token, "text": "Перезвонить в среду"})  # fmt: skip
    assert saved.status_code == 302
    assert "Перезвонить в среду" in client.get(f"/console/inquiries/{ids['family']}").get_data(
        as_text=True)  # fmt: skip
    with app.app_context():
        raw = db_session().scalar(select(CaseNote.text_ciphertext))
        assert "Перезвонить".encode() not in raw
    (note_audit,) = audits(app, "inquiry.note")
    assert "text" not in note_audit.details
    client.post(f"/console/inquiries/{ids['family']}/outcome",
                data={"csrf_token": token, "outcome": "referred"})  # fmt: skip
    refused = client.post(f"/console/inquiries/{ids['family']}/outcome",
                          data={"csrf_token": token, "outcome": "made_up"})  # fmt: skip
    assert refused.status_code == 302
    with app.app_context():
        assert db_session().get(Inquiry, ids["family"]).outcome == "referred"
    (outcome_audit,) = audits(app, "inquiry.outcome")
    assert outcome_audit.details == {"outcome": "referred", "previous": "advised"}
    assert len(audits(app, "inquiry.view")) == 2


def test_an_auditor_reads_but_does_not_write(app, client):
    ids = seed(handles(app))
    as_role(app, client, "auditor")
    assert client.get(f"/console/inquiries/{ids['family']}").status_code == 200
    response = client.post(f"/console/inquiries/{ids['family']}/notes",
                           data={"csrf_token": csrf_token(client), "text": "x"})  # fmt: skip
    assert response.status_code == 403


def test_the_csv_export_is_audited_and_masked(app, client):
    seed(handles(app))
    as_role(app, client, "supervisor")
    response = client.get("/console/calls.csv?language=ru")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0][0] == "interaction" and len(rows) == 11
    assert {r[-1] for r in rows[1:]} == {"'+7 ••• ••• 45 67"}  # a text cell, not a formula
    (row,) = audits(app, "calllog.export")
    assert row.details["language"] == "ru" and row.details["full_numbers"] == 0
    full = client.get("/console/calls.csv?language=ru&numbers=full").get_data(as_text=True)
    assert "'+79161234567" in full
    as_role(app, client, "handler")
    assert client.get("/console/calls.csv").status_code == 403
