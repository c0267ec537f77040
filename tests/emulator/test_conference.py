"""<Dial><Conference> and the Conferences/Participants REST resources."""

from __future__ import annotations

import pytest
from twilio.base.exceptions import TwilioRestException

from .conftest import CALLER, HOTLINE
from .scripted_app import twiml

HANDLER = "+15557770001"
SUPERVISOR = "+15557770009"


def conference_twiml(**attrs: str) -> str:
    extra = "".join(f' {k}="{v}"' for k, v in attrs.items())
    return twiml(
        '<Dial action="/conf-done">'
        f'<Conference statusCallback="/conf-events" statusCallbackEvent="start end join leave mute hold"{extra}>'
        "room-1</Conference></Dial>",
        "<Say>after conference</Say>",
    )


def test_two_legs_join_talk_and_end_on_exit(emu, twiml_app, hotline, twilio_client):
    twiml_app.route("/voice", conference_twiml(startConferenceOnEnter="false"))
    twiml_app.route("/conf-events", "")
    twiml_app.route("/conf-done", lambda f: twiml(f"<Say>done {f['DialCallStatus']}</Say>"))
    twiml_app.route(
        "/handler", conference_twiml(endConferenceOnExit="true", participantLabel="handler")
    )
    caller = emu.dial(CALLER, HOTLINE)
    assert caller.activity == "conference"
    (conf,) = twilio_client.conferences.list(friendly_name="room-1")
    assert conf.status == "init"  # waiting: the caller does not start it
    caller.wait(5)
    assert caller.played_urls()  # wait music while the conference has not started

    twilio_client.calls.create(to=HANDLER, from_=HOTLINE, url=twiml_app.url("/handler"))
    handler = emu.phone(HANDLER).wait_for_ring().answer()
    assert twilio_client.conferences(conf.sid).fetch().status == "in-progress"
    parts = twilio_client.conferences(conf.sid).participants.list()
    assert {p.call_sid for p in parts} == {caller.sid, handler.sid}
    labelled = twilio_client.conferences(conf.sid).participants("handler").fetch()
    assert labelled.call_sid == handler.sid and labelled.end_conference_on_exit is True

    caller.say("Are you there?")
    assert handler.voices_heard() == ["Are you there?"]
    handler.say("Yes")
    assert caller.voices_heard() == ["Yes"]

    handler.hang_up()  # endConferenceOnExit: everyone leaves
    caller.listen()
    assert twilio_client.conferences(conf.sid).fetch().status == "completed"
    assert (
        caller.said_texts()[-2:] == ["done answered", "after conference"]
        or caller.said_texts()[-1] == "done answered"
    )
    emu.settle()
    events = [f["StatusCallbackEvent"] for f in twiml_app.forms("/conf-events")]
    assert events[0] == "participant-join"
    assert "conference-start" in events and events[-1] == "conference-end"
    assert events.count("participant-join") == 2
    assert "participant-leave" in events


def test_participants_add_hold_mute_remove(emu, twiml_app, hotline, twilio_client):
    twiml_app.route("/voice", conference_twiml())
    twiml_app.route("/conf-events", "")
    twiml_app.route("/conf-done", twiml("<Say>left the conference</Say>"))
    caller = emu.dial(CALLER, HOTLINE)
    (conf,) = twilio_client.conferences.list(status="init")  # alone: not started
    added = twilio_client.conferences(conf.sid).participants.create(
        from_=HOTLINE, to=HANDLER, label="handler", early_media=True, beep="true"
    )
    assert added.call_sid.startswith("CA") and added.status == "queued"
    handler = emu.phone(HANDLER).wait_for_ring().answer()
    assert handler.sid == added.call_sid
    assert twilio_client.conferences(conf.sid).fetch().status == "in-progress"
    assert len(twilio_client.conferences(conf.sid).participants.list()) == 2
    assert [h.kind for h in caller.heard].count("beep") == 1  # the handler's entry beep

    held = twilio_client.conferences(conf.sid).participants(caller.sid).update(hold=True)
    assert held.hold is True
    assert caller.heard[-1].kind == "hold"
    handler.say("can you hear me")
    assert caller.voices_heard() == []  # on hold: hears music, not the conference
    twilio_client.conferences(conf.sid).participants(caller.sid).update(hold=False)
    assert [p.hold for p in twilio_client.conferences(conf.sid).participants.list(hold=True)] == []

    twilio_client.conferences(conf.sid).participants(handler.sid).update(muted=True)
    handler.say("muted words")
    assert caller.voices_heard() == []
    twilio_client.conferences(conf.sid).participants(handler.sid).update(muted=False)
    handler.say("unmuted words")
    assert caller.voices_heard() == ["unmuted words"]

    assert twilio_client.conferences(conf.sid).participants(caller.sid).delete() is True
    caller.listen()
    assert caller.said_texts()[-1] == "left the conference"  # the call continues after <Dial>
    assert [p.call_sid for p in twilio_client.conferences(conf.sid).participants.list()] == [
        handler.sid
    ]
    emu.settle()
    events = [f["StatusCallbackEvent"] for f in twiml_app.forms("/conf-events")]
    for name in (
        "participant-hold",
        "participant-unhold",
        "participant-mute",
        "participant-unmute",
    ):
        assert name in events
    with pytest.raises(TwilioRestException) as caught:
        twilio_client.conferences(conf.sid).participants("CA" + "f" * 32).fetch()
    assert caught.value.status == 404


def test_coaching_is_heard_only_by_the_coached_participant(emu, twiml_app, hotline, twilio_client):
    twiml_app.route("/voice", conference_twiml())
    twiml_app.route("/conf-events", "")
    twiml_app.route("/handler", conference_twiml())
    caller = emu.dial(CALLER, HOTLINE)
    twilio_client.calls.create(to=HANDLER, from_=HOTLINE, url=twiml_app.url("/handler"))
    handler = emu.phone(HANDLER).wait_for_ring().answer()
    (conf,) = twilio_client.conferences.list(status="in-progress")
    twilio_client.conferences(conf.sid).participants.create(
        from_=HOTLINE, to=SUPERVISOR, coaching=True, call_sid_to_coach=handler.sid
    )
    supervisor = emu.phone(SUPERVISOR).wait_for_ring().answer()
    part = twilio_client.conferences(conf.sid).participants(supervisor.sid).fetch()
    assert part.coaching is True and part.call_sid_to_coach == handler.sid
    supervisor.say("ask about safety")
    assert handler.voices_heard() == ["ask about safety"]
    assert caller.voices_heard() == []


def test_conference_ends_over_rest(emu, twiml_app, hotline, twilio_client):
    twiml_app.route("/voice", conference_twiml())
    twiml_app.route("/conf-events", "")
    twiml_app.route("/conf-done", twiml("<Hangup/>"))
    caller = emu.dial(CALLER, HOTLINE)
    (conf,) = twilio_client.conferences.list()
    twilio_client.conferences(conf.sid).update(status="completed")
    emu.settle()
    assert caller.status == "completed"
    assert twilio_client.conferences(conf.sid).fetch().status == "completed"
