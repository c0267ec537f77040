"""The case's conference starts when the caller is in, not when the handler is: a handler who
joins first (a call-back: the handler waits while the caller's phone rings) hears the wait
music, is neither heard nor recorded, and the recording covers the conversation only.

Twilio's <Conference>: "Conferences will not start until at least two participants join";
record-from-start: "the recording begins when the first two participants are bridged. The hold
music is never recorded.\""""

from __future__ import annotations

from sqlalchemy import select

from db import db_session
from inquiries.models import Interaction
from routing.voice import conference_name
from tests.e2e.test_callbacks import CALLER, ask_for_callback, callbacks_now
from tests.e2e.test_recordings import recording_of
from tests.e2e.test_routing_calls import FLOW, HANDLER_A, add_handler, drain, entry, names
from tests.support import handles

WAIT_S = 25


def conference_status(hotline, call_sid: str) -> list[str]:
    with hotline.app.app_context():
        session = db_session()
        iid = session.scalar(select(Interaction.id).where(Interaction.provider_sid == call_sid))
        session.commit()  # no transaction open while the carrier answers
        twilio = handles(hotline.app).twilio
        return [c.status for c in twilio.conferences.list(friendly_name=conference_name(iid))]


def test_a_handler_waiting_for_the_called_back_caller_hears_music_and_is_not_recorded(hotline):
    callbacks_now(hotline)
    add_handler(hotline, HANDLER_A, "Anna")
    first = ask_for_callback(hotline)
    drain(hotline)
    handler = hotline.emulator.phone(HANDLER_A)
    leg = handler.answer(handler.wait_for_ring())
    leg.press("1")
    hotline.emulator.settle()
    assert leg.activity == "conference"
    assert conference_status(hotline, first.sid) == ["init"]  # the handler alone: not started

    caller_phone = hotline.emulator.phone(CALLER)
    ring = caller_phone.wait_for_ring(max_seconds=5)
    leg.say("Алло, вы меня слышите?", language="ru-RU")  # to nobody: not recorded
    music_before = len(leg.played_urls())
    hotline.emulator.wait(WAIT_S)  # the caller's phone rings on; the handler hears the music
    assert len(leg.played_urls()) > music_before
    assert conference_status(hotline, first.sid) == ["init"]

    back = caller_phone.answer(ring)
    assert back.said_texts()[0] == FLOW.text("ru", "callback_greeting")
    back.press("1")
    hotline.emulator.settle()
    assert back.activity == "conference" and leg.activity == "conference"
    assert conference_status(hotline, first.sid) == ["in-progress"]  # both in: started
    assert back.voices_heard() == []  # what the handler said while alone was heard by nobody
    leg.say("Здравствуйте, вы просили перезвонить", language="ru-RU")
    assert back.voices_heard() == ["Здравствуйте, вы просили перезвонить"]
    back.say("Да, спасибо", language="ru-RU")
    assert "Да, спасибо" in leg.voices_heard()

    back.hang_up()
    hotline.emulator.settle()
    assert leg.ended
    assert entry(hotline, first.sid).state == "done"
    assert "COMPLETECALLER" in names(hotline, first.sid)
    (carrier_recording,) = hotline.emulator.recordings()
    assert carrier_recording.source == "Conference"
    row = recording_of(hotline, first.sid, kind="conversation")
    assert row.recording_sid == carrier_recording.sid
    assert 0 < row.carrier_duration_s < WAIT_S  # the conversation, not the wait before it
