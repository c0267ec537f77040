"""Callers without a usable number (withheld, ``anonymous``, Twilio's placeholders, an empty or
odd From): each call is a caller and a case of its own, nobody promises them a call-back, and
the call log says "withheld". A caller with a number still finds their open case again."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from sqlalchemy import func, select

from dataprotection import caller_address
from db import db_session
from inquiries.calllog import CallLogFilter, inquiry_detail, list_interactions
from inquiries.models import Caller, CallEvent, Inquiry, Interaction
from ivr.flow import load_flow
from routing import callbacks
from routing.models import QueueEntry
from routing.service import create_handler, routing_core, set_presence
from tests.conftest import call_params, new_call_sid, path_of
from tests.support import handles

FLOW = load_flow()
#: What a carrier may put in From when there is no number to link calls by.
WITHHELD = ("", "anonymous", "Anonymous", "ANONYMOUS", "restricted", "unknown", "private",
            "Unavailable", "+266696687", "+7378742833", "+86282452253", "+2562533", "12345",
            "sip:someone@example.org", "+0123456789", "whatsapp:anonymous")  # fmt: skip


@pytest.mark.parametrize(
    ("raw", "address"),
    [("+79161234567", "+79161234567"), (" +380 (50) 111-22-33 ", "+380501112233"),
     ("client:anna", "client:anna"), ("whatsapp:+79161234567", "whatsapp:+79161234567"),
     *((raw, None) for raw in WITHHELD)],
)  # fmt: skip
def test_only_a_number_that_names_one_person_is_an_address(raw, address):
    assert caller_address(raw) == address


def _incoming(carrier, sid: str, from_: str) -> ET.Element:
    return carrier.twiml("/voice/incoming", call_params(sid, from_))


def _case_of(sid: str) -> tuple[int, int]:
    """(inquiry id, caller id) of a call."""
    row = (
        db_session()
        .execute(
            select(Interaction.inquiry_id, Inquiry.caller_id)
            .join(Inquiry, Inquiry.id == Interaction.inquiry_id)
            .where(Interaction.provider_sid == sid)
        )
        .one()
    )
    return row.inquiry_id, row.caller_id


def test_each_withheld_call_is_a_caller_and_a_case_of_its_own(app, carrier):
    sids = {raw: new_call_sid() for raw in WITHHELD}
    for raw, sid in sids.items():
        _incoming(carrier, sid, raw)
    first_anonymous = new_call_sid()
    _incoming(carrier, first_anonymous, "anonymous")
    _incoming(carrier, first_anonymous, "anonymous")  # the carrier retries: the same call
    number = [new_call_sid(), new_call_sid()]
    for sid in number:
        _incoming(carrier, sid, "+380501112233")
    with app.app_context():
        cases = [_case_of(sid) for sid in sids.values()]
        assert len({inquiry for inquiry, _ in cases}) == len(WITHHELD)
        assert len({caller for _, caller in cases}) == len(WITHHELD)
        callers = db_session().scalars(select(Caller).where(Caller.withheld.is_(True))).all()
        assert len(callers) == len(WITHHELD) + 1  # the retried call made no second one
        assert all(c.number_ciphertext is None and c.number_key_id is None for c in callers)
        assert db_session().scalar(
            select(func.count()).select_from(Interaction).where(
                Interaction.provider_sid == first_anonymous
            )
        ) == 1  # fmt: skip
        assert _case_of(number[0]) == _case_of(number[1])  # a number still joins its case
        (with_number,) = db_session().scalars(select(Caller).where(Caller.withheld.is_(False)))
        assert with_number.number_ciphertext is not None


def test_the_call_log_says_withheld_not_erased(app, carrier):
    sid = new_call_sid()
    _incoming(carrier, sid, "anonymous")
    with app.app_context():
        inquiry_id, _ = _case_of(sid)
        svc = handles(app)
        for full in (False, True):
            detail = inquiry_detail(db_session(), svc.protector, inquiry_id, full_number=full)
            assert detail is not None and detail.number == "withheld"
            page = list_interactions(db_session(), svc.protector, CallLogFilter(),
                                     full_numbers=full)  # fmt: skip
            assert [row.number for row in page.rows] == ["withheld"]


def _ask_for_a_person(carrier, sid: str, from_: str) -> ET.Element:
    _incoming(carrier, sid, from_)
    carrier.twiml("/voice/ivr/language?attempt=1", call_params(sid, from_, Digits="1"))
    return carrier.twiml("/voice/ivr/main?attempt=1", call_params(sid, from_, Digits="0"))


def _said(root: ET.Element) -> list[str]:
    return [el.text or "" for el in root.iter("Say")]


def _callback_events(app) -> int:
    with app.app_context():
        return db_session().scalar(
            select(func.count()).select_from(CallEvent).where(
                CallEvent.event == "CALLBACK_REQUESTED"
            )
        )  # fmt: skip


def test_nobody_on_duty_a_withheld_caller_is_not_promised_a_call_back(app, carrier):
    sid = new_call_sid()
    root = _ask_for_a_person(carrier, sid, "+266696687")
    assert _said(root)[0] == FLOW.text("ru", "operators_busy_no_callback")
    assert root.find("Record") is not None
    assert "callback=0" in (root.find("Redirect").text or "")
    with app.app_context():
        inquiry = db_session().get(Inquiry, _case_of(sid)[0])
        assert inquiry.callback_requested is False and inquiry.status == "open"
    assert _callback_events(app) == 0

    with_number = new_call_sid()  # the same path with a number: the promise and the request
    root = _ask_for_a_person(carrier, with_number, "+79161234567")
    assert _said(root)[0] == FLOW.text("ru", "operators_busy")
    with app.app_context():
        assert db_session().get(Inquiry, _case_of(with_number)[0]).callback_requested is True
    assert _callback_events(app) == 1


@pytest.fixture
def on_duty(app):
    svc = handles(app)
    core = routing_core(svc.settings, svc.redis)
    with app.app_context():
        session = db_session()
        hid = create_handler(session, svc.protector, display_name="A", languages=["ru"],
                             skills=["other"], phone="+380501112299")  # fmt: skip
        session.commit()
        set_presence(session, core, hid, "available")
    return hid


@pytest.mark.parametrize(("from_", "offered"), [("anonymous", False), ("+79161234567", True)])
def test_a_waiting_withheld_caller_is_offered_no_call_back(app, carrier, on_duty, from_, offered):
    sid = new_call_sid()
    assert _ask_for_a_person(carrier, sid, from_).find("Enqueue") is not None
    wait = carrier.twiml("/routing/wait", call_params(sid, from_, QueuePosition="1"))
    assert (FLOW.text("ru", "queue_callback_option") in _said(wait)) is offered
    key = carrier.twiml("/routing/wait-key", call_params(sid, from_, Digits="2"))
    assert (key.find("Leave") is not None) is offered
    with app.app_context():
        entry = db_session().scalars(select(QueueEntry)).one()
        assert (entry.callback_requested_at is not None) is offered
        assert (callbacks.callback_address(db_session(), entry.interaction_id) is None) is (
            not offered
        )


def test_a_withheld_caller_who_leaves_the_queue_hears_no_call_back_promise(app, carrier, on_duty):
    sid = new_call_sid()
    _ask_for_a_person(carrier, sid, "restricted")
    action = carrier.twiml("/routing/queue-action", call_params(sid, "restricted",
                                                                QueueResult="leave"))  # fmt: skip
    assert _said(action)[0] == FLOW.text("ru", "operators_busy_no_callback")
    assert "callback=0" in path_of(action.find("Redirect").text or "")
    with app.app_context():
        assert db_session().get(Inquiry, _case_of(sid)[0]).callback_requested is False
    assert _callback_events(app) == 0
