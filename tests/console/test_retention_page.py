"""The retention page (admins): the periods in force and their source; changes validated, saved
whole or not at all, each one audited with the old and new values."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from db import db_session
from recordings.models import RetentionSetting
from recordings.retention_policy import effective_days
from staff.models import AuditEvent
from tests.console.seed import audits
from tests.staff.support import csrf_from, csrf_token, make_user, sign_in
from tests.support import handles

PAGE = "/console/admin/retention"
MESSAGE, CONVERSATION, PERSONAL = (
    "recording_retention_days_message",
    "recording_retention_days_conversation",
    "personal_data_retention_days",
)


@pytest.fixture
def admin(app, client) -> int:
    user_id, _ = make_user(app, "admin", "root")
    sign_in(client, app, user_id)
    return user_id


def save(client, **fields: str):
    return client.post(PAGE, data={"csrf_token": csrf_token(client), **fields})


def in_force(app) -> dict[str, int]:
    with app.app_context():
        return effective_days(db_session(), handles(app).settings)


def overrides(app) -> dict[str, int]:
    with app.app_context():
        rows = db_session().scalars(select(RetentionSetting))
        return {row.name: row.days for row in rows}


def test_the_page_shows_the_environment_values_and_is_linked(app, client, admin) -> None:
    assert f'href="{PAGE}"'.encode() in client.get("/console/").data
    page = client.get(PAGE)
    assert page.status_code == 200 and csrf_from(page.data)
    body = page.data.decode()
    assert body.count('data-source="environment"') == 3
    assert 'data-days="90"' in body and 'data-days="365"' in body
    assert "RECORDING_RETENTION_DAYS_MESSAGE" in body and "PERSONAL_DATA_RETENTION_DAYS" in body
    assert "<script" not in body and " style=" not in body


def test_a_change_is_saved_shown_and_audited(app, client, admin) -> None:
    response = save(client, **{MESSAGE: "30", CONVERSATION: "", PERSONAL: ""})
    assert response.status_code == 302 and response.headers["Location"] == PAGE
    page = client.get(PAGE).data.decode()
    assert "Retention changed." in page
    assert 'data-days="30"' in page and page.count('data-source="console"') == 1
    assert in_force(app) == {MESSAGE: 30, CONVERSATION: 90, PERSONAL: 365}
    (row,) = audits(app, "retention.change")
    assert (row.staff_user_id, row.object_type, row.object_id) == (admin, "retention_setting",
                                                                  MESSAGE)  # fmt: skip
    assert row.ip == "127.0.0.1"
    assert row.details == {"old": 90, "new": 30, "old_source": "environment",
                           "new_source": "console", "environment": 90}  # fmt: skip
    with app.app_context():
        (setting,) = db_session().scalars(select(RetentionSetting))
        assert setting.updated_by == admin and setting.updated_at is not None


def test_zero_keeps_forever_and_blank_goes_back_to_the_environment(app, client, admin) -> None:
    save(client, **{PERSONAL: "0"})
    assert in_force(app)[PERSONAL] == 0
    assert "kept forever" in client.get(PAGE).data.decode()
    save(client, **{PERSONAL: "120"})
    save(client, **{PERSONAL: " "})
    assert in_force(app)[PERSONAL] == 365 and overrides(app) == {}
    changes = [(a.details["old"], a.details["new"], a.details["new_source"])
               for a in audits(app, "retention.change")]  # fmt: skip
    assert changes == [(365, 0, "console"), (0, 120, "console"), (120, 365, "environment")]


def test_saving_what_is_in_force_changes_nothing(app, client, admin) -> None:
    save(client, **{CONVERSATION: "60"})
    response = save(client, **{MESSAGE: "", CONVERSATION: "60", PERSONAL: ""})
    assert response.status_code == 302
    assert "Nothing changed." in client.get(PAGE).data.decode()
    assert len(audits(app, "retention.change")) == 1
    assert save(client).status_code == 302  # fields not sent are left as they are
    assert overrides(app) == {CONVERSATION: 60}


@pytest.mark.parametrize(
    "value,message",
    [
        ("-1", "Enter a whole number of days"),
        ("abc", "Enter a whole number of days"),
        ("1.5", "Enter a whole number of days"),
        ("١٢", "Enter a whole number of days"),  # digits, but not 0-9
        ("1e3", "Enter a whole number of days"),
        ("9" * 40, "Enter a whole number of days"),
        ("3651", "Enter a number from 0 to 3650."),
    ],
)
def test_bad_values_are_refused_and_nothing_is_saved(app, client, admin, value, message) -> None:
    response = save(client, **{MESSAGE: "45", CONVERSATION: value})
    assert response.status_code == 400
    body = response.data.decode()
    assert message in body and 'aria-invalid="true"' in body
    assert overrides(app) == {}  # the valid field was not saved either
    assert audits(app, "retention.change") == []


def test_only_admins_may_change_retention(app, client) -> None:
    for role in ("handler", "supervisor", "auditor"):
        user_id, _ = make_user(app, role, f"{role}-me")
        sign_in(client, app, user_id)
        assert client.get(PAGE).status_code == 403
        assert save(client, **{MESSAGE: "1"}).status_code == 403
        assert f'href="{PAGE}"'.encode() not in client.get("/console/").data
    assert overrides(app) == {}
    with app.app_context():
        assert (
            not db_session()
            .scalars(select(AuditEvent).where(AuditEvent.action == "retention.change"))
            .all()
        )


def test_the_form_needs_the_csrf_token(app, client, admin) -> None:
    csrf_token(client)
    assert client.post(PAGE, data={MESSAGE: "1"}).status_code == 400
    assert client.post(PAGE, data={MESSAGE: "1", "csrf_token": "forged"}).status_code == 400
    assert overrides(app) == {}


def test_the_page_in_ukrainian(app) -> None:
    browser = app.test_client()
    user_id, _ = make_user(app, "admin", "ada", language="uk")
    sign_in(browser, app, user_id)
    page = browser.get(PAGE).data.decode()
    assert "Зберігання даних" in page and "Записані розмови" in page
