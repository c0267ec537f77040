"""One place in the queue per number: a second call from a number that already waits hears
``already_waiting`` and gets the message box (a callback request), not a second place; withheld
numbers are exempt; the place is free again once the first call leaves the queue."""

from __future__ import annotations

import threading
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from db import db_session, utcnow
from inquiries.models import CallEvent, Interaction
from inquiries.service import CallLog
from routing.handover import places_held_by_caller
from routing.models import QueueEntry
from routing.service import routing_core
from tests.conftest import Carrier, call_params, new_call_sid
from tests.routing.test_queue import on_duty

CALLER = "+79161234567"
WITHHELD = "+266696687"


@pytest.fixture
def core(svc):
    return routing_core(svc.settings, svc.redis)


def ask_for_a_person(carrier, caller: str, sid: str | None = None) -> tuple[str, ET.Element]:
    sid = sid or new_call_sid()
    carrier.twiml("/voice/incoming", call_params(sid, caller))
    carrier.twiml("/voice/ivr/language?attempt=1", call_params(sid, caller, Digits="1"))
    return sid, carrier.twiml("/voice/ivr/main?attempt=1", call_params(sid, caller, Digits="0"))


def said(root: ET.Element) -> list[str]:
    return [el.text or "" for el in root.iter("Say")]


def entry_state(app, sid: str) -> str | None:
    with app.app_context():
        return db_session().scalar(
            select(QueueEntry.state)
            .join(Interaction, Interaction.id == QueueEntry.interaction_id)
            .where(Interaction.provider_sid == sid)
        )


def handover_why(app, sid: str) -> str | None:
    with app.app_context():
        data = db_session().scalar(
            select(CallEvent.data)
            .join(Interaction, Interaction.id == CallEvent.interaction_id)
            .where(Interaction.provider_sid == sid, CallEvent.event == "HANDOVER")
        )
        return (data or {}).get("why")


def test_a_second_call_from_a_waiting_number_gets_the_message_box(app, carrier, svc, core):
    on_duty(app, svc, core)
    flow = app.extensions["ivr_flow"]
    first, root = ask_for_a_person(carrier, CALLER)
    assert root.find("Enqueue") is not None
    second, root = ask_for_a_person(carrier, "+7 (916) 123-45-67")  # the same number
    assert root.find("Enqueue") is None and root.find("Record") is not None
    assert flow.text("ru", "already_waiting") in said(root)
    assert entry_state(app, first) == "waiting" and entry_state(app, second) is None
    assert handover_why(app, second) == "already waiting"
    assert len(core.waiting()) == 1
    with app.app_context():  # the case keeps a callback request
        row = db_session().scalar(select(Interaction).where(Interaction.provider_sid == second))
        assert row is not None and row.inquiry.callback_requested


def test_a_carrier_retry_of_the_queued_call_keeps_its_place(app, carrier, svc, core):
    on_duty(app, svc, core)
    sid, _ = ask_for_a_person(carrier, CALLER)
    retried = carrier.twiml("/voice/ivr/main?attempt=1", call_params(sid, CALLER, Digits="0"))
    assert retried.find("Enqueue") is not None
    assert entry_state(app, sid) == "waiting"


def test_the_place_is_free_again_once_the_first_call_left_the_queue(app, carrier, svc, core):
    on_duty(app, svc, core)
    first, _ = ask_for_a_person(carrier, CALLER)
    carrier.twiml("/routing/queue-action", call_params(first, CALLER, QueueResult="hangup"))
    assert entry_state(app, first) == "abandoned"
    second, root = ask_for_a_person(carrier, CALLER)
    assert root.find("Enqueue") is not None and entry_state(app, second) == "waiting"


def test_other_numbers_and_withheld_callers_each_get_their_place(app, carrier, svc, core):
    on_duty(app, svc, core)
    for caller in (CALLER, "+79160000001", WITHHELD, WITHHELD, "anonymous", "anonymous"):
        _, root = ask_for_a_person(carrier, caller)
        assert root.find("Enqueue") is not None, caller
    assert len(core.waiting()) == 6


def test_two_calls_from_one_number_at_the_same_moment_take_one_place(app, carrier, svc, core):
    on_duty(app, svc, core)
    sids = [new_call_sid() for _ in range(6)]  # (the rate limit admits 6)
    for sid in sids:
        carrier.twiml("/voice/incoming", call_params(sid, CALLER))
        carrier.twiml("/voice/ivr/language?attempt=1", call_params(sid, CALLER, Digits="1"))

    def press_zero(sid: str) -> ET.Element:
        params = call_params(sid, CALLER, Digits="0")
        return Carrier(app.test_client()).twiml("/voice/ivr/main?attempt=1", params)

    with ThreadPoolExecutor(max_workers=6) as pool:
        roots = list(pool.map(press_zero, sids))
    assert sum(root.find("Enqueue") is not None for root in roots) == 1
    assert len(core.waiting()) == 1


def test_a_count_waits_for_a_hand_over_of_the_same_caller_in_progress(app, carrier, svc):
    """The lock on the caller's row (PostgreSQL; SQLite's write lock does the same): a second
    hand-over of one caller counts only once the first one's place is committed."""
    first, second = new_call_sid(), new_call_sid()
    for sid in (first, second):
        carrier.twiml("/voice/incoming", call_params(sid, CALLER))
    holder = svc.session_factory()
    log = CallLog(holder, svc.protector)
    call = log.find(first)
    assert call is not None and places_held_by_caller(log, call) == 0
    values = {"interaction_id": call.interaction_id, "state": "waiting", "language": "ru",
              "kind": "other", "priority": 0, "enqueued_at": utcnow()}  # fmt: skip
    log.insert_ignoring_duplicates(QueueEntry.__table__, values, "interaction_id")
    counted: list[int] = []

    def count_second() -> None:
        with svc.session_factory() as session:
            other = CallLog(session, svc.protector)
            state = other.find(second)
            assert state is not None
            counted.append(places_held_by_caller(other, state))
            session.rollback()

    thread = threading.Thread(target=count_second)
    thread.start()
    thread.join(timeout=1.0)
    assert thread.is_alive() and counted == []  # waiting for the first hand-over
    holder.commit()
    holder.close()
    thread.join(timeout=30)
    assert counted == [1]


def test_the_places_per_number_are_a_setting(app, carrier, svc, core):
    on_duty(app, svc, core)
    svc.settings = svc.settings.replace(routing_max_waiting_per_number=2)
    roots = [ask_for_a_person(carrier, CALLER)[1] for _ in range(3)]
    assert [root.find("Enqueue") is not None for root in roots] == [True, True, False]
    svc.settings = svc.settings.replace(routing_max_waiting_per_number=0)  # no limit
    assert ask_for_a_person(carrier, CALLER)[1].find("Enqueue") is not None
