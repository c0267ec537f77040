"""Call-backs end to end: a waiting caller presses 2, hangs up and keeps their place; at the
front a handler accepts, the system calls the caller back, 1 connects them; failed attempts are
retried in the same place, at most ROUTING_CALLBACK_ATTEMPTS times."""

from __future__ import annotations

from sqlalchemy import select

from db import db_session
from inquiries.models import Inquiry, Interaction
from routing.service import routing_core
from tests.e2e.test_routing_calls import (
    FLOW,
    HANDLER_A,
    add_handler,
    drain,
    entry,
    events,
    names,
    queued_caller,
)
from tests.support import handles

CALLER = "+79161234567"
OTHER_CALLER = "+79165554433"


def callbacks_now(hotline, **more) -> None:
    """Retries at once (the virtual clock does not drive RQ's scheduler)."""
    svc = handles(hotline.app)
    svc.settings = svc.settings.replace(routing_callback_retry_s=0, **more)


def ask_for_callback(hotline, from_: str = CALLER):
    call = queued_caller(hotline) if from_ == CALLER else _queued_from(hotline, from_)
    call.wait(6)
    assert FLOW.text("ru", "queue_callback_option") in call.said_texts()
    call.press("2")
    hotline.emulator.settle()
    assert FLOW.text("ru", "callback_confirmed") in call.said_texts()
    assert call.ended
    return call


def _queued_from(hotline, from_: str):
    call = hotline.dial(from_)
    call.press("1")
    call.press("0")
    assert call.activity == "queue"
    return call


def test_a_callback_keeps_the_place_and_connects_the_caller(hotline):
    callbacks_now(hotline)
    add_handler(hotline, HANDLER_A, "Anna")
    first = ask_for_callback(hotline)  # queued first, then hung up
    row = entry(hotline, first.sid)
    assert row.state == "waiting" and row.callback_requested_at is not None
    assert "CALLBACK_REQUESTED" in names(hotline, first.sid)
    assert "ABANDON" not in names(hotline, first.sid)
    second = _queued_from(hotline, OTHER_CALLER)  # a live caller, queued later

    drain(hotline)
    handler = hotline.emulator.phone(HANDLER_A)
    leg = handler.answer(handler.wait_for_ring())
    whisper = " ".join(leg.said_texts())
    assert "Просьба перезвонить" in whisper  # the earlier place wins, as a call-back
    leg.press("1")
    hotline.emulator.settle()
    assert leg.activity == "conference"
    assert entry(hotline, first.sid).state == "calling_back"

    back = hotline.emulator.phone(CALLER).answer(hotline.emulator.phone(CALLER).wait_for_ring())
    assert back.said_texts()[0] == FLOW.text("ru", "callback_greeting")
    assert "горяч" not in " ".join(back.said_texts()).lower()  # the greeting names nobody
    back.press("1")
    hotline.emulator.settle()
    assert back.activity == "conference" and leg.activity == "conference"
    leg.say("Здравствуйте, вы просили перезвонить", language="ru-RU")
    assert "Здравствуйте, вы просили перезвонить" in back.voices_heard()

    got = events(hotline, first.sid)
    connect = next(e for e in got if e.event == "CONNECT")
    assert connect.data["callback"] is True and connect.data["attempt"] == 1
    attempt = next(e for e in got if e.event == "CALLBACK_ATTEMPT")
    assert attempt.data["result"] == "connected"
    assert entry(hotline, first.sid).state == "connected"
    assert entry(hotline, second.sid).state == "waiting"  # the live caller waits on
    assert second.activity == "queue"

    back.hang_up()
    hotline.emulator.settle()
    assert entry(hotline, first.sid).state == "done"
    assert "COMPLETECALLER" in names(hotline, first.sid)
    assert leg.ended
    second.hang_up()


def test_unanswered_callbacks_are_retried_three_times_then_left_to_staff(hotline):
    callbacks_now(hotline)
    handler_id = add_handler(hotline, HANDLER_A, "Anna")
    first = ask_for_callback(hotline)
    handler = hotline.emulator.phone(HANDLER_A)
    caller_phone = hotline.emulator.phone(CALLER)
    for attempt in (1, 2, 3):
        drain(hotline)
        leg = handler.answer(handler.wait_for_ring(max_seconds=5))
        leg.press("1")
        hotline.emulator.settle()
        assert caller_phone.wait_for_ring(max_seconds=5) is not None
        hotline.emulator.wait(40)  # the caller's phone rings out
        hotline.emulator.settle()
        assert leg.ended  # the handler heard why and was let go
        assert any("не ответил" in t for t in leg.said_texts())
        row = entry(hotline, first.sid)
        assert row.callback_attempts == attempt
    assert row.state == "callback_failed"
    tries = [e.data for e in events(hotline, first.sid) if e.event == "CALLBACK_ATTEMPT"]
    assert [t["attempt"] for t in tries] == [1, 2, 3]
    assert [t["final"] for t in tries] == [False, False, True]
    assert {t["result"] for t in tries} == {"no-answer"}
    drain(hotline)
    assert not handler.ringing()  # nothing more is offered
    with hotline.app.app_context():
        svc = handles(hotline.app)
        core = routing_core(svc.settings, svc.redis)
        assert core.presence(str(handler_id))[0] == "available"
        assert core.caller_state(str(row.interaction_id)) is None
        session = db_session()
        inquiry = session.scalar(
            select(Inquiry).join(Interaction).where(Interaction.provider_sid == first.sid)
        )
        assert inquiry.callback_requested  # staff still see the request


def test_the_handler_hanging_up_stops_the_callback(hotline):
    callbacks_now(hotline)
    add_handler(hotline, HANDLER_A, "Anna")
    first = ask_for_callback(hotline)
    drain(hotline)
    handler = hotline.emulator.phone(HANDLER_A)
    leg = handler.answer(handler.wait_for_ring())
    leg.press("1")
    hotline.emulator.settle()
    caller_phone = hotline.emulator.phone(CALLER)
    ring = caller_phone.wait_for_ring(max_seconds=5)
    leg.hang_up()
    hotline.emulator.settle()
    assert not caller_phone.ringing()
    assert hotline.emulator.call(ring.sid).status in ("canceled", "completed")
    tries = [e.data for e in events(hotline, first.sid) if e.event == "CALLBACK_ATTEMPT"]
    assert tries and tries[0]["result"] == "handler-left" and not tries[0]["final"]
    row = entry(hotline, first.sid)
    assert row.state == "waiting" and row.callback_attempts == 1
    drain(hotline)  # back in its place: offered again
    assert handler.wait_for_ring(max_seconds=5) is not None


def test_a_withheld_number_is_not_offered_a_callback(hotline):
    add_handler(hotline, HANDLER_A, "Anna")
    call = _queued_from(hotline, "+266696687")
    call.wait(6)
    assert FLOW.text("ru", "queue_leave_option") in call.said_texts()
    assert FLOW.text("ru", "queue_callback_option") not in call.said_texts()
    call.press("2")  # nothing happens: still waiting
    hotline.emulator.settle()
    assert not call.ended
    row = entry(hotline, call.sid)
    assert row.state == "waiting" and row.callback_requested_at is None
    call.hang_up()
