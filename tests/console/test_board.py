"""The supervisor's live board over real rows and the real routing core: who waits, each
handler's presence and call time, today's figures; break and back, audited, the same path as the
handler's own change."""

from __future__ import annotations

import datetime as dt

import pytest

from db import db_session
from inquiries.models import CallEvent
from routing.models import Handler
from routing.service import routing_core
from tests.console.seed import a_case, audits, handler_row, tables
from tests.staff.support import csrf_token, make_user, sign_in
from tests.support import handles


@pytest.fixture
def core(app):
    svc = handles(app)
    return routing_core(svc.settings, svc.redis)


@pytest.fixture
def supervisor(app, client) -> int:
    user_id, _ = make_user(app, "supervisor", "sv")
    sign_in(client, app, user_id)
    return user_id


def available(client, app, handler_id: int) -> None:
    """The handler makes themselves available on their own page."""
    own = app.test_client()
    user_id, _ = make_user(app, "handler", f"h{handler_id}", handler_id=handler_id)
    sign_in(own, app, user_id)
    own.post("/console/handler/presence",
             data={"csrf_token": csrf_token(own), "presence": "available"})  # fmt: skip


def test_the_board_shows_who_waits_and_who_takes_calls(app, client, supervisor):
    anna, boris = handler_row(app, "Anna"), handler_row(app, "Boris", ("uk", "ru"))
    available(client, app, anna)
    a_case(app, waited_s=130)
    a_case(app, waited_s=20)
    a_case(app, kind="surrender", language="uk", waited_s=5)
    a_case(app, handler_id=boris, state="connected")
    with app.app_context():
        session = db_session()
        now = dt.datetime.now(dt.UTC)
        session.add_all([CallEvent(event="CONNECT", time=now, data={"holdtime_s": 12}),
                         CallEvent(event="ABANDON", time=now, data={"waittime_s": 40})])  # fmt: skip
        session.commit()

    page = client.get("/console/board")
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    html = page.get_data(as_text=True)
    assert 'id="waiting-total">3<' in html and 'id="longest-wait">2:1' in html
    found = tables(html)
    waiting = found["waiting"][1:]
    assert [cells[:3] for cells in waiting] == [["Russian", "a relative", "2"],
                                                ["Ukrainian", "surrender", "1"]]  # fmt: skip
    handlers = {cells[0]: cells for cells in found["handlers"][1:]}
    assert handlers["Anna"][2] == "available" and handlers["Boris"][1] == "Ukrainian, Russian"
    assert handlers["Boris"][3].startswith("0:0")  # on a call that started just now
    assert 'id="today-answered">1<' in html and 'id="today-abandoned">1<' in html
    assert 'id="today-sl">100.0%<' in html and 'id="today-asa">12.0 s<' in html
    assert 'data-live-url="/console/board/live"' in html and 'data-live-every="5"' in html

    live = client.get("/console/board/live")
    assert live.status_code == 200 and live.headers["Cache-Control"] == "no-store"
    body = live.get_data(as_text=True)
    assert "<html" not in body and 'id="waiting-total">3<' in body


def test_break_and_back_from_the_board(app, client, core, supervisor):
    anna = handler_row(app, "Anna")
    available(client, app, anna)
    token = csrf_token(client)
    response = client.post(f"/console/board/handlers/{anna}/presence",
                           data={"csrf_token": token, "presence": "break", "reason": "tired"})  # fmt: skip
    assert response.status_code == 302 and response.headers["Location"].endswith("/console/board")
    assert core.presence(str(anna)) == ("break", "tired")
    with app.app_context():
        row = db_session().get(Handler, anna)
        assert (row.presence, row.presence_reason) == ("break", "tired")
    html = client.get("/console/board").get_data(as_text=True)
    assert "on a break (tired)" in html and "Back to available" in html

    client.post(f"/console/board/handlers/{anna}/presence",
                data={"csrf_token": token, "presence": "available", "reason": "ignored"})  # fmt: skip
    assert core.presence(str(anna)) == ("available", None)
    rows = [r for r in audits(app, "handler.presence") if r.details.get("via") == "board"]
    assert [(r.object_id, r.staff_user_id, r.details["presence"], r.details["previous"])
            for r in rows] == [(str(anna), supervisor, "break", "available"),
                               (str(anna), supervisor, "available", "break")]  # fmt: skip


def test_the_board_refuses_what_makes_no_sense(app, client, core, supervisor):
    anna, boris = handler_row(app, "Anna"), handler_row(app, "Boris")
    available(client, app, anna)  # Boris stays offline
    token = csrf_token(client)
    for handler_id, presence in ((anna, "available"), (boris, "break"), (boris, "available"),
                                 (anna, "offline")):  # fmt: skip
        response = client.post(f"/console/board/handlers/{handler_id}/presence",
                               data={"csrf_token": token, "presence": presence})  # fmt: skip
        assert response.status_code == 302
    assert core.presence(str(anna))[0] == "available" and core.presence(str(boris))[0] == "offline"
    assert not [r for r in audits(app, "handler.presence") if r.details.get("via") == "board"]
    html = client.get("/console/board").get_data(as_text=True)
    assert "An offline handler cannot be put on a break." in html
    boris_row = html.split(f'id="handler-{boris}"')[1].split("</tr>")[0]
    assert "<form" not in boris_row  # nothing to change for someone offline


def test_the_board_post_needs_the_csrf_token(app, client, core, supervisor):
    anna = handler_row(app, "Anna")
    available(client, app, anna)
    path = f"/console/board/handlers/{anna}/presence"
    assert client.post(path, data={"presence": "break"}).status_code == 400
    assert client.post(path, data={"presence": "break", "csrf_token": "x"}).status_code == 400
    assert core.presence(str(anna))[0] == "available"
