"""The handler's page over real rows and the real routing core: presence goes the CLI's way
(database, core, a withdrawn offer cancelled), the call offered or in progress shows its case,
notes and the outcome are written only on the handler's own cases, the wrap-up counts down."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from sqlalchemy import select, update

from db import db_session
from inquiries.models import CallEvent, CaseNote, Inquiry, Interaction
from inquiries.notes import add_note
from routing.models import Handler, Offer, QueueEntry
from routing.service import profile, routing_core
from tests.console.seed import a_case, audits, handler_row
from tests.staff.support import csrf_token, make_user, sign_in
from tests.support import handles


@pytest.fixture
def core(app):
    svc = handles(app)
    return routing_core(svc.settings, svc.redis)


@pytest.fixture
def anna(app, client):
    """A handler signed in as their own routing handler: (handler id, staff user id)."""
    handler_id = handler_row(app, "Anna")
    user_id, _ = make_user(app, "handler", "anna", handler_id=handler_id)
    sign_in(client, app, user_id)
    return handler_id, user_id


def events(app, name: str) -> list[CallEvent]:
    with app.app_context():
        return list(db_session().scalars(select(CallEvent).where(CallEvent.event == name)))


def test_presence_reaches_the_database_and_the_core(app, client, core, anna):
    handler_id, user_id = anna
    page = client.get("/console/handler")
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    html = page.get_data(as_text=True)
    assert "No call offered or in progress." in html and 'id="presence-now">offline<' in html
    token = csrf_token(client)

    done = client.post(
        "/console/handler/presence", data={"csrf_token": token, "presence": "available"}
    )
    assert done.status_code == 302 and done.headers["Location"].endswith("/console/handler")
    assert core.presence(str(handler_id)) == ("available", None)
    client.post("/console/handler/presence",
                data={"csrf_token": token, "presence": "break", "reason": "lunch"})  # fmt: skip
    assert core.presence(str(handler_id)) == ("break", "lunch")
    with app.app_context():
        row = db_session().get(Handler, handler_id)
        assert (row.presence, row.presence_reason) == ("break", "lunch")
    assert [e.data["to"] for e in events(app, "HANDLER_PAUSED")] == ["break"]
    assert "on a break</strong> (lunch)" in client.get("/console/handler").get_data(as_text=True)

    rows = audits(app, "handler.presence")
    assert [(r.object_id, r.staff_user_id, r.details["presence"], r.details["previous"])
            for r in rows] == [(str(handler_id), user_id, "available", "offline"),
                               (str(handler_id), user_id, "break", "available")]  # fmt: skip
    refused = client.post(
        "/console/handler/presence", data={"csrf_token": token, "presence": "on_call"}
    )
    assert refused.status_code == 302 and core.presence(str(handler_id))[0] == "break"
    assert len(audits(app, "handler.presence")) == 2


def test_a_break_while_an_offer_rings_withdraws_it(app, client, core, anna):
    handler_id, _ = anna
    token = csrf_token(client)
    client.post("/console/handler/presence", data={"csrf_token": token, "presence": "available"})
    inquiry_id, call_id = a_case(app)
    core.enqueue(str(call_id), language="ru", kind="family", priority=0, enqueued_at=time.time())
    (offer,) = core.dispatch(time.time())
    assert offer.caller_id == str(call_id)
    with app.app_context():
        session = db_session()
        session.add(Offer(interaction_id=call_id, handler_id=handler_id, state="ringing"))
        session.commit()
    live = client.get("/console/handler/live").get_data(as_text=True)
    assert "Call offered" in live and 'id="current-kind">a relative<' in live
    assert f"#{inquiry_id}" not in live and 'id="note-form"' not in live  # not theirs yet

    client.post("/console/handler/presence", data={"csrf_token": token, "presence": "break"})
    assert core.presence(str(handler_id))[0] == "break"
    assert core.caller_state(str(call_id)) == "waiting"  # keeps its place for someone else
    with app.app_context():
        assert db_session().scalar(select(Offer.state)) == "canceled"
    assert len(events(app, "RINGCANCELED")) == 1
    assert "goes to someone else" in client.get("/console/handler").get_data(as_text=True)


def _offer(app, call_id: int, handler_id: int, state: str = "ringing") -> int:
    with app.app_context():
        session = db_session()
        offer = Offer(interaction_id=call_id, handler_id=handler_id, state=state)
        session.add(offer)
        session.execute(update(QueueEntry).where(QueueEntry.interaction_id == call_id)
                        .values(state="offered"))  # fmt: skip
        session.commit()
        return offer.id


def _note(app, inquiry_id: int, text: str) -> None:
    with app.app_context():
        session = db_session()
        add_note(session, handles(app).protector, inquiry_id, text, author_id=None)
        session.commit()


def test_an_offer_shows_only_the_language_topic_and_wait(app, client, anna):
    """Ringing, the call is not the handler's yet: no case number or link, no earlier calls,
    no notes, no number, no outcome; not audited as a view; the case itself is a 404. Taken,
    the same page shows the case (and audits the view)."""
    handler_id, _ = anna
    inquiry_id, call_id = a_case(app, earlier_calls=2, kind="family", language="ru")
    _note(app, inquiry_id, "met at the station")
    offer_id = _offer(app, call_id, handler_id)
    for path in ("/console/handler", "/console/handler/live"):
        html = client.get(path).get_data(as_text=True)
        assert 'id="current-what">Call offered<' in html
        assert 'id="current-language">Russian<' in html and 'id="current-kind">a relative<' in html
        assert 'id="current-waited">1:15<' in html
        for withheld in (f"#{inquiry_id}", f"/console/inquiries/{inquiry_id}", "case-calls",
                         "case-notes", "met at the station", 'class="number"', "current-outcome",
                         "0:42", 'id="note-form"', 'name="interaction_id"'):  # fmt: skip
            assert withheld not in html, (path, withheld)
    assert not audits(app, "inquiry.view")
    assert client.get(f"/console/inquiries/{inquiry_id}").status_code == 404
    token = csrf_token(client)
    note = client.post(f"/console/handler/inquiries/{inquiry_id}/notes",
                       data={"csrf_token": token, "text": "peeked"})  # fmt: skip
    assert note.status_code == 404

    with app.app_context():  # the handler pressed 1: the offer accepted, the call connected
        session = db_session()
        session.execute(update(Offer).where(Offer.id == offer_id).values(state="accepted"))
        session.execute(update(QueueEntry).values(state="connected", handler_id=handler_id,
                                                  connected_at=dt.datetime.now(dt.UTC)))  # fmt: skip
        session.commit()
    html = client.get("/console/handler/live").get_data(as_text=True)
    assert 'id="current-what">Call in progress<' in html and f"#{inquiry_id}" in html
    assert "met at the station" in html and html.count("<tr") == 1 + 3
    views = audits(app, "inquiry.view")
    assert [(v.object_id, v.details["via"]) for v in views] == [(str(inquiry_id), "handler_page")]
    assert client.get(f"/console/inquiries/{inquiry_id}").status_code == 200


def test_under_ring_all_only_the_handler_who_took_the_call_sees_its_case(app, client, anna):
    handler_id, _ = anna
    boris = handler_row(app, "Boris")
    boris_user, _ = make_user(app, "handler", "boris", handler_id=boris)
    inquiry_id, call_id = a_case(app, earlier_calls=1)
    _note(app, inquiry_id, "asked about her son")
    _offer(app, call_id, handler_id)
    _offer(app, call_id, boris)
    with app.app_context():  # Boris pressed 1 first: Anna's offer is lost
        session = db_session()
        session.execute(update(Offer).where(Offer.handler_id == boris).values(state="accepted"))
        session.execute(update(Offer).where(Offer.handler_id == handler_id).values(state="lost"))
        session.execute(update(QueueEntry).values(state="connected", handler_id=boris,
                                                  connected_at=dt.datetime.now(dt.UTC)))  # fmt: skip
        session.commit()
    mine = client.get("/console/handler").get_data(as_text=True)
    assert "asked about her son" not in mine and f"#{inquiry_id}" not in mine
    assert client.get(f"/console/inquiries/{inquiry_id}").status_code == 404
    other = app.test_client()
    sign_in(other, app, boris_user)
    theirs = other.get("/console/handler").get_data(as_text=True)
    assert "asked about her son" in theirs and f"#{inquiry_id}" in theirs


def test_the_call_in_progress_shows_its_case(app, client, anna):
    handler_id, _ = anna
    inquiry_id, call_id = a_case(app, handler_id=handler_id, state="connected", earlier_calls=1)
    with app.app_context():  # the menu path as the IVR keeps it: the keys pressed
        session = db_session()
        session.get(Interaction, call_id).ivr_path = [
            {"node": "language", "answer": None, "problem": "no_input"},
            {"node": "language", "answer": "1", "choice": "1"},
            {"node": "main", "answer": "1", "choice": "1"},
            {"node": "safety", "answer": "speech", "choice": "1"},
        ]
        session.commit()
    page = client.get("/console/handler").get_data(as_text=True)
    assert "Call in progress" in page and f"#{inquiry_id}" in page
    assert 'id="current-language">Russian<' in page and 'id="current-kind">a relative<' in page
    assert 'id="current-waited">1:15<' in page
    # the menu's questions and the answers the caller heard, not "language: 1, safety: 1"
    assert ("Language: no answer · Language: Russian · Topic: surrender · Safe to talk: yes"
            in page)  # fmt: skip
    assert "Time (UTC)" not in page and "None" not in page
    assert page.count("<tr") == 1 + 2 and "0:42" in page  # the earlier call and this one
    assert f'name="interaction_id" value="{call_id}"' in page
    views = audits(app, "inquiry.view")
    assert [(v.object_id, v.details["via"]) for v in views] == [(str(inquiry_id), "handler_page")]

    live = client.get("/console/handler/live")
    assert live.status_code == 200 and live.headers["Cache-Control"] == "no-store"
    assert "<html" not in live.get_data(as_text=True)  # a fragment
    assert len(audits(app, "inquiry.view")) == 1  # refreshing the same case is not a new view
    client.get("/console/handler")
    assert len(audits(app, "inquiry.view")) == 2  # opening the page is


def test_notes_and_outcome_during_and_after_the_call(app, client, anna):
    handler_id, user_id = anna
    inquiry_id, call_id = a_case(app, handler_id=handler_id, state="connected")
    token = csrf_token(client)
    saved = client.post(f"/console/handler/inquiries/{inquiry_id}/notes",
                        data={"csrf_token": token, "text": "spoke with the mother",
                              "interaction_id": str(call_id)})  # fmt: skip
    assert saved.status_code == 302 and saved.headers["Location"].endswith("/console/handler")
    client.post(f"/console/handler/inquiries/{inquiry_id}/outcome",
                data={"csrf_token": token, "outcome": "referred"})  # fmt: skip
    with app.app_context():
        session = db_session()
        (note,) = session.scalars(select(CaseNote))
        assert (note.interaction_id, note.author_id) == (call_id, user_id)
        assert session.get(Inquiry, inquiry_id).outcome == "referred"
    (noted,) = audits(app, "inquiry.note")
    assert noted.details == {"note": note.id, "interaction": call_id}  # ids, never the text
    (changed,) = audits(app, "inquiry.outcome")
    assert (changed.details["outcome"], changed.details["previous"]) == ("referred", None)

    with app.app_context():  # the call ends: the page keeps the case for notes after it
        session = db_session()
        session.execute(update(QueueEntry).values(state="done"))
        session.commit()
    page = client.get("/console/handler").get_data(as_text=True)
    assert "Your last call" in page and "spoke with the mother" in page
    assert 'id="current-outcome">referred elsewhere<' in page and 'id="note-form"' in page
    client.post(f"/console/handler/inquiries/{inquiry_id}/notes",
                data={"csrf_token": token, "text": "sent the address", "interaction_id": "999999"})  # fmt: skip
    with app.app_context():
        notes = list(db_session().scalars(select(CaseNote).order_by(CaseNote.id)))
        assert len(notes) == 2 and notes[1].interaction_id is None  # not a call of this case
    refused = client.post(f"/console/handler/inquiries/{inquiry_id}/outcome",
                          data={"csrf_token": token, "outcome": "made_up"})  # fmt: skip
    assert refused.status_code == 302
    with app.app_context():
        assert db_session().get(Inquiry, inquiry_id).outcome == "referred"


def test_a_handler_cannot_write_on_someone_elses_case(app, client, anna):
    other = handler_row(app, "Boris")
    inquiry_id, _ = a_case(app, handler_id=other, state="connected")
    token = csrf_token(client)
    note = client.post(f"/console/handler/inquiries/{inquiry_id}/notes",
                       data={"csrf_token": token, "text": "not mine"})  # fmt: skip
    outcome = client.post(f"/console/handler/inquiries/{inquiry_id}/outcome",
                          data={"csrf_token": token, "outcome": "advised"})  # fmt: skip
    assert note.status_code == 404 and outcome.status_code == 404
    with app.app_context():
        assert db_session().scalar(select(CaseNote.id)) is None
        assert db_session().get(Inquiry, inquiry_id).outcome is None
    assert not audits(app, "inquiry.note") and not audits(app, "inquiry.outcome")
    page = client.get("/console/handler").get_data(as_text=True)
    assert "No call offered or in progress." in page


def test_every_post_needs_the_csrf_token(app, client, core, anna):
    handler_id, _ = anna
    inquiry_id, _ = a_case(app, handler_id=handler_id, state="connected")
    for path, data in (
        ("/console/handler/presence", {"presence": "available"}),
        (f"/console/handler/inquiries/{inquiry_id}/notes", {"text": "x"}),
        (f"/console/handler/inquiries/{inquiry_id}/outcome", {"outcome": "advised"}),
    ):
        assert client.post(path, data=data).status_code == 400, path
        assert client.post(path, data={**data, "csrf_token": "forged"}).status_code == 400, path
    assert core.presence(str(handler_id))[0] == "offline"
    with app.app_context():
        assert db_session().scalar(select(CaseNote.id)) is None
        assert db_session().get(Inquiry, inquiry_id).outcome is None


def test_a_handler_account_without_a_handler_is_told(app, client):
    user_id, _ = make_user(app, "handler", "nobody")
    sign_in(client, app, user_id)
    assert 'id="not-linked"' in client.get("/console/handler").get_data(as_text=True)
    token = csrf_token(client)
    refused = client.post(
        "/console/handler/presence", data={"csrf_token": token, "presence": "available"}
    )
    assert refused.status_code == 302 and not audits(app, "handler.presence")


def test_the_wrap_up_countdown_comes_from_the_last_completed_call(app, client, core, anna):
    handler_id, _ = anna
    other = handler_row(app, "Boris")
    with app.app_context():
        core.upsert_handler(profile(db_session().get(Handler, handler_id)))
    core.set_presence(str(handler_id), "wrap_up", now=time.time())
    now = dt.datetime.now(dt.UTC)
    with app.app_context():
        session = db_session()
        session.add_all([
            CallEvent(event="COMPLETEAGENT", time=now - dt.timedelta(seconds=300),
                      data={"handler_id": handler_id, "wrapup_s": 30}),
            CallEvent(event="COMPLETECALLER", time=now - dt.timedelta(seconds=10),
                      data={"handler_id": handler_id, "wrapup_s": 60}),
            CallEvent(event="COMPLETEAGENT", time=now,  # someone else's call: not theirs
                      data={"handler_id": other, "wrapup_s": 5}),
        ])  # fmt: skip
        session.commit()
    page = client.get("/console/handler").get_data(as_text=True)
    left = int(page.split('data-countdown="')[1].split('"')[0])
    assert 45 <= left <= 50
    assert 'data-live-url="/console/handler/live"' in page and "live.js" in page
    assert "<script>" not in page and "style=" not in page


def _outcome_form(html: str) -> str:
    """The form after the note form: the outcome's."""
    start = html.index('<form method="post"', html.index('id="note-form"'))
    return html[start : html.index("</form>", start)]


def test_the_outcome_form_on_both_pages_selects_the_current_outcome(app, client, anna):
    handler_id, _ = anna
    inquiry_id, _ = a_case(app, handler_id=handler_id, state="connected")
    with app.app_context():
        session = db_session()
        session.get(Inquiry, inquiry_id).outcome = "referred"
        session.commit()
    for page, action in (
        ("/console/handler", f"/console/handler/inquiries/{inquiry_id}/outcome"),
        (f"/console/inquiries/{inquiry_id}", f"/console/inquiries/{inquiry_id}/outcome"),
    ):
        form = _outcome_form(client.get(page).get_data(as_text=True))
        assert f'action="{action}"' in form and 'id="outcome-form"' in form
        assert 'name="csrf_token" value="' in form
        assert '<option value="referred" selected>' in form
        assert form.count(" selected") == 1
