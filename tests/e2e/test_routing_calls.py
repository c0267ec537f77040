"""Routing end to end: a caller asks for a person, waits in the queue, a handler's phone rings
with a whisper, 1 accepts, both meet in the case's conference; misses, rejects and abandons."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from db import db_session
from inquiries.models import CallEvent, Interaction
from ivr.flow import load_flow
from routing.jobs import tick
from routing.models import Handler, Offer, QueueEntry
from routing.service import create_handler, routing_core, set_presence
from tests.support import handles, run_jobs

FLOW = load_flow()
HANDLER_A = "+380671112233"
HANDLER_B = "+380672223344"


def drain(hotline) -> int:
    """Run every queued RQ job here (the app context pushed: jobs use it)."""
    with hotline.app.app_context():
        svc = handles(hotline.app)
        ran = 0
        while svc.queued():
            run_jobs(hotline.app)
            ran += 1
            if ran > 20:
                break
        return ran


def add_handler(hotline, phone: str, name: str, *, position: int = 0) -> int:
    with hotline.app.app_context():
        svc = handles(hotline.app)
        session = db_session()
        handler_id = create_handler(
            session, svc.protector, display_name=name, languages=["ru"],
            skills=["surrender", "family", "pow_info", "other"], phone=phone, position=position,
            wrap_up_s=0,
        )  # fmt: skip
        session.commit()
        set_presence(session, routing_core(svc.settings, svc.redis), handler_id, "available")
        return handler_id


def events(hotline, sid: str) -> list[CallEvent]:
    with hotline.app.app_context():
        row = db_session().scalar(select(Interaction).where(Interaction.provider_sid == sid))
        assert row is not None
        return list(row.events)


def names(hotline, sid: str) -> list[str]:
    return [e.event for e in events(hotline, sid)]


def entry(hotline, sid: str) -> QueueEntry:
    with hotline.app.app_context():
        session = db_session()
        iid = session.scalar(select(Interaction.id).where(Interaction.provider_sid == sid))
        return session.scalar(select(QueueEntry).where(QueueEntry.interaction_id == iid))


def queued_caller(hotline):
    call = hotline.dial()
    call.press("1")  # Russian
    call.press("0")  # a person
    assert call.activity == "queue"
    assert FLOW.text("ru", "queue_wait") in call.said_texts()
    return call


def test_nobody_on_duty_still_goes_to_the_message_box(hotline):
    call = hotline.dial()
    call.press("1")
    call.press("0")
    assert call.said_texts()[-1] == FLOW.text("ru", "operators_busy")
    assert call.activity == "record"
    call.hang_up()


def test_a_handler_accepts_and_both_meet_in_the_conference(hotline):
    add_handler(hotline, HANDLER_A, "Anna")
    call = queued_caller(hotline)
    assert FLOW.text("ru", "queue_position").format(position=1) in call.said_texts()
    call.wait(6)
    assert FLOW.text("ru", "queue_leave_option") in call.said_texts()
    assert entry(hotline, call.sid).state == "waiting"
    assert "ENTERQUEUE" in names(hotline, call.sid)

    drain(hotline)
    phone = hotline.emulator.phone(HANDLER_A)
    leg = phone.wait_for_ring()
    assert HANDLER_A not in leg.sid
    assert entry(hotline, call.sid).state == "offered"
    leg = phone.answer(leg)
    whisper = " ".join(leg.said_texts())
    assert "русский" in whisper and "нажмите 1" in whisper
    leg.press("1")
    hotline.emulator.settle()
    assert leg.activity == "conference"
    assert call.activity == "conference"
    row = entry(hotline, call.sid)
    assert row.state == "connected" and row.handler_id is not None
    assert [n for n in names(hotline, call.sid) if n in ("ENTERQUEUE", "OFFER", "CONNECT")] == [
        "ENTERQUEUE", "OFFER", "CONNECT",
    ]  # fmt: skip

    leg.say("Здравствуйте, я вас слушаю", language="ru-RU")
    assert "Здравствуйте, я вас слушаю" in call.voices_heard()

    call.hang_up()
    hotline.emulator.settle()
    assert entry(hotline, call.sid).state == "done"
    assert "COMPLETECALLER" in names(hotline, call.sid)
    assert "COMPLETEAGENT" not in names(hotline, call.sid)
    assert leg.ended
    with hotline.app.app_context():
        svc = handles(hotline.app)
        core = routing_core(svc.settings, svc.redis)
        assert core.presence(str(row.handler_id))[0] == "wrap_up"
        drain(hotline)  # the wrap-up (0 s here) ends: available again
        assert core.presence(str(row.handler_id))[0] == "available"


def test_the_handler_hangs_up_first(hotline):
    add_handler(hotline, HANDLER_A, "Anna")
    call = queued_caller(hotline)
    drain(hotline)
    leg = hotline.emulator.phone(HANDLER_A).answer()
    leg.press("1")
    hotline.emulator.settle()
    assert call.activity == "conference"
    leg.hang_up()
    hotline.emulator.settle()
    assert call.ended
    assert "COMPLETEAGENT" in names(hotline, call.sid)
    assert "COMPLETECALLER" not in names(hotline, call.sid)
    assert entry(hotline, call.sid).state == "done"


def test_a_missed_offer_goes_to_the_next_handler(hotline):
    first = add_handler(hotline, HANDLER_A, "Anna")
    add_handler(hotline, HANDLER_B, "Boris")
    call = queued_caller(hotline)
    drain(hotline)
    a, b = hotline.emulator.phone(HANDLER_A), hotline.emulator.phone(HANDLER_B)
    ringing = [p for p in (a, b) if p.ringing()]
    assert len(ringing) == 1
    hotline.emulator.wait(25)  # nobody answers within the offer timeout
    hotline.emulator.settle()
    assert "RINGNOANSWER" in names(hotline, call.sid)
    drain(hotline)
    other = b if ringing[0] is a else a
    leg = other.wait_for_ring(max_seconds=5)
    assert leg is not None
    offers_made = [e for e in events(hotline, call.sid) if e.event == "OFFER"]
    assert len({e.data["handler_id"] for e in offers_made}) == 2
    assert first in {e.data["handler_id"] for e in offers_made}
    call.hang_up()


def test_a_rejected_offer_is_logged_and_the_caller_waits_again(hotline):
    add_handler(hotline, HANDLER_A, "Anna")
    call = queued_caller(hotline)
    drain(hotline)
    phone = hotline.emulator.phone(HANDLER_A)
    phone.wait_for_ring()
    phone.reject()
    hotline.emulator.settle()
    assert "REJECT" in names(hotline, call.sid)
    assert entry(hotline, call.sid).state == "waiting"
    assert call.activity == "queue"
    call.hang_up()


def test_the_caller_hangs_up_while_offered_the_ringing_stops(hotline):
    add_handler(hotline, HANDLER_A, "Anna")
    call = queued_caller(hotline)
    drain(hotline)
    phone = hotline.emulator.phone(HANDLER_A)
    leg = phone.wait_for_ring()
    call.hang_up()
    hotline.emulator.settle()
    assert "ABANDON" in names(hotline, call.sid)
    assert entry(hotline, call.sid).state == "abandoned"
    abandon = next(e for e in events(hotline, call.sid) if e.event == "ABANDON")
    assert abandon.data["position"] is None  # being offered: no longer in the waiting line
    assert "waittime_s" in abandon.data
    assert not phone.ringing()
    assert hotline.emulator.call(leg.sid).status == "canceled"
    with hotline.app.app_context():
        offer = db_session().scalar(select(Offer))
        assert offer.state == "canceled"
    assert "RINGCANCELED" in names(hotline, call.sid)


def test_pressing_1_while_waiting_leaves_a_message(hotline):
    add_handler(hotline, HANDLER_A, "Anna")
    call = queued_caller(hotline)
    call.press("1")
    assert call.said_texts()[-1] == FLOW.text("ru", "operators_busy")
    assert call.activity == "record"
    assert "EXITWITHKEY" in names(hotline, call.sid)
    assert entry(hotline, call.sid).state == "left"
    call.hang_up()


@pytest.mark.parametrize("misses", [2])
def test_too_many_misses_put_the_handler_on_break(hotline, misses):
    handler_id = add_handler(hotline, HANDLER_A, "Anna")
    call = queued_caller(hotline)
    for _ in range(misses):
        drain(hotline)
        hotline.emulator.phone(HANDLER_A).wait_for_ring(max_seconds=5)
        hotline.emulator.wait(25)
        hotline.emulator.settle()
    with hotline.app.app_context():
        assert db_session().get(Handler, handler_id).presence == "break"
    call.hang_up()


def test_ring_all_first_accept_wins_and_the_other_phone_stops(hotline):
    svc = handles(hotline.app)
    svc.settings = svc.settings.replace(routing_strategy="ring-all")
    add_handler(hotline, HANDLER_A, "Anna", position=1)
    add_handler(hotline, HANDLER_B, "Boris", position=2)
    call = queued_caller(hotline)
    drain(hotline)
    a, b = hotline.emulator.phone(HANDLER_A), hotline.emulator.phone(HANDLER_B)
    assert a.ringing() and b.ringing()
    b_leg = b.ringing()[0]
    leg = a.answer()
    leg.press("1")
    hotline.emulator.settle()
    assert call.activity == "conference" and leg.activity == "conference"
    assert not b.ringing()
    assert hotline.emulator.call(b_leg.sid).status == "canceled"
    got = names(hotline, call.sid)
    assert got.count("OFFER") == 2 and "CONNECT" in got and "RINGCANCELED" in got
    call.hang_up()


def test_an_answer_without_the_key_is_a_miss_not_an_accept(hotline):
    add_handler(hotline, HANDLER_A, "Anna")
    call = queued_caller(hotline)
    drain(hotline)
    leg = hotline.emulator.phone(HANDLER_A).answer()  # a voicemail, say: it presses nothing
    leg.wait_until_finished(max_seconds=120)
    hotline.emulator.settle()
    got = names(hotline, call.sid)
    assert "RINGNOANSWER" in got and "CONNECT" not in got
    assert entry(hotline, call.sid).state == "waiting" and call.activity == "queue"
    call.hang_up()


def test_a_ukrainian_caller_reaches_a_russian_speaker_after_the_fallback_wait(hotline):
    """No Ukrainian speaker on duty: after ROUTING_LANGUAGE_FALLBACK_AFTER_S the caller is
    offered to a handler with Ukrainian as a fallback language (the periodic tick notices the
    wait; no event does), and LANGUAGE_FALLBACK says so."""
    svc = handles(hotline.app)
    svc.settings = svc.settings.replace(routing_language_fallback_after_s=1)
    with hotline.app.app_context():
        session = db_session()
        handler_id = create_handler(
            session, svc.protector, display_name="Olga", languages=["ru"],
            fallback_languages=["uk"], skills=["surrender", "family", "pow_info", "other"],
            phone=HANDLER_A, wrap_up_s=0,
        )  # fmt: skip
        session.commit()
        set_presence(session, routing_core(svc.settings, svc.redis), handler_id, "available")
    call = hotline.dial()
    call.press("2")  # Ukrainian
    call.press("0")
    assert call.activity == "queue"
    drain(hotline)
    phone = hotline.emulator.phone(HANDLER_A)
    assert not phone.ringing()  # not before the fallback wait
    assert "LANGUAGE_FALLBACK" not in names(hotline, call.sid)
    time.sleep(1.2)
    with hotline.app.app_context():
        assert tick()["offers"] == 1
    leg = phone.answer(phone.wait_for_ring(max_seconds=5))
    assert "украинский" in " ".join(leg.said_texts())  # the whisper names the language
    fallback = next(e for e in events(hotline, call.sid) if e.event == "LANGUAGE_FALLBACK")
    assert fallback.data["language"] == "uk" and fallback.data["handler_ids"] == [handler_id]
    call.hang_up()


def test_a_full_queue_sends_the_next_caller_to_the_message_box(hotline):
    svc = handles(hotline.app)
    svc.settings = svc.settings.replace(routing_max_queue=1)
    add_handler(hotline, HANDLER_A, "Anna")
    first = queued_caller(hotline)  # the one place in the queue
    second = hotline.dial("+79160000009")
    second.press("1")
    second.press("0")
    assert second.activity == "record"
    assert second.said_texts()[-1] == FLOW.text("ru", "operators_busy")
    assert entry(hotline, second.sid).state == "overflow"
    assert "OVERFLOW" in names(hotline, second.sid)
    assert entry(hotline, first.sid).state == "waiting"
    first.hang_up()
    second.hang_up()


def test_a_caller_hanging_up_while_waiting_is_an_abandon_with_place_and_wait(hotline):
    add_handler(hotline, HANDLER_A, "Anna")
    first = queued_caller(hotline)
    drain(hotline)
    leg = hotline.emulator.phone(HANDLER_A).answer()
    leg.press("1")  # Anna is busy with the first caller
    hotline.emulator.settle()
    second = hotline.dial("+79160000008")
    second.press("1")
    second.press("0")
    second.wait(12)
    second.hang_up()
    hotline.emulator.settle()
    abandon = next(e for e in events(hotline, second.sid) if e.event == "ABANDON")
    assert abandon.data["position"] == 1 and abandon.data["waittime_s"] >= 0
    assert entry(hotline, second.sid).state == "abandoned"
    first.hang_up()


@pytest.mark.parametrize("order", ["before", "after"])
def test_an_accepted_caller_leaves_the_queue_redirected_not_abandoned(hotline, order):
    """The accept takes the caller out of the queue over REST (``calls(sid).update(url=…
    /routing/join)``). Twilio then requests the Enqueue action "right away" with
    ``QueueResult=redirected`` ("the call was redirected out of the queue, typically by a REST
    API request") and runs the redirect's URL. Whether the action comes before or after
    ``/routing/join`` is not documented: both orders. The caller meets the handler; the case
    shows one CONNECT, no abandon, no leave, no message box."""
    emu = hotline.emulator
    emu.queue_redirect_action = order
    seen: list[tuple[str, str | None]] = []
    emu.observe(
        webhook_answer=lambda url, params, reply: seen.append(
            (urlsplit(url).path, params.get("QueueResult"))
        )
    )
    add_handler(hotline, HANDLER_A, "Anna")
    call = queued_caller(hotline)
    call.wait(6)
    drain(hotline)
    phone = hotline.emulator.phone(HANDLER_A)
    leg = phone.answer(phone.wait_for_ring())
    leg.press("1")
    emu.settle()

    actions = [result for path, result in seen if path == "/routing/queue-action"]
    assert actions == ["redirected"]
    paths = [path for path, _ in seen if path in ("/routing/queue-action", "/routing/join")]
    first, second = "/routing/queue-action", "/routing/join"
    assert paths == ([first, second] if order == "before" else [second, first])
    assert call.activity == "conference" and leg.activity == "conference"
    leg.say("Здравствуйте, я вас слушаю", language="ru-RU")
    assert "Здравствуйте, я вас слушаю" in call.voices_heard()
    assert FLOW.text("ru", "operators_busy") not in call.said_texts()
    got = names(hotline, call.sid)
    assert got.count("CONNECT") == 1
    assert not {"ABANDON", "EXITWITHKEY", "OVERFLOW"} & set(got)
    assert entry(hotline, call.sid).state == "connected"
    assert not [e for e in emu.debugger if e["call_sid"] == call.sid]

    call.hang_up()
    emu.settle()
    got = names(hotline, call.sid)
    assert entry(hotline, call.sid).state == "done"
    assert got.count("COMPLETECALLER") == 1 and "COMPLETEAGENT" not in got
    assert "ABANDON" not in got and got.count("CONNECT") == 1
