"""<Dial><Conference> and REST-added participants: wait music, talk, hold, mute, leave, end.

As Twilio documents it: a conference starts once at least two participants are in and one of
them has ``startConferenceOnEnter``; until then its participants hear the ``waitUrl`` (played
once, then silence; Twilio's own music loops), are not heard and are not recorded. The first
participant to join sets the conference's status callback (URL, method, events).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING

from . import audio
from .carrier import HOLD_MUSIC_URL
from .errors import CarrierError
from .recording import complete, new_recording
from .state import Conference, Heard, Participant, rfc2822
from .twiml import attr_bool, attr_events, attr_method, text_of
from .webhooks import split_fragment

if TYPE_CHECKING:
    from .carrier import Carrier
    from .runner import CallRunner

EVENT_NAMES = {
    "start": "conference-start",
    "end": "conference-end",
    "join": "participant-join",
    "leave": "participant-leave",
    "mute": "participant-mute",
    "unmute": "participant-unmute",
    "hold": "participant-hold",
    "unhold": "participant-unhold",
}
SUBSCRIPTION = {"unmute": "mute", "unhold": "hold"}
DEFAULT_WAIT = f"<Response><Play>{HOLD_MUSIC_URL}</Play></Response>"


def options_from_noun(runner: CallRunner, noun: ET.Element) -> dict:
    beep = (noun.get("beep") or "true").strip()
    return {
        "name": text_of(noun),
        "muted": attr_bool(noun, "muted", False),
        "beep": beep,
        "start": attr_bool(noun, "startConferenceOnEnter", True),
        "end": attr_bool(noun, "endConferenceOnExit", False),
        "wait_url": runner.resolve(noun.get("waitUrl")) if noun.get("waitUrl") != "" else "",
        "wait_method": attr_method(noun, "waitMethod"),
        "label": noun.get("participantLabel"),
        "coach": noun.get("coach"),
        "record": noun.get("record", "do-not-record"),
        "status_callback": runner.resolve(noun.get("statusCallback")),
        "status_callback_method": attr_method(noun, "statusCallbackMethod"),
        "status_callback_events": attr_events(noun, "statusCallbackEvent", ""),
        "recording_status_callback": runner.resolve(noun.get("recordingStatusCallback")),
    }


def join(runner: CallRunner, dial_el: ET.Element | None, rest_options: dict | None) -> None:
    """Put this leg in a conference until it ends, the leg is removed, or hangs up."""
    from .dialing import finish_dial
    from .runner import ConferenceLeft, Hangup, Transfer

    carrier, call = runner.carrier, runner.call
    if dial_el is not None:
        noun = dial_el.find("Conference")
        assert noun is not None
        opts = options_from_noun(runner, noun)
    else:
        assert rest_options is not None
        opts = rest_options
    conf = carrier.conference_named(opts["name"])
    part = Participant(
        call=call,
        conference=conf,
        muted=opts["muted"],
        coaching=bool(opts.get("coach")),
        call_sid_to_coach=opts.get("coach"),
        start_conference_on_enter=opts["start"],
        end_conference_on_exit=opts["end"],
        beep=opts["beep"] not in ("false", "onExit"),
        label=opts.get("label"),
        date_created=carrier.clock.wall(),
    )
    part.date_updated = part.date_created
    with carrier.lock:
        if not conf.joined_once:  # "set by the first Participant to join the conference"
            conf.joined_once = True
            if opts.get("status_callback"):
                conf.callbacks.append(
                    (
                        opts["status_callback"],
                        opts["status_callback_method"],
                        opts["status_callback_events"],
                    )
                )
        if opts.get("record", "do-not-record") != "do-not-record":
            conf.record = True
            conf.recording_callback = opts.get("recording_status_callback")
        others = [p for p in conf.participants if not p.hold]
        conf.participants.append(part)
        call.conference = conf
    if part.beep:
        for other in others:
            runner.hear_on(other.call, Heard("beep", seconds=0.25))
    conference_event(carrier, conf, "join", part)
    if can_start(conf):
        start(carrier, conf)
    call.on_hold = True
    try:
        while conf.status != "completed" and part in conf.participants:
            call.activity = "conference"
            if conf.status == "init":
                _wait(runner, conf, opts)
                continue
            runner.handle_event(runner.next_event(None))
    except ConferenceLeft:
        pass
    except (Hangup, Transfer):
        leave(carrier, conf, part)
        raise
    finally:
        call.on_hold = False
        call.activity = "media"
    leave(carrier, conf, part)
    if dial_el is not None:
        # "answered: When calling a conference, the called party answered the call and was
        # connected to the caller"; DialCallSid and DialCallDuration are not sent after a
        # conference (Twilio's <Dial> page).
        finish_dial(runner, dial_el, {"DialCallStatus": "answered"})


def can_start(conf: Conference) -> bool:
    """Twilio's conference start: "This occurs when there are at least two participants in the
    conference, and at least one of the participants has startConferenceOnEnter=true"."""
    return (
        conf.status == "init"
        and len(conf.participants) >= 2
        and any(p.start_conference_on_enter for p in conf.participants)
    )


def _wait(runner: CallRunner, conf: Conference, opts: dict) -> None:
    """Until the conference starts: the waitUrl's document once, its <Redirect>s followed, then
    silence ("Once the TwiML document located at the waitUrl runs out of verbs to execute,
    silence will be played"); without a waitUrl Twilio's hold music, which loops; with
    ``waitUrl=""`` silence."""
    from . import twiml
    from .runner import ConferenceStarted, Request, Transfer

    url = opts.get("wait_url")
    runner.context = "conference-wait"
    saved = runner.doc_url
    try:
        if url is None:
            music = twiml.parse(DEFAULT_WAIT)
            while conf.status == "init":
                started = runner.clock.now()
                runner.execute(music)
                if runner.clock.now() - started < 1.0:  # music set to last no time
                    runner.wait_media(1.0)
        request = Request(url, opts.get("wait_method") or "POST") if url else None
        while request is not None and conf.status == "init":
            try:
                doc = runner.fetch(
                    request.url, request.method, runner.carrier.call_params(runner.call)
                )
            except CarrierError as exc:
                runner.carrier.log_error(exc.code, exc.message, request.url, runner.call.sid)
                break
            runner.doc_url = split_fragment(request.url)[0]
            started = runner.clock.now()
            request = None
            try:
                runner.execute(doc)
            except Transfer as moved:
                if moved.from_rest:
                    raise
                request = moved.request
                if runner.clock.now() - started < 1.0:  # a <Redirect> loop without media
                    runner.wait_media(1.0)
        while conf.status == "init":
            runner.handle_event(runner.next_event(None))
    except ConferenceStarted:
        pass
    finally:
        runner.context = None
        runner.doc_url = saved


def start(carrier: Carrier, conf: Conference) -> None:
    with carrier.lock:
        if conf.status != "init":
            return
        conf.status = "in-progress"
        conf.started_at = carrier.clock.now()
        conf.date_updated = carrier.clock.wall()
        members = list(conf.participants)
    conference_event(carrier, conf, "start", None)
    for part in members:
        part.call.mailbox.post(("conf_started",))


def leave(carrier: Carrier, conf: Conference, part: Participant) -> None:
    with carrier.lock:
        if part not in conf.participants:
            return
        conf.participants.remove(part)
        part.status = "complete"
        part.call.conference = None
        remaining = list(conf.participants)
    conference_event(carrier, conf, "leave", part)
    if conf.status == "completed":
        if not remaining:
            conference_event(carrier, conf, "end", None)  # after every participant left
        return
    if part.beep:
        for other in remaining:
            if not other.hold:
                with carrier.lock:
                    other.call.heard.append(Heard("beep", seconds=0.25, at=carrier.clock.now()))
    if part.end_conference_on_exit or not remaining:
        end(
            carrier,
            conf,
            "participant-with-end-conference-on-exit-left"
            if remaining
            else "last-participant-left",
        )


def end(carrier: Carrier, conf: Conference, reason: str) -> None:
    with carrier.lock:
        if conf.status == "completed":
            return
        conf.status = "completed"
        conf.reason_ended = reason
        conf.date_updated = carrier.clock.wall()
        members = list(conf.participants)
    for part in members:
        part.call.mailbox.post(("conf_end",))
    if conf.record and conf.started_at is not None:
        # "the recording begins when the first two participants are bridged. The hold music is
        # never recorded": a conference that never started has no recording
        pieces = conf.recording_segments
        length = carrier.clock.now() - (conf.started_at or carrier.clock.now())
        rec = new_recording(carrier, members[0].call.sid if members else "", "Conference", conf.sid)
        if pieces:
            length = max([length] + [o + audio.seconds_of(p) for o, p in pieces])
        complete(carrier, rec, audio.mix(pieces, length) if pieces else None)
        carrier.recording_callback(
            rec,
            getattr(conf, "recording_callback", None),
            "POST",
            frozenset({"completed"}),
            rec.status,
        )
    if not members:
        conference_event(carrier, conf, "end", None)


def relay(runner: CallRunner, event: tuple) -> None:
    """A participant speaks: who hears it depends on mute, hold and coaching."""
    carrier, call = runner.carrier, runner.call
    conf = call.conference
    if conf is None:
        return
    speaker = conf.participant(call.sid)
    if speaker is None or speaker.muted or speaker.hold or conf.status != "in-progress":
        return  # before the start the participants hear the wait music, not each other
    source = call.device.address if call.device else call.from_
    with carrier.lock:
        listeners = [p for p in conf.participants if p is not speaker and not p.hold]
        if speaker.coaching and speaker.call_sid_to_coach:
            listeners = [p for p in listeners if p.call.sid == speaker.call_sid_to_coach]
        if conf.record and conf.started_at is not None:
            conf.recording_segments.append((carrier.clock.now() - conf.started_at, event[3]))
    for listener in listeners:
        runner.hear_on(listener.call, Heard("voice", event[1], source=source, seconds=event[2]))


def update_participant(carrier: Carrier, part: Participant, **changes) -> None:
    """REST changes to a participant: Hold, Muted, Coaching, CallSidToCoach."""
    conf = part.conference
    with carrier.lock:
        part.date_updated = carrier.clock.wall()
        if "coaching" in changes:
            part.coaching = changes["coaching"]
        if changes.get("call_sid_to_coach"):
            part.call_sid_to_coach = changes["call_sid_to_coach"]
    if "muted" in changes and changes["muted"] != part.muted:
        part.muted = changes["muted"]
        conference_event(carrier, conf, "mute" if part.muted else "unmute", part)
    if "hold" in changes and changes["hold"] != part.hold:
        part.hold = changes["hold"]
        kind = "hold" if part.hold else "unhold"
        with carrier.lock:
            part.call.heard.append(
                Heard(kind, url=HOLD_MUSIC_URL if part.hold else None, at=carrier.clock.now())
            )
        conference_event(carrier, conf, kind, part)


def conference_event(carrier: Carrier, conf: Conference, kind: str, part: Participant | None):
    wanted = SUBSCRIPTION.get(kind, kind)
    for url, method, events in list(conf.callbacks):
        if wanted not in events:
            continue
        with carrier.lock:
            conf.sequence += 1
            sequence = conf.sequence
        params = {
            "AccountSid": conf.account_sid,
            "ConferenceSid": conf.sid,
            "FriendlyName": conf.friendly_name,
            "StatusCallbackEvent": EVENT_NAMES[kind],
            "SequenceNumber": str(sequence),
            "Timestamp": rfc2822(carrier.clock.wall()) or "",
        }
        if kind == "end" and conf.reason_ended:
            params["ReasonConferenceEnded"] = conf.reason_ended
        if part is not None:
            params.update(
                CallSid=part.call.sid,
                Muted=str(part.muted).lower(),
                Hold=str(part.hold).lower(),
                Coaching=str(part.coaching).lower(),
                EndConferenceOnExit=str(part.end_conference_on_exit).lower(),
                StartConferenceOnEnter=str(part.start_conference_on_enter).lower(),
            )
            if part.label:
                params["ParticipantLabel"] = part.label
        carrier.post_callback(conf.sid, url, method, params)
