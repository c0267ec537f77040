"""The hand-over with routing: queue entries committed before Redis and the job hear of them,
signed routing webhooks, no phone number in Redis or a job, the reconciler re-queues callers."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

import jobs
from db import db_session
from inquiries.models import CallEvent, Inquiry, utcnow
from routing.models import QueueEntry
from routing.reconcile import rebuild_callers
from routing.service import create_handler, routing_core, set_presence
from tests.conftest import call_params, new_call_sid, path_of

CALLER = "+79161234567"
HANDLER = "+380501112233"
NS = "{*}"


@pytest.fixture
def core(svc):
    return routing_core(svc.settings, svc.redis)


def on_duty(app, svc, core, *, languages=("ru",)) -> int:
    with app.app_context():
        session = db_session()
        hid = create_handler(
            session, svc.protector, display_name="A", languages=list(languages),
            skills=["other", "family", "surrender", "pow_info"], phone=HANDLER,
        )  # fmt: skip
        session.commit()
        set_presence(session, core, hid, "available")
    return hid


def ask_for_a_person(carrier, sid: str, caller: str = CALLER):
    carrier.twiml("/voice/incoming", call_params(sid, caller))
    carrier.twiml("/voice/ivr/language?attempt=1", call_params(sid, caller, Digits="1"))
    return carrier.twiml("/voice/ivr/main?attempt=1", call_params(sid, caller, Digits="0"))


def entries(svc) -> list[QueueEntry]:
    with svc.session_factory() as session:
        return list(session.scalars(select(QueueEntry)))


def test_nobody_on_duty_means_the_message_box(carrier, svc):
    root = ask_for_a_person(carrier, new_call_sid())
    assert root.find("Record") is not None and root.find("Enqueue") is None
    assert entries(svc) == []


def test_a_handler_of_another_language_is_not_enough(app, carrier, svc, core):
    on_duty(app, svc, core, languages=("en",))
    root = ask_for_a_person(carrier, new_call_sid())
    assert root.find("Record") is not None


def test_on_duty_the_caller_is_queued_after_the_commit(app, carrier, svc, core):
    on_duty(app, svc, core)
    sid = new_call_sid()
    root = ask_for_a_person(carrier, sid)
    enq = root.find("Enqueue")
    assert enq is not None and root.find("Record") is None
    assert path_of(enq.get("waitUrl")) == "/routing/wait"
    assert path_of(enq.get("action")) == "/routing/queue-action"
    (entry,) = entries(svc)
    assert (entry.state, entry.language, entry.kind) == ("waiting", "ru", "other")
    assert core.caller_state(str(entry.interaction_id)) == "waiting"
    with app.app_context():
        job = jobs.fetch_job(f"routing-dispatch-enter-{entry.interaction_id}")
    assert job is not None and job.func_name == "routing.jobs.dispatch"
    # a retried webhook changes nothing
    again = carrier.twiml("/voice/ivr/main?attempt=1", call_params(sid, CALLER, Digits="0"))
    assert again.find("Enqueue") is not None and len(entries(svc)) == 1

    wait = carrier.twiml("/routing/wait", call_params(sid, CALLER, QueuePosition="1"))
    said = [el.text for el in wait.iter() if el.tag.endswith("Say")]
    assert any("1" in (text or "") for text in said)
    assert wait.find("Gather").get("numDigits") == "1"


def test_no_phone_number_in_redis_or_a_job(app, carrier, svc, core):
    on_duty(app, svc, core)
    ask_for_a_person(carrier, new_call_sid())
    dump = []
    for key in svc.redis.scan_iter():
        dump.append(key)
        kind = svc.redis.type(key)
        if kind == b"hash":
            dump.append(svc.redis.hgetall(key))
        elif kind == b"string":
            dump.append(svc.redis.get(key))
        elif kind == b"zset":
            dump.append(svc.redis.zrange(key, 0, -1))
        elif kind in (b"set",):
            dump.append(svc.redis.smembers(key))
        elif kind == b"list":
            dump.append(svc.redis.lrange(key, 0, -1))
    text = repr(dump)
    for number in (CALLER, HANDLER, CALLER[1:], HANDLER[1:]):
        assert number not in text


def test_routing_webhooks_are_signed(client):
    for path in ("/routing/wait", "/routing/offer?offer=1", "/routing/offer-status?offer=1",
                 "/routing/queue-action", "/routing/offer-key?offer=1"):  # fmt: skip
        response = client.post(path, data={"CallSid": new_call_sid()})
        assert response.status_code == 403


def test_the_reconciler_queues_waiting_callers_again(app, carrier, svc, core):
    on_duty(app, svc, core)
    ask_for_a_person(carrier, new_call_sid())
    (entry,) = entries(svc)
    svc.redis.flushdb()
    assert core.caller_state(str(entry.interaction_id)) is None
    with svc.session_factory() as session:
        assert rebuild_callers(session, core) == {"requeued": 1, "closed": 0, "callbacks_later": 0}
    assert core.caller_state(str(entry.interaction_id)) == "waiting"


def test_the_wait_announces_the_estimate_once_a_call_was_handled(app, carrier, svc, core):
    hid = on_duty(app, svc, core)  # one handler for Russian callers (wrap-up: 30 s)
    sid = new_call_sid()
    ask_for_a_person(carrier, sid)
    flow = app.extensions["ivr_flow"]

    def said() -> list[str]:
        wait = carrier.twiml("/routing/wait", call_params(sid, CALLER))
        return [el.text or "" for el in wait.iter() if el.tag.endswith("Say")]

    assert flow.text("ru", "queue_position").format(position=1) in said()
    prefixes = [
        flow.text("ru", key).split("{")[0] for key in ("queue_estimate", "queue_estimate_seconds")
    ]
    assert not any(t.startswith(tuple(prefixes)) for t in said())  # no call handled yet
    with svc.session_factory() as session:
        # the last calls: 6 s ringing, 200 s talking, 34 s wrap-up
        session.add(CallEvent(event="CONNECT", data={"ringtime_s": 6, "holdtime_s": 999}))
        session.add(CallEvent(event="COMPLETECALLER", data={"calltime_s": 200, "wrapup_s": 34}))
        session.commit()
    # the handler is free (no dispatch ran here): the ring only
    assert flow.text("ru", "queue_estimate_seconds").format(seconds=5) in said()

    other = new_call_sid()
    ask_for_a_person(carrier, other, "+79161234568")  # another caller (one place per number)
    with svc.session_factory() as session:  # the handler has talked to the other caller 60 s
        row = session.scalars(select(QueueEntry).order_by(QueueEntry.id.desc())).first()
        row.state, row.handler_id = "connected", hid
        row.connected_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=60)
        session.commit()
    # 200 - 60 s more talk, 30 s of their wrap-up, 6 s ringing: 176 s, about 3 minutes
    assert flow.text("ru", "queue_estimate").format(minutes=3) in said()
    svc.redis.flushdb()  # the estimate's inputs live in the database
    with svc.session_factory() as session:
        assert rebuild_callers(session, core)["requeued"] == 1  # the connected one is not
    assert flow.text("ru", "queue_estimate").format(minutes=3) in said()


def test_past_the_maximum_wait_the_caller_leaves_for_the_message_box(app, carrier, svc, core):
    on_duty(app, svc, core)
    sid = new_call_sid()
    ask_for_a_person(carrier, sid)
    (entry,) = entries(svc)
    wait = carrier.twiml("/routing/wait", call_params(sid, CALLER))
    assert wait.find("Leave") is None  # not yet
    with svc.session_factory() as session:
        row = session.get(QueueEntry, entry.id)
        row.enqueued_at = utcnow() - dt.timedelta(seconds=601)
        session.commit()
    wait = carrier.twiml("/routing/wait", call_params(sid, CALLER, QueueTime="601"))
    assert wait.find("Leave") is not None and wait.find("Gather") is None
    (entry,) = entries(svc)
    assert entry.state == "left"
    assert core.caller_state(str(entry.interaction_id)) is None
    again = carrier.twiml("/routing/wait", call_params(sid, CALLER, QueueTime="602"))
    assert again.find("Leave") is not None  # a retry: still out, no second event
    with svc.session_factory() as session:
        events = session.scalars(
            select(CallEvent).where(CallEvent.event == "EXITWITHTIMEOUT")
        ).all()
        assert len(events) == 1
        assert events[0].data["position"] == 1 and events[0].data["waittime_s"] >= 601
    action = carrier.twiml("/routing/queue-action", call_params(sid, CALLER, QueueResult="leave"))
    assert action.find("Record") is not None
    with svc.session_factory() as session:
        inquiry = session.scalars(select(Inquiry)).one()
        assert inquiry.callback_requested
        names = session.scalars(
            select(CallEvent.event).where(CallEvent.interaction_id == entry.interaction_id)
        ).all()
    assert "EXITWITHKEY" not in names


def test_no_maximum_wait_when_it_is_zero(app, carrier, svc, core):
    on_duty(app, svc, core)
    sid = new_call_sid()
    ask_for_a_person(carrier, sid)
    (entry,) = entries(svc)
    with svc.session_factory() as session:
        session.get(QueueEntry, entry.id).enqueued_at = utcnow() - dt.timedelta(hours=2)
        session.commit()
    svc.settings = svc.settings.replace(routing_max_wait_s=0)
    wait = carrier.twiml("/routing/wait", call_params(sid, CALLER))
    assert wait.find("Leave") is None and entries(svc)[0].state == "waiting"
