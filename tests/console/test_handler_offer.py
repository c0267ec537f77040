"""The handler's page says what to do (issue 17): an offer tells them to answer and press 1 (on
their phone or the softphone) and is marked for live.js to ring; the presence in force is
pressed and the buttons that make no sense now are disabled, with why; a missed offer and a
break after missed offers are told in words; the wrap-up can be extended ("More time") in the
routing core, audited, and the end-of-wrap-up job then leaves the handler in wrap-up."""

from __future__ import annotations

import datetime as dt
import re
import time

import pytest
from sqlalchemy import update

from db import db_session
from inquiries.models import CallEvent
from jobs import due_timers
from routing import jobs as routing_jobs
from routing import offers
from routing.models import Handler, Offer, QueueEntry
from routing.service import create_handler, profile, routing_core, set_presence
from tests.console.seed import a_case, audits, handler_row
from tests.staff.support import csrf_token, make_user, sign_in
from tests.support import handles

PHONE = "+380671112233"


@pytest.fixture
def core(app):
    svc = handles(app)
    return routing_core(svc.settings, svc.redis)


def signed_in(app, client, handler_id: int, language: str = "en") -> int:
    user_id, _ = make_user(app, "handler", f"h{handler_id}", handler_id=handler_id,
                           language=language)  # fmt: skip
    sign_in(client, app, user_id)
    return user_id


def phone_handler(app, name: str = "Petro") -> int:
    """A handler reached on their phone (not the softphone), on duty."""
    with app.app_context():
        svc = handles(app)
        session = db_session()
        handler_id = create_handler(session, svc.protector, display_name=name, languages=["ru"],
                                    skills=["other", "family"], phone=PHONE)  # fmt: skip
        session.commit()
        set_presence(session, routing_core(svc.settings, svc.redis), handler_id, "available")
        return handler_id


def offered(app, core, handler_id: int, **case) -> tuple[int, int, int]:
    """A caller queued and offered to this handler (core and rows); (inquiry, call, offer)."""
    inquiry_id, call_id = a_case(app, **case)
    core.enqueue(str(call_id), language="ru", kind="family", priority=0, enqueued_at=time.time())
    (offer,) = core.dispatch(time.time())
    assert offer.handler_ids == (str(handler_id),)
    with app.app_context():
        session = db_session()
        row = Offer(interaction_id=call_id, handler_id=handler_id, state="ringing")
        session.add(row)
        session.execute(update(QueueEntry).where(QueueEntry.interaction_id == call_id)
                        .values(state="offered"))  # fmt: skip
        session.commit()
        return inquiry_id, call_id, row.id


def button(html: str, presence: str) -> str:
    found = re.search(rf'<button [^>]*id="presence-{presence}"[^>]*>', html)
    assert found, presence
    return found.group(0)


def test_an_offer_says_answer_the_phone_and_press_1(app, client, core):
    handler_id = phone_handler(app)
    signed_in(app, client, handler_id)
    quiet = client.get("/console/handler").get_data(as_text=True)
    assert "data-ring " not in quiet and 'id="offer-banner"' not in quiet
    assert 'id="ring-sound-on"' in quiet and "data-ring-control" in quiet  # the sound's switch
    # the call panel goes on refreshing in a tab in the background (live.js), the others pause
    assert re.search(r'<section id="current" [^>]*data-live-background>', quiet)
    assert not re.search(r'<section id="presence" [^>]*data-live-background', quiet)

    offered(app, core, handler_id)
    for path in ("/console/handler", "/console/handler/live"):
        html = client.get(path).get_data(as_text=True)
        assert 'id="offer-banner" role="alert" data-ring data-ring-title="☎ Call offered"' in html
        assert ('id="offer-do">Your phone is ringing: answer it and press 1 to take the call.<'
                in html)  # fmt: skip
        assert "softphone" not in html


def test_a_softphone_handler_is_told_the_softphone_and_in_ukrainian(app, client, core):
    handler_id = handler_row(app, "Olena")  # reached in the browser (client identity)
    with app.app_context():
        svc = handles(app)
        set_presence(db_session(), routing_core(svc.settings, svc.redis), handler_id, "available")
    signed_in(app, client, handler_id, language="uk")
    offered(app, core, handler_id)
    html = client.get("/console/handler/live").get_data(as_text=True)
    assert "Дзвонить софтфон: відповідайте і натисніть 1, щоб прийняти дзвінок." in html
    assert 'data-ring-title="☎ ' in html and "Your phone" not in html


def test_the_presence_in_force_is_pressed_and_a_call_locks_the_buttons(app, client, core):
    handler_id = phone_handler(app)
    signed_in(app, client, handler_id)
    html = client.get("/console/handler/live/presence").get_data(as_text=True)
    assert "<html" not in html  # the presence panel alone
    assert 'aria-pressed="true" class="current"' in button(html, "available")
    for other in ("break", "offline"):
        assert 'aria-pressed="false"' in button(html, other)
    assert "disabled" not in html

    _, call_id, _ = offered(app, core, handler_id)
    html = client.get("/console/handler/live/presence").get_data(as_text=True)
    assert "disabled" in button(html, "available") and "disabled" not in button(html, "offline")
    assert "gives the ringing call to someone else" in html

    assert core.accept(str(call_id), str(handler_id), time.time()).won  # pressed 1
    html = client.get("/console/handler").get_data(as_text=True)
    for presence in ("available", "break", "offline"):
        tag = button(html, presence)
        assert 'disabled aria-describedby="presence-why"' in tag and 'aria-pressed="false"' in tag
    assert 'id="presence-why">You are on a call: you can go offline' in html
    assert '<input name="reason" maxlength="200" disabled>' in html

    # a stale page still posting "offline" mid-call: routing defers it, as the CLI's path does
    token = csrf_token(client)
    client.post("/console/handler/presence", data={"csrf_token": token, "presence": "offline"})
    assert core.presence(str(handler_id))[0] == "on_call"


def _missed(app, core, handler_id, call_id: int, offer_id: int, status: str, ago_s: int) -> None:
    """The offer ended unanswered (or answered without 1) ``ago_s`` ago; the caller hung up and
    the handler is back on duty."""
    core.decline(str(call_id), str(handler_id), missed=True, now=time.time())
    core.remove(str(call_id))
    core.set_presence(str(handler_id), "available", now=time.time())
    ended = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=ago_s)
    with app.app_context():
        session = db_session()
        session.execute(update(Offer).where(Offer.id == offer_id)
                        .values(state="missed", ended_at=ended))  # fmt: skip
        session.add(CallEvent(interaction_id=call_id, event="RINGNOANSWER", time=ended,
                              data={"handler_id": handler_id, "offer_id": offer_id,
                                    "status": status, "ringtime_ms": 25903}))  # fmt: skip
        session.commit()


def test_a_missed_offer_is_told_next_time(app, client, core):
    handler_id = phone_handler(app)
    signed_in(app, client, handler_id)
    _, call_id, offer_id = offered(app, core, handler_id)
    _missed(
        app, core, handler_id, call_id, offer_id, "completed", ago_s=5
    )  # answered, 1 not pressed
    html = client.get("/console/handler/live").get_data(as_text=True)
    assert ('id="missed-offer" role="status">You answered but did not press 1: the call went to '
            "someone else.") in html  # fmt: skip

    _, call_id, offer_id = offered(app, core, handler_id)  # a later offer, not answered at all
    _missed(app, core, handler_id, call_id, offer_id, "no-answer", ago_s=5)
    html = client.get("/console/handler/live").get_data(as_text=True)
    assert "A call offered to you was not answered" in html and "did not press 1" not in html

    _, call_id, offer_id = offered(app, core, handler_id)
    _missed(app, core, handler_id, call_id, offer_id, "completed", ago_s=20 * 60)  # long ago
    assert 'id="missed-offer"' not in client.get("/console/handler/live").get_data(as_text=True)


def test_a_break_after_missed_offers_is_told_in_the_page_language(app, client, core):
    handler_id = phone_handler(app)
    signed_in(app, client, handler_id, language="uk")
    for _ in range(2):  # routing's limit (ROUTING_MAX_MISSES): two misses in a row
        _, call_id, _ = offered(app, core, handler_id)
        core.decline(str(call_id), str(handler_id), missed=True, now=time.time())
        core.remove(str(call_id))  # the caller hung up
    assert core.presence(str(handler_id)) == ("break", "missed 2 offers in a row")
    html = client.get("/console/handler").get_data(as_text=True)
    assert "на перерві</strong> (не брав(-ла) запропоновані дзвінки)" in html
    assert "missed" not in html and "Routing put you" not in html
    assert "Система поставила вас на перерву" in html
    assert 'aria-pressed="true" class="current"' in button(html, "break")


def in_wrap_up(app, core, handler_id: int) -> int:
    """A call of this handler connected then ended the real way (``offers.complete``): their
    wrap-up (30 s) begins and its end is scheduled. The call's id."""
    _, call_id, offer_id = offered(app, core, handler_id)
    assert core.accept(str(call_id), str(handler_id), time.time()).won
    with app.app_context():
        session = db_session()
        session.execute(update(Offer).where(Offer.id == offer_id).values(state="accepted"))
        session.execute(update(QueueEntry).where(QueueEntry.interaction_id == call_id)
                        .values(state="connected", handler_id=handler_id,
                                connected_at=dt.datetime.now(dt.UTC)))  # fmt: skip
        session.commit()
        offers.complete(session, call_id, "COMPLETECALLER")
    assert core.presence(str(handler_id))[0] == "wrap_up"
    return call_id


def countdown(html: str) -> int:
    return int(html.split('data-countdown="')[1].split('"')[0])


def test_more_time_extends_the_wrap_up_and_delays_the_next_offer(app, client, core):
    handler_id = phone_handler(app)
    with app.app_context():
        assert db_session().get(Handler, handler_id).wrap_up_s == 30
    user_id = signed_in(app, client, handler_id)
    in_wrap_up(app, core, handler_id)
    html = client.get("/console/handler").get_data(as_text=True)
    assert 28 <= countdown(html) <= 30 and 'id="wrap-up-more"' in html
    assert 'data-countdown-format="mmss">0:' in html  # shown as m:ss

    token = csrf_token(client)
    done = client.post("/console/handler/wrap-up/more", data={"csrf_token": token})
    assert done.status_code == 302 and done.headers["Location"].endswith("/console/handler")
    until = core.wrap_up_until(str(handler_id))
    assert until is not None and 87 <= until - time.time() <= 90
    with app.app_context():  # the new end is scheduled
        timers = dict(due_timers(now=until + 1))
        assert timers[f"routing-wrap-up-more-{handler_id}-{int(until * 1000)}"] == until
    html = client.get("/console/handler").get_data(as_text=True)
    assert "Wrap-up extended: 1:" in html and 87 <= countdown(html) <= 90
    (row,) = audits(app, "handler.wrap_up_more")
    assert (row.object_id, row.staff_user_id, row.details["added_s"]) == (
        str(handler_id), user_id, 60,
    )  # fmt: skip

    # a caller arrives; the end-of-wrap-up job due at the handler's own 30 s runs: not yet
    _, waiting = a_case(app)
    core.enqueue(str(waiting), language="ru", kind="family", priority=0, enqueued_at=time.time())
    with app.app_context():
        assert routing_jobs.end_wrap_up(handler_id) == "wrap_up"
    assert core.presence(str(handler_id))[0] == "wrap_up" and core.dispatch(time.time()) == []
    assert core.caller_state(str(waiting)) == "waiting"
    # at the new end the scheduled job frees them and the caller is offered in the same step
    change = core.end_wrap_up(str(handler_id), until, dispatch=True)
    assert [(o.caller_id, o.handler_ids) for o in change.offers] == [
        (str(waiting), (str(handler_id),))
    ]


def test_more_time_has_a_limit_and_needs_a_wrap_up(app, client, core):
    handler_id = phone_handler(app)
    signed_in(app, client, handler_id)
    token = csrf_token(client)
    refused = client.post("/console/handler/wrap-up/more", data={"csrf_token": token})
    assert refused.status_code == 302 and core.wrap_up_until(str(handler_id)) is None
    assert "No more wrap-up time can be added now." in client.get("/console/handler").get_data(
        as_text=True
    )
    in_wrap_up(app, core, handler_id)
    for _ in range(5):  # five minutes past the handler's own 30 s
        client.post("/console/handler/wrap-up/more", data={"csrf_token": token})
    html = client.get("/console/handler").get_data(as_text=True)
    assert 'id="wrap-up-no-more"' in html and 'id="wrap-up-more"' not in html
    assert 326 <= countdown(html) <= 330
    client.post("/console/handler/wrap-up/more", data={"csrf_token": token})
    assert len(audits(app, "handler.wrap_up_more")) == 5
    assert 326 <= core.wrap_up_until(str(handler_id)) - time.time() <= 330
    assert client.post("/console/handler/wrap-up/more").status_code == 400  # no CSRF token


def test_notes_show_their_author_and_times_read_in_words(app, client, core):
    handler_id = phone_handler(app)
    user_id = signed_in(app, client, handler_id)
    with app.app_context():
        core.upsert_handler(profile(db_session().get(Handler, handler_id)))
    inquiry_id, call_id = a_case(app, handler_id=handler_id, state="connected", earlier_calls=1)
    token = csrf_token(client)
    client.post(f"/console/handler/inquiries/{inquiry_id}/notes",
                data={"csrf_token": token, "text": "asked for the Red Cross number",
                      "interaction_id": str(call_id)})  # fmt: skip
    html = client.get("/console/handler").get_data(as_text=True)
    with app.app_context():
        from staff.models import StaffUser

        name = db_session().get(StaffUser, user_id).display_name
    assert re.search(rf"\d{{1,2}} \w{{3}} \d{{4}}, \d\d:\d\d · {re.escape(name)}</span> — "
                     "asked for the Red Cross number", html)  # fmt: skip
    assert "(UTC)" not in html and "in-progress" not in html and ">in progress<" in html
    assert ">ended<" in html  # the earlier call's status in words
