"""The carrier keeps no call record: every leg the hotline takes or makes — the caller's call in,
the offer to a handler, a call-back to the caller — is deleted at the carrier (the emulator's
``DELETE Calls/{Sid}.json``) once it has ended and the case's recordings are stored; a periodic
sweep deletes any ended call left there. And ``carrier configure-number`` leaves the number no
SMS URL that would answer 404."""

from __future__ import annotations

import datetime as dt

import requests
from sqlalchemy import select
from twilio.base.exceptions import TwilioRestException

from db import db_session
from inquiries.models import Interaction, utcnow
from recordings import carrier_calls
from recordings.models import CARRIER_DELETED, CarrierCall, Recording
from services import services
from tests.conftest import AUTH_TOKEN, call_params, sign
from tests.e2e.test_callbacks import ask_for_callback, callbacks_now
from tests.e2e.test_recordings import leave_message, recording_of, run_due_retries
from tests.e2e.test_routing_calls import HANDLER_A, add_handler, drain, queued_caller
from tests.support import handles

CALLER = "+79161234567"


def listed(hotline, **filters: str) -> list[str]:
    """The CallSids the carrier's REST API lists (as twilio-python reads them)."""
    return [call.sid for call in handles(hotline.app).twilio.calls.list(**filters)]


def at_carrier(hotline, sid: str) -> bool:
    try:
        handles(hotline.app).twilio.calls(sid).fetch()
    except TwilioRestException as exc:
        assert exc.status == 404
        return False
    return True


def rows(hotline) -> dict[str, CarrierCall]:
    with hotline.app.app_context():
        return {row.call_sid: row for row in db_session().scalars(select(CarrierCall))}


def recordings(hotline) -> list[Recording]:
    with hotline.app.app_context():
        return list(db_session().scalars(select(Recording)))


def interaction_id(hotline, sid: str) -> int:
    with hotline.app.app_context():
        found = db_session().scalar(select(Interaction.id).where(Interaction.provider_sid == sid))
        assert found is not None
        return found


def test_after_a_call_and_a_message_the_carrier_no_longer_lists_the_call(hotline):
    call = leave_message(hotline, CALLER)
    assert call.ended
    assert listed(hotline, from_=CALLER) == [call.sid]  # the carrier's record, the number in it
    row = rows(hotline)[call.sid]
    assert (row.leg, row.interaction_id) == ("inbound", interaction_id(hotline, call.sid))
    assert row.ended_at is not None and row.deleted_at is None
    with hotline.app.app_context():  # the message is not stored yet: the call waits for it
        assert carrier_calls.delete(db_session(), services(), row.id) == "waiting"
    assert at_carrier(hotline, call.sid)

    drain(hotline)
    message = recording_of(hotline, call.sid)
    assert message.state == CARRIER_DELETED
    assert listed(hotline, from_=CALLER) == [] and listed(hotline) == []
    assert not at_carrier(hotline, call.sid)
    row = rows(hotline)[call.sid]
    assert row.deleted_at is not None and row.deleted_at >= message.stored_at
    assert (row.attempts, row.last_error) == (0, None)
    with hotline.app.app_context():  # a second run finds it done, asks the carrier nothing
        assert carrier_calls.delete(db_session(), services(), row.id) == "deleted"


def test_a_conversation_leaves_neither_the_callers_nor_the_handlers_call(hotline):
    add_handler(hotline, HANDLER_A, "Anna")
    call = queued_caller(hotline)
    drain(hotline)
    phone = hotline.emulator.phone(HANDLER_A)
    leg = phone.answer(phone.wait_for_ring())
    leg.press("1")
    hotline.emulator.settle()
    leg.say("Здравствуйте, я вас слушаю", language="ru-RU")
    call.hang_up()
    hotline.emulator.settle()
    assert leg.ended
    assert listed(hotline, to=HANDLER_A) == [leg.sid]  # the handler's number, kept by the carrier
    assert listed(hotline, from_=CALLER) == [call.sid]

    drain(hotline)
    (conversation,) = recordings(hotline)
    assert (conversation.kind, conversation.state) == ("conversation", CARRIER_DELETED)
    assert listed(hotline) == []
    legs = rows(hotline)
    case = interaction_id(hotline, call.sid)
    assert {sid: (r.leg, r.interaction_id) for sid, r in legs.items()} == {
        call.sid: ("inbound", case), leg.sid: ("offer", case),
    }  # fmt: skip
    for row in legs.values():
        assert row.deleted_at is not None and row.deleted_at >= conversation.stored_at


def test_a_call_back_leg_goes_too(hotline):
    callbacks_now(hotline)
    add_handler(hotline, HANDLER_A, "Anna")
    first = ask_for_callback(hotline, CALLER)
    drain(hotline)
    handler = hotline.emulator.phone(HANDLER_A)
    leg = handler.answer(handler.wait_for_ring())
    leg.press("1")
    hotline.emulator.settle()
    caller_phone = hotline.emulator.phone(CALLER)
    back = caller_phone.answer(caller_phone.wait_for_ring())
    back.press("1")
    hotline.emulator.settle()
    back.hang_up()
    hotline.emulator.settle()
    assert listed(hotline, to=CALLER) == [back.sid]  # the caller's number, as the To of the leg

    drain(hotline)
    assert listed(hotline) == []
    case = interaction_id(hotline, first.sid)
    assert {sid: (r.leg, r.interaction_id, r.deleted_at is not None)
            for sid, r in rows(hotline).items()} == {
        first.sid: ("inbound", case, True), leg.sid: ("offer", case, True),
        back.sid: ("callback", case, True),
    }  # fmt: skip


def test_a_call_reported_ended_too_early_is_retried_until_the_carrier_deletes_it(hotline):
    """The carrier may send callbacks out of order: a "completed" for a call still in progress
    makes the job ask too early; the carrier refuses (20009) and the job is retried."""
    call = hotline.dial(CALLER)
    assert not call.ended and call.activity == "gather"
    url = hotline.settings.public_base_url + "/voice/status"
    params = call_params(call.sid, CALLER, CallStatus="completed", CallDuration="4")
    headers = {"X-Twilio-Signature": sign(url, params, AUTH_TOKEN)}
    assert requests.post(url, data=params, headers=headers, timeout=10).status_code == 200
    drain(hotline)
    row = rows(hotline)[call.sid]
    assert row.deleted_at is None and row.attempts == 1
    assert row.last_error == "carrier 400/20009"
    assert listed(hotline, from_=CALLER) == [call.sid]

    call.hang_up()
    hotline.emulator.settle()
    run_due_retries(hotline)
    assert rows(hotline)[call.sid].deleted_at is not None
    assert listed(hotline) == []


def stop_status_callbacks(hotline) -> None:
    """The number's status callback unset: the app never hears that its calls end."""
    client = handles(hotline.app).twilio
    (number,) = client.incoming_phone_numbers.list(phone_number=hotline.number)
    client.incoming_phone_numbers(number.sid).update(status_callback="")


def test_the_sweep_deletes_calls_whose_end_the_app_never_heard(hotline):
    stop_status_callbacks(hotline)
    call = hotline.dial(CALLER)
    call.press("1")
    call.hang_up()
    hotline.emulator.settle()
    drain(hotline)
    assert call.sid not in rows(hotline)
    assert listed(hotline, from_=CALLER) == [call.sid]

    with hotline.app.app_context():  # just ended: left to the webhooks' job for now
        assert carrier_calls.sweep(db_session(), services())["found"] == 0
        later = utcnow() + carrier_calls.SWEEP_SETTLE + dt.timedelta(minutes=5)
        assert carrier_calls.sweep(db_session(), services(), now=later) == {
            "found": 1, "enqueued": 1,
        }  # fmt: skip
    drain(hotline)
    assert listed(hotline) == []
    row = rows(hotline)[call.sid]
    assert (row.leg, row.interaction_id) == ("inbound", interaction_id(hotline, call.sid))
    assert row.deleted_at is not None
    with hotline.app.app_context():  # nothing left to find, nothing to enqueue
        assert carrier_calls.sweep(db_session(), services(), now=later) == {
            "found": 0, "enqueued": 0,
        }  # fmt: skip


def test_a_call_already_gone_at_the_carrier_counts_as_deleted(hotline):
    call = hotline.dial(CALLER)
    call.hang_up()
    hotline.emulator.settle()
    handles(hotline.app).twilio.calls(call.sid).delete()  # someone deleted it in the Console
    drain(hotline)
    row = rows(hotline)[call.sid]
    assert row.deleted_at is not None and (row.attempts, row.last_error) == (0, None)


def test_the_sweep_is_a_periodic_job(hotline):
    periodic = {p.name: p for p in hotline.app.extensions["jobs"].periodic}
    sweep = periodic["carrier-calls-sweep"]
    assert (sweep.func, sweep.interval_s) == ("recordings.jobs.sweep_carrier_calls", 600)
    stop_status_callbacks(hotline)
    call = hotline.dial(CALLER)
    call.hang_up()
    hotline.emulator.settle()
    with hotline.app.app_context():
        from recordings.jobs import sweep_carrier_calls

        assert sweep_carrier_calls() == {"found": 0, "enqueued": 0}  # ended just now
    assert listed(hotline, from_=CALLER) == [call.sid]


def test_configure_number_points_the_sms_url_at_the_messaging_webhook(hotline):
    """The number's SMS URL is the app's ``/messaging/incoming`` (issue 18; before, with no
    messaging, it was cleared rather than left at a path answering 404). Twilio's own demo
    fallback URL, which answers texts for new numbers, is cleared."""
    number = "+15005550078"
    owned = hotline.emulator.add_number(number, sms_url="https://demo.twilio.com/welcome/sms/reply")
    client = handles(hotline.app).twilio
    client.incoming_phone_numbers(owned.sid).update(
        sms_fallback_url="https://demo.twilio.com/welcome/sms/fallback"
    )
    result = hotline.app.test_cli_runner().invoke(
        args=["carrier", "configure-number", "--number", number]
    )
    assert result.exit_code == 0, result.output
    (configured,) = client.incoming_phone_numbers.list(phone_number=number)
    base = hotline.settings.public_base_url
    assert configured.voice_url == f"{base}/voice/incoming"
    assert configured.voice_fallback_url == f"{base}/voice/fallback"
    assert configured.status_callback == f"{base}/voice/status"
    assert (configured.sms_url, configured.sms_fallback_url) == (f"{base}/messaging/incoming", None)
    phone = hotline.emulator.phone(CALLER)
    phone.send_sms(number, "help")
    hotline.emulator.settle()
    assert hotline.emulator.debugger == []  # the app answered the text
    assert phone.messages == []  # no demo auto-reply (the app's reply is a job, not TwiML)
