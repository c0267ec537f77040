"""Floods: hostile parties calling the line to crowd out real callers, attacked through the
Procfile's gunicorn over a real socket.

What we promise: a number on the blocklist is refused with ``<Reject>`` as the first (and only)
verb — the carrier does not even answer it — and nothing of the call is written, its status
callback included; a number over its rate is refused the same way, however many of its calls
arrive at once; a flood of withheld calls fills only the withheld callers' own window, never
the window of callers with a number; the refusals leave no number in Redis or in the log.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor

import redis
from sqlalchemy import create_engine, func, select, text

from db import db_session
from inquiries import blocklist
from inquiries.models import Caller, CallEvent, Inquiry, Interaction
from tests.conftest import PUBLIC_BASE_URL, call_params, new_call_sid
from tests.support import handles

BLOCKED = "+79169990011"
FLOODER = "+79169990022"
GENUINE = "+380671112299"
WITHHELD = "+266696687"


def verbs(answer) -> list[str]:
    assert answer.status == 200, answer.text
    assert answer.headers["content-type"].startswith("text/xml")
    return [element.tag for element in ET.fromstring(answer.body)]


def counts(settings) -> dict[str, int]:
    engine = create_engine(settings.database_url)
    try:
        with engine.connect() as conn:
            return {
                model.__name__: conn.execute(select(func.count()).select_from(model)).scalar_one()
                for model in (Caller, Inquiry, Interaction, CallEvent)
            }
    finally:
        engine.dispose()


def test_a_blocked_number_is_rejected_first_and_leaves_nothing_behind(app, settings, served):
    """The attack: a number a supervisor blocked keeps calling (and its calls' status callbacks
    follow). We promise <Reject> before any other verb, and no caller, case, call or event."""
    with app.app_context():
        db = db_session()
        blocklist.add(
            db, handles(app).protector, number=BLOCKED, reason="threats", hours=24, max_days=90,
            actor=None,
        )  # fmt: skip
        db.commit()
    web = served("web")
    for _ in range(5):
        sid = new_call_sid()
        answer = web.signed_post(PUBLIC_BASE_URL, "/voice/incoming", call_params(sid, BLOCKED))
        assert verbs(answer) == ["Reject"]
        assert ET.fromstring(answer.body)[0].get("reason") == "busy"
        status = call_params(sid, BLOCKED, CallStatus="busy")
        assert verbs(web.signed_post(PUBLIC_BASE_URL, "/voice/status", status)) == []
    assert counts(settings) == {"Caller": 0, "Inquiry": 0, "Interaction": 0, "CallEvent": 0}
    genuine = web.signed_post(PUBLIC_BASE_URL, "/voice/incoming", call_params(new_call_sid()))
    assert verbs(genuine)[0] == "Gather"
    assert BLOCKED[1:] not in web.log() and BLOCKED[-7:] not in web.log()


def test_a_number_over_its_rate_is_rejected_even_when_its_calls_arrive_at_once(
    app, settings, served
):
    """The attack: one number (a dialer, or a spoofed number) sends many calls at the same
    moment, hoping parallel requests to several workers slip past the count. We promise exactly
    CALL_LIMIT_PER_NUMBER are answered; the others get <Reject> and write nothing."""
    web = served("web", CALL_LIMIT_PER_NUMBER="4", WEB_CONCURRENCY="2")

    def call(_: int) -> list[str]:
        params = call_params(new_call_sid(), FLOODER)
        return verbs(web.signed_post(PUBLIC_BASE_URL, "/voice/incoming", params))

    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(call, range(24)))
    assert sum(answer == ["Reject"] for answer in answers) == 20
    assert sum(answer[:1] == ["Gather"] for answer in answers) == 4
    assert counts(settings)["Interaction"] == 4
    again = web.signed_post(
        PUBLIC_BASE_URL, "/voice/incoming", call_params(new_call_sid(), FLOODER)
    )
    assert verbs(again) == ["Reject"]
    client = redis.Redis.from_url(settings.redis_url or "")
    try:
        keys = [key.decode() for key in client.keys("*")]
        assert any(key.startswith("hotline:screen:calls:") for key in keys)
        assert not any(FLOODER[1:] in key or FLOODER[-7:] in key for key in keys)
        assert int(client.get(next(k for k in keys if "rejected:rate" in k)) or 0) == 21
    finally:
        client.close()
    assert FLOODER[1:] not in web.log() and FLOODER[-7:] not in web.log()


def test_a_flood_of_withheld_calls_does_not_lock_out_callers_with_a_number(app, settings, served):
    """The attack: calls with the number withheld, which no per-number count can tell apart.
    We promise they share one window of their own (CALL_LIMIT_WITHHELD), refused past it,
    while callers with a number are counted each on their own and still get the menu."""
    web = served("web", CALL_LIMIT_WITHHELD="10")
    withheld = [
        verbs(web.signed_post(PUBLIC_BASE_URL, "/voice/incoming", call_params(new_call_sid(), w)))
        for w in [WITHHELD, "anonymous", "Restricted", ""] * 5
    ]
    assert sum(answer == ["Reject"] for answer in withheld) == 10
    for number in (GENUINE, "+79161230001", "+79161230002"):
        answer = web.signed_post(
            PUBLIC_BASE_URL, "/voice/incoming", call_params(new_call_sid(), number)
        )
        assert verbs(answer)[0] == "Gather"
    engine = create_engine(settings.database_url)
    try:
        with engine.connect() as conn:
            calls = conn.execute(text("SELECT COUNT(*) FROM interaction")).scalar_one()
    finally:
        engine.dispose()
    assert calls == 10 + 3
