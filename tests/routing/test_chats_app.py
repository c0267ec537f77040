"""Conversations in the app's routing: the settings, the dispatch job (no call placed for a
conversation offer), the tick (offers expire, a break reaches the handler's row) and the
reconciler rebuilding conversations after Redis lost them."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from sqlalchemy import func, select

from db import db_session
from routing import jobs
from routing.chats import OpenConversation, open_conversations
from routing.models import Handler, Offer
from routing.reconcile import rebuild_chats
from routing.service import create_handler, routing_core, set_presence
from settings import SettingsError, load_settings
from tests.routing import add_handler, check_invariants

ALL_KINDS = ["other", "family", "surrender", "pow_info"]


def test_chat_settings(tmp_path):
    base = {"HOTLINE_ENV": "test", "HOTLINE_INSTANCE_PATH": str(tmp_path / "instance")}
    settings = load_settings(base)
    assert settings.routing_chat_capacity == 3
    assert settings.routing_call_max_chats is None
    assert settings.routing_chat_offer_timeout_s == 60
    custom = load_settings(
        {**base, "ROUTING_CHAT_CAPACITY": "0", "ROUTING_CALL_MAX_CHATS": "0",
         "ROUTING_CHAT_OFFER_TIMEOUT_S": "30"}
    )  # fmt: skip
    assert custom.routing_chat_capacity == 0 and custom.routing_call_max_chats == 0
    assert custom.routing_chat_offer_timeout_s == 30
    for name, value, message in (
        ("ROUTING_CHAT_CAPACITY", "10", "ROUTING_CHAT_CAPACITY must be from 0 to 9"),
        ("ROUTING_CHAT_CAPACITY", "three", "ROUTING_CHAT_CAPACITY must be a whole number"),
        ("ROUTING_CALL_MAX_CHATS", "-1", "ROUTING_CALL_MAX_CHATS must not be negative"),
        ("ROUTING_CHAT_OFFER_TIMEOUT_S", "soon", "ROUTING_CHAT_OFFER_TIMEOUT_S must be a whole"),
    ):
        with pytest.raises(SettingsError, match=message):
            load_settings({**base, name: value})


def test_routing_core_follows_the_chat_settings(svc):
    core = routing_core(svc.settings, svc.redis)
    assert (core.chat_capacity, core.call_max_chats) == (3, 3)  # calls never kept away
    core = routing_core(
        svc.settings.replace(routing_chat_capacity=5, routing_call_max_chats=1), svc.redis
    )
    assert (core.chat_capacity, core.call_max_chats) == (5, 1)


def on_duty(app, svc) -> int:
    with app.app_context():
        session = db_session()
        hid = create_handler(
            session, svc.protector, display_name="A", languages=["ru"], skills=ALL_KINDS,
            client="handler-a",
        )  # fmt: skip
        session.commit()
        set_presence(session, routing_core(svc.settings, svc.redis), hid, "available")
    return hid


def offer_rows(svc) -> int:
    with svc.session_factory() as session:
        return session.scalar(select(func.count()).select_from(Offer))


def test_the_dispatch_job_offers_a_conversation_without_a_call(app, svc):
    hid = on_duty(app, svc)
    core = routing_core(svc.settings, svc.redis)
    core.enqueue_chat("41", language="ru", kind="other", priority=0, enqueued_at=time.time())
    with app.app_context():
        assert jobs.dispatch() == 1
    assert core.chat_load(str(hid)).offered == ("41",)
    assert offer_rows(svc) == 0  # no offer call placed, no call offer row
    assert core.accept_chat("41", str(hid), time.time()).won
    check_invariants(core)


def test_the_tick_expires_unaccepted_offers_and_a_break_reaches_the_row(app, svc):
    svc.settings = svc.settings.replace(routing_chat_offer_timeout_s=0, routing_max_misses=1)
    hid = on_duty(app, svc)
    core = routing_core(svc.settings, svc.redis)
    core.enqueue_chat("41", language="ru", kind="other", priority=0, enqueued_at=time.time())
    with app.app_context():
        jobs.dispatch()
        assert core.chat_state("41") == "offered"
        time.sleep(0.01)
        counts = jobs.tick()
    assert counts["chats_expired"] == 1
    assert core.presence(str(hid)) == ("break", "missed 1 offers in a row")
    assert core.chat_state("41") == "waiting"  # nobody else: it keeps its place
    with svc.session_factory() as session:
        assert session.get(Handler, hid).presence == "break"
    check_invariants(core)


def test_today_the_database_has_no_conversations(app):
    with app.app_context():
        assert list(open_conversations(db_session())) == []


def at(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


def test_the_reconciler_rebuilds_conversations_after_a_flush(make_core, rds):
    core = make_core(chat_capacity=2)
    add_handler(core, "7", now=0)
    conversations = [
        OpenConversation(1, "ru", "other", 0, at(10), handler_id=7),
        OpenConversation(2, "ru", "family", 0, at(20), handler_id=7),
        OpenConversation(3, "ru", "other", 0, at(30)),  # waiting
        OpenConversation(4, "ru", "other", 60, at(40)),  # waiting, ahead by priority
        OpenConversation(5, "ru", "other", 0, at(50), handler_id=99),  # handler unknown
    ]
    assert rebuild_chats(core, conversations, held=True, now=60) == {
        "chats_restored": 2,
        "chats_requeued": 3,
    }
    assert core.chat_load("7").open == ("1", "2")
    assert core.waiting("chat") == ["4", "3", "5"]
    assert core.dispatch(61) == []  # at capacity again
    # the tick's regular pass (Redis kept its state): nothing held is touched, nothing doubled
    assert rebuild_chats(core, conversations, held=False, now=62) == {
        "chats_restored": 0,
        "chats_requeued": 0,
    }
    assert rebuild_chats(core, conversations, held=True, now=62)["chats_restored"] == 0
    snap = check_invariants(core)
    assert snap["chats"]["4"]["enq"] == "40.0"  # the original place
    assert core.end_chat("1", "7", now=63, dispatch=True).offers[0].caller_id == "4"
