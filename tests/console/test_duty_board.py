"""The handler's page, the supervisor's board and the dashboard, over real rows and the real
routing core: presence changes reach the database and Redis, the current call shows its case,
the board shows who waits, break/back is audited, the dashboard draws what the events say."""

from __future__ import annotations

import datetime as dt
import time

from sqlalchemy import select

from extensions import db_session
from inquiries.models import Caller, CallEvent, Inquiry, Interaction
from routing.models import Handler, QueueEntry
from routing.service import create_handler, profile, routing_core
from staff.models import AuditEvent
from tests.staff.support import csrf_token, make_user, sign_in


def handler_row(app, name: str = "Anna") -> int:
    with app.app_context():
        svc = app.extensions["hotline"]
        session = db_session()
        handler_id = create_handler(session, svc.protector, display_name=name, languages=["ru"],
                                    skills=["other", "family"], client=name.lower())  # fmt: skip
        session.commit()
        return handler_id


def a_case(app, *, handler_id: int | None = None, state: str = "waiting") -> int:
    with app.app_context():
        session = db_session()
        caller = Caller(number_hash=f"{state}{handler_id}".ljust(64, "x"))
        session.add(caller)
        session.flush()
        inquiry = Inquiry(caller_id=caller.id, kind="family", language="ru")
        session.add(inquiry)
        session.flush()
        call = Interaction(inquiry_id=inquiry.id, provider_sid=f"CA{inquiry.id:032x}",
                           status="in-progress",
                           ivr_path=[{"node": "language", "answer": "1"},
                                     {"node": "main", "answer": "2"}])  # fmt: skip
        session.add(call)
        session.flush()
        now = dt.datetime.now(dt.UTC)
        session.add(QueueEntry(interaction_id=call.id, state=state, language="ru", kind="family",
                               enqueued_at=now - dt.timedelta(seconds=75), handler_id=handler_id,
                               connected_at=now if state == "connected" else None))  # fmt: skip
        session.commit()
        return inquiry.id


def audits(app, action: str) -> list[AuditEvent]:
    with app.app_context():
        return list(db_session().scalars(select(AuditEvent).where(AuditEvent.action == action)))


def test_a_handler_sets_presence_and_sees_the_call_they_are_on(app, client):
    handler_id = handler_row(app)
    user_id, _ = make_user(app, "handler", "anna", handler_id=handler_id)
    sign_in(client, app, user_id)
    page = client.get("/console/duty").get_data(as_text=True)
    assert "No call offered or in progress." in page
    token = csrf_token(client)
    assert client.post("/console/duty/presence", data={"presence": "available"}).status_code in (
        400, 403)  # fmt: skip
    done = client.post(
        "/console/duty/presence", data={"csrf_token": token, "presence": "available"}
    )
    assert done.status_code == 302
    svc = app.extensions["hotline"]
    core = routing_core(svc.settings, svc.redis)
    assert core.presence(str(handler_id))[0] == "available"
    with app.app_context():
        assert db_session().get(Handler, handler_id).presence == "available"
    assert audits(app, "handler.presence")[0].object_id == str(handler_id)

    inquiry_id = a_case(app, handler_id=handler_id, state="connected")
    live = client.get("/console/duty/live").get_data(as_text=True)
    assert "Call in progress" in live and f"#{inquiry_id}" in live and "main=2" in live
    saved = client.post(f"/console/inquiries/{inquiry_id}/notes",
                        data={"csrf_token": token, "text": "spoke with the mother", "back": "duty"})  # fmt: skip
    assert saved.headers["Location"].endswith("/console/duty")
    assert "spoke with the mother" in client.get("/console/duty/live").get_data(as_text=True)


def test_a_handler_without_a_handler_row_is_told(app, client):
    user_id, _ = make_user(app, "handler", "nobody")
    sign_in(client, app, user_id)
    assert "not linked" in client.get("/console/duty").get_data(as_text=True)


def test_the_wrap_up_countdown_comes_from_the_last_completed_call(app, client):
    handler_id = handler_row(app)
    user_id, _ = make_user(app, "handler", "anna", handler_id=handler_id)
    svc = app.extensions["hotline"]
    core = routing_core(svc.settings, svc.redis)
    with app.app_context():
        core.upsert_handler(profile(db_session().get(Handler, handler_id)))
    core.set_presence(str(handler_id), "wrap_up", now=time.time())
    with app.app_context():
        session = db_session()
        session.add(CallEvent(event="COMPLETEAGENT", time=dt.datetime.now(dt.UTC),
                              data={"handler_id": handler_id, "wrapup_s": 60}))  # fmt: skip
        session.commit()
    sign_in(client, app, user_id)
    page = client.get("/console/duty").get_data(as_text=True)
    left = int(page.split('data-countdown="')[1].split('"')[0])
    assert 55 <= left <= 60


def test_the_board_shows_waiting_callers_and_puts_a_handler_on_break(app, client):
    handler_id = handler_row(app)
    a_case(app)
    user_id, _ = make_user(app, "supervisor", "sv")
    sign_in(client, app, user_id)
    page = client.get("/console/board").get_data(as_text=True)
    assert 'id="waiting-total">1<' in page and "family" in page and "Anna" in page
    live = client.get("/console/board/live")
    assert live.status_code == 200 and 'id="waiting-total">1<' in live.get_data(as_text=True)
    token = csrf_token(client)
    response = client.post(f"/console/board/handlers/{handler_id}/presence",
                           data={"csrf_token": token, "presence": "break", "reason": "tired"})  # fmt: skip
    assert response.status_code == 302
    svc = app.extensions["hotline"]
    assert routing_core(svc.settings, svc.redis).presence(str(handler_id)) == ("break", "tired")
    (row,) = audits(app, "handler.presence")
    assert row.details["by"] == "supervisor" and row.staff_user_id == user_id


def test_the_dashboard_draws_the_events(app, client):
    handler_row(app)
    a_case(app, state="connected")
    with app.app_context():
        session = db_session()
        for hold in (3, 45):
            session.add(CallEvent(event="CONNECT", time=dt.datetime.now(dt.UTC),
                                  data={"holdtime_s": hold}))  # fmt: skip
        session.commit()
    user_id, _ = make_user(app, "auditor", "au")
    sign_in(client, app, user_id)
    page = client.get("/console/dashboard").get_data(as_text=True)
    assert page.count("<svg") == 5 and page.count('class="bar"') >= 14 + 7
    today = dt.datetime.now(dt.UTC).date().isoformat()
    row = page.split(f"<td>{today}</td>")[1].split("</tr>")[0]
    assert "<td>1</td>" in row and "50.0%" in row  # one call today; 1 of 2 within 20 s
    assert audits(app, "dashboard.view")
    narrow = client.get(f"/console/dashboard?since={today}&until={today}").get_data(as_text=True)
    assert narrow.count(f"<td>{today}</td>") == 1
