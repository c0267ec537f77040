"""<Conference> as Twilio documents it: when a conference starts, what waiting participants
hear, who sets the status callback, what the <Dial> action says afterwards, and the events a
participant added over REST subscribes to. Each test quotes the sentence it checks."""

from __future__ import annotations

from .conftest import CALLER, HOTLINE
from .scripted_app import twiml

HANDLER = "+15557770001"
SECOND = "+15557770002"


def room(*, action: str | None = None, **attrs: str) -> str:
    extra = "".join(f' {k}="{v}"' for k, v in attrs.items())
    dial = f'<Dial action="{action}">' if action else "<Dial>"
    return twiml(f"{dial}<Conference{extra}>room-7</Conference></Dial>", "<Say>after</Say>")


def call_in(emu, twilio_client, twiml_app, phone: str, path: str):
    """A second leg, placed over REST to ``phone``, that runs ``path`` once answered."""
    twilio_client.calls.create(to=phone, from_=HOTLINE, url=twiml_app.url(path))
    return emu.phone(phone).wait_for_ring().answer()


def events_at(twiml_app, path: str) -> list[str]:
    return [f["StatusCallbackEvent"] for f in twiml_app.forms(path)]


def test_the_dial_action_after_a_conference_says_answered(emu, twiml_app, hotline, twilio_client):
    """Twilio's <Dial> page, DialCallStatus: "answered — When calling a conference, the called
    party answered the call and was connected to the caller"; DialCallSid and DialCallDuration:
    "This parameter is not sent after dialing a conference"."""
    twiml_app.route("/voice", room(action="/done"))
    twiml_app.route("/done", twiml("<Hangup/>"))
    twiml_app.route("/handler", room(endConferenceOnExit="true"))
    caller = emu.dial(CALLER, HOTLINE)
    handler = call_in(emu, twilio_client, twiml_app, HANDLER, "/handler")
    handler.hang_up()  # endConferenceOnExit: the caller's <Dial> ends
    emu.settle()
    (form,) = twiml_app.forms("/done")
    assert form["DialCallStatus"] == "answered"
    assert "DialCallSid" not in form and "DialCallDuration" not in form
    assert form["CallSid"] == caller.sid
    assert caller.status == "completed"


def test_one_participant_alone_waits_with_music_and_is_not_recorded(
    emu, twiml_app, hotline, twilio_client
):
    """<Conference>: "Conferences will not start until at least two participants join. While
    waiting, customizable background music is played." record: "When set to
    record-from-start, the recording begins when the first two participants are bridged. The
    hold music is never recorded." """
    twiml_app.route("/recording", "")
    twiml_app.route("/events", "")
    twiml_app.route(
        "/handler",
        room(
            record="record-from-start", recordingStatusCallback="/recording",
            statusCallback="/events", statusCallbackEvent="start end join leave",
        ),
    )  # fmt: skip
    twiml_app.route("/voice", room())
    handler = call_in(emu, twilio_client, twiml_app, HANDLER, "/handler")
    assert handler.activity == "conference"
    (conf,) = twilio_client.conferences.list(friendly_name="room-7")
    assert conf.status == "init"  # startConferenceOnEnter is true, but it is alone
    handler.say("is anybody there")  # nobody hears it, nothing records it
    handler.wait(30)
    assert len(handler.played_urls()) >= 6  # the default hold music, 5 s a play, looping
    assert twilio_client.conferences(conf.sid).fetch().status == "init"

    caller = emu.dial(CALLER, HOTLINE)
    assert twilio_client.conferences(conf.sid).fetch().status == "in-progress"
    caller.say("hello")
    handler.say("I hear you")
    assert caller.voices_heard() == ["I hear you"]
    assert handler.voices_heard() == ["hello"]
    caller.wait(4)
    caller.hang_up()
    handler.hang_up()
    emu.settle()
    assert events_at(twiml_app, "/events") == [
        "participant-join", "participant-join", "conference-start",
        "participant-leave", "participant-leave", "conference-end",
    ]  # fmt: skip
    (rec,) = emu.recordings()
    assert rec.source == "Conference"
    assert rec.duration < 20  # from the start, not the 30 s of music before it
    (done,) = twiml_app.forms("/recording")
    assert done["RecordingStatus"] == "completed"


def test_a_conference_that_never_starts_has_no_recording(emu, twiml_app, hotline, twilio_client):
    """record: "the recording begins when the first two participants are bridged": a participant
    who waited alone and left was never recorded."""
    twiml_app.route("/recording", "")
    twiml_app.route(
        "/handler", room(record="record-from-start", recordingStatusCallback="/recording")
    )
    handler = call_in(emu, twilio_client, twiml_app, HANDLER, "/handler")
    handler.say("hello?")
    handler.wait(20)
    handler.hang_up()
    emu.settle()
    assert emu.recordings() == []
    assert twiml_app.forms("/recording") == []


def test_start_needs_a_participant_with_start_conference_on_enter(
    emu, twiml_app, hotline, twilio_client
):
    """statusCallbackEvent start: "This occurs when there are at least two participants in the
    conference, and at least one of the participants has startConferenceOnEnter="true"."
    startConferenceOnEnter: "If this is false and the participant joins a conference that has
    not started, they are muted and hear background music until a participant joins where
    startConferenceOnEnter is true." """
    twiml_app.route("/voice", room(startConferenceOnEnter="false"))
    twiml_app.route("/second", room(startConferenceOnEnter="false"))
    twiml_app.route("/moderator", room())
    caller = emu.dial(CALLER, HOTLINE)
    second = call_in(emu, twilio_client, twiml_app, SECOND, "/second")
    (conf,) = twilio_client.conferences.list(friendly_name="room-7")
    assert twilio_client.conferences(conf.sid).fetch().status == "init"  # two, no starter
    second.say("can you hear me")
    assert caller.voices_heard() == []  # muted while waiting
    moderator = call_in(emu, twilio_client, twiml_app, HANDLER, "/moderator")
    assert twilio_client.conferences(conf.sid).fetch().status == "in-progress"
    moderator.say("welcome")
    assert caller.voices_heard() == ["welcome"] and second.voices_heard() == ["welcome"]


def test_the_wait_url_document_plays_once_then_silence(emu, twiml_app, hotline, twilio_client):
    """waitUrl: "Once the TwiML document located at the waitUrl runs out of verbs to execute,
    silence will be played." """
    twiml_app.route("/wait", twiml("<Say>Please wait for the other party.</Say>"))
    twiml_app.route("/voice", room(waitUrl="/wait"))
    caller = emu.dial(CALLER, HOTLINE)
    caller.wait(120)
    assert len(twiml_app.hits_to("/wait")) == 1
    assert caller.said_texts().count("Please wait for the other party.") == 1
    assert caller.played_urls() == []  # no music either: silence
    assert caller.activity == "conference"


def test_a_redirect_at_the_end_of_the_wait_url_loops_it(emu, twiml_app, hotline, twilio_client):
    """waitUrl: "If you want to loop the hold music or TwiML document, you can add a <Redirect>
    verb at the end of the document. The url in the <Redirect> verb is relative to the current
    URL, so if you leave the URL blank within the <Redirect> verb, the document will be looped
    indefinitely." """
    twiml_app.route("/hold/wait", twiml("<Say>Still waiting.</Say>", "<Redirect/>"))
    twiml_app.route("/hold/first", twiml("<Say>Please hold.</Say>", "<Redirect>wait</Redirect>"))
    twiml_app.route("/voice", room(waitUrl="/hold/first"))
    twiml_app.route("/handler", room())
    caller = emu.dial(CALLER, HOTLINE)
    caller.wait(30)
    assert len(twiml_app.hits_to("/hold/first")) == 1
    assert len(twiml_app.hits_to("/hold/wait")) >= 3  # looped, relative to the wait document
    assert twiml_app.hits_to("/voice")[1:] == []  # never the conference's own document
    call_in(emu, twilio_client, twiml_app, HANDLER, "/handler")
    hits = len(twiml_app.hits_to("/hold/wait"))
    caller.wait(30)
    assert len(twiml_app.hits_to("/hold/wait")) == hits  # started: the wait document stops


def test_the_first_participant_sets_the_status_callback(emu, twiml_app, hotline, twilio_client):
    """statusCallback: "The statusCallback URL is set by the first Participant to join the
    conference, subsequent setting of the statusCallback will be ignored." statusCallbackEvent:
    "The first Participant to join the conference sets the events. Subsequent
    statusCallbackEvents will be ignored." """
    twiml_app.route("/first", "")
    twiml_app.route("/later", "")
    twiml_app.route("/voice", room(statusCallback="/first", statusCallbackEvent="join leave"))
    twiml_app.route(
        "/handler", room(statusCallback="/later", statusCallbackEvent="start end join leave")
    )
    caller = emu.dial(CALLER, HOTLINE)
    handler = call_in(emu, twilio_client, twiml_app, HANDLER, "/handler")
    handler.hang_up()
    caller.hang_up()
    emu.settle()
    assert twiml_app.forms("/later") == []
    assert events_at(twiml_app, "/first") == [
        "participant-join",
        "participant-join",
        "participant-leave",
        "participant-leave",
    ]  # the first participant's events only: no start or end


def test_a_participant_added_over_rest_subscribes_to_start_and_end(
    emu, twiml_app, hotline, twilio_client
):
    """Participants resource, ConferenceStatusCallbackEvent: "The conference state changes that
    should generate a call to conference_status_callback. [...] Defaults to `start end`." """
    twiml_app.route("/conference-events", "")
    twiml_app.route("/voice", room())
    added = twilio_client.conferences("room-7").participants.create(
        from_=HOTLINE, to=HANDLER, conference_status_callback=twiml_app.url("/conference-events")
    )  # no ConferenceStatusCallbackEvent
    handler = emu.phone(HANDLER).wait_for_ring().answer()  # the first to join
    assert handler.sid == added.call_sid
    caller = emu.dial(CALLER, HOTLINE)
    caller.hang_up()
    handler.hang_up()
    emu.settle()
    assert events_at(twiml_app, "/conference-events") == ["conference-start", "conference-end"]


def test_a_starter_waiting_alone_starts_it_when_anyone_joins(
    emu, twiml_app, hotline, twilio_client
):
    """statusCallbackEvent start: "This occurs when there are at least two participants in the
    conference, and at least one of the participants has startConferenceOnEnter="true"." The
    starter may be the one who waited: a participant with startConferenceOnEnter=false joining
    a waiting starter starts the conference (the emulator's reading of the two sentences)."""
    twiml_app.route("/voice", room())
    twiml_app.route("/listener", room(startConferenceOnEnter="false"))
    caller = emu.dial(CALLER, HOTLINE)
    (conf,) = twilio_client.conferences.list(friendly_name="room-7")
    assert conf.status == "init"
    listener = call_in(emu, twilio_client, twiml_app, SECOND, "/listener")
    assert twilio_client.conferences(conf.sid).fetch().status == "in-progress"
    caller.say("hello")
    assert listener.voices_heard() == ["hello"]
