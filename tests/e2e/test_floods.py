"""Floods through the emulator: one number calling 50 times at once, and 500 different numbers
at once, while a genuine caller asks for a person — who still reaches the queue, and whose
offer rings a handler on duty.

One number: its calls past CALL_LIMIT_PER_NUMBER are refused with <Reject> (busy, never
answered, nothing written); of those answered, one takes a place in the queue and the others
hear ``already_waiting`` and the message box. 500 numbers: each is a different (spoofed)
number, so the per-number limits do not apply; the app answers every one of them itself (no
fallback, no carrier error) and the genuine caller, dialling in the middle of the flood, is
queued and offered while the 500 are still on the line.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select

from db import db_session
from inquiries.models import Caller, Interaction
from ivr.flow import load_flow
from routing.models import Offer
from tests.e2e.test_routing_calls import HANDLER_A, HANDLER_B, add_handler, drain, entry

FLOW = load_flow()
FLOODER = "+79169990033"
GENUINE = "+380671234500"


def ask_for_a_person(call, *, listen: bool = True):
    call.press("1", listen=listen)  # Russian
    call.press("0", listen=listen)  # a person
    return call


def count(hotline, model) -> int:
    with hotline.app.app_context():
        return db_session().scalar(select(func.count()).select_from(model))


def offered_interactions(hotline) -> dict[int, int]:
    """Interaction id -> handler id of each offer made."""
    with hotline.app.app_context():
        return dict(db_session().execute(select(Offer.interaction_id, Offer.handler_id)).all())


def interaction_id(hotline, sid: str) -> int:
    with hotline.app.app_context():
        found = db_session().scalar(select(Interaction.id).where(Interaction.provider_sid == sid))
        assert found is not None
        return found


def carrier_errors(hotline) -> list:
    return [e for e in hotline.emulator.debugger if e.get("level") != "warning"]


def test_one_number_calling_50_times_takes_one_place_and_the_genuine_caller_is_offered(hotline):
    anna = add_handler(hotline, HANDLER_A, "Anna")
    boris = add_handler(hotline, HANDLER_B, "Boris", position=1)
    limit = hotline.settings.call_limit_per_number
    with ThreadPoolExecutor(max_workers=25) as pool:
        flood = list(pool.map(lambda _: hotline.dial(FLOODER, listen=False), range(50)))
    refused = [call for call in flood if call.ended]
    answered = [call for call in flood if not call.ended]
    assert len(answered) == limit and len(refused) == 50 - limit
    for call in refused:  # <Reject reason="busy">: never answered, a busy tone
        assert call.status == "busy" and [h.kind for h in call.heard] == ["tone"]
    hotline.emulator.settle()
    assert count(hotline, Interaction) == limit and count(hotline, Caller) == 1

    with ThreadPoolExecutor(max_workers=limit) as pool:  # every answered call asks for a person
        list(pool.map(lambda call: ask_for_a_person(call, listen=False), answered))
    for call in answered:  # their prompts play out
        call.listen()
    queued = [call for call in answered if call.activity == "queue"]
    boxed = [call for call in answered if call.activity == "record"]
    assert len(queued) == 1 and len(boxed) == limit - 1
    for call in boxed:
        assert FLOW.text("ru", "already_waiting") in call.said_texts()

    genuine = ask_for_a_person(hotline.dial(GENUINE))
    assert genuine.activity == "queue"
    assert FLOW.text("ru", "queue_wait") in genuine.said_texts()
    drain(hotline)
    offers = offered_interactions(hotline)
    genuine_id = interaction_id(hotline, genuine.sid)
    assert set(offers) == {interaction_id(hotline, queued[0].sid), genuine_id}
    number = HANDLER_A if offers[genuine_id] == anna else HANDLER_B
    assert offers[genuine_id] in (anna, boris)
    phone = hotline.emulator.phone(number)
    leg = phone.answer(phone.ringing()[0])
    leg.press("1")
    hotline.emulator.settle()
    assert genuine.activity == "conference" and entry(hotline, genuine.sid).state == "connected"
    assert carrier_errors(hotline) == []
    for call in (*answered, genuine):
        call.hang_up()
    hotline.emulator.settle()


FLOOD_SIZE = 500


def test_500_numbers_at_once_and_the_genuine_caller_is_still_queued_and_offered(hotline):
    add_handler(hotline, HANDLER_A, "Anna")
    numbers = [f"+7900{n:07d}" for n in range(FLOOD_SIZE)]
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=32) as pool:
        first_half = [pool.submit(hotline.dial, n, listen=False) for n in numbers[:250]]
        genuine = ask_for_a_person(hotline.dial(GENUINE, listen=False), listen=False)
        second_half = [pool.submit(hotline.dial, n, listen=False) for n in numbers[250:]]
        flood = [future.result() for future in (*first_half, *second_half)]
    hotline.emulator.settle()
    answered_s = time.monotonic() - started
    assert all(not call.ended for call in flood)  # each answered by the app, none refused
    assert all(call.activity in ("gather", "media") for call in flood)
    assert carrier_errors(hotline) == []  # no timeout, no error, no fallback
    genuine.listen()  # "please stay on the line" plays out (the flood's menus still play)
    assert genuine.activity == "queue"
    assert FLOW.text("ru", "queue_wait") in genuine.said_texts()
    assert all(not call.ended for call in flood)
    assert count(hotline, Interaction) == FLOOD_SIZE + 1

    drain(hotline)  # the offer, while the 500 are still on the line
    (ringing,) = hotline.emulator.phone(HANDLER_A).ringing()
    assert set(offered_interactions(hotline)) == {interaction_id(hotline, genuine.sid)}

    with ThreadPoolExecutor(max_workers=32) as pool:
        list(pool.map(lambda call: call.hang_up(), flood))
    hotline.emulator.settle()
    leg = hotline.emulator.phone(HANDLER_A).answer(ringing)
    leg.press("1")
    hotline.emulator.settle()
    assert genuine.activity == "conference"
    genuine.hang_up()
    hotline.emulator.settle()
    total_s = time.monotonic() - started
    print(f"\n{FLOOD_SIZE} calls answered in {answered_s:.1f} s; the whole test {total_s:.1f} s")
