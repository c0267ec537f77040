"""<Record>, and recordings of bridged calls: real WAV audio built from what callers said."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING

from . import audio
from .state import Heard, Recording, new_sid
from .twiml import attr_bool, attr_events, attr_int, attr_method

if TYPE_CHECKING:
    from .carrier import Carrier
    from .runner import CallRunner


def new_recording(
    carrier: Carrier, call_sid: str, source: str, conference_sid: str | None = None
) -> Recording:
    now = carrier.clock.wall()
    rec = Recording(
        sid=new_sid("RE"),
        account_sid=carrier.account_sid,
        call_sid=call_sid,
        source=source,
        conference_sid=conference_sid,
        date_created=now,
        start_time=now,
    )
    with carrier.lock:
        carrier.store.recordings[rec.sid] = rec
    return rec


def complete(carrier: Carrier, rec: Recording, track) -> None:
    """Store the audio (or mark the recording absent when nothing was said)."""
    if track is None:
        rec.status, rec.duration, rec.error_code = "absent", 0, 16102
        return
    rec.wav = audio.wav_bytes(track)
    rec.duration = round(audio.seconds_of(track))
    rec.status = "completed"


def record(runner: CallRunner, el: ET.Element) -> None:
    """The <Record> verb: beep, capture until silence/key/maxLength/hangup, then the action."""
    from .runner import Hangup, Request, Transfer

    carrier, call, clock = runner.carrier, runner.call, runner.clock
    max_length = attr_int(el, "maxLength", 3600)
    timeout = attr_int(el, "timeout", 5)
    finish_keys = el.get("finishOnKey", "1234567890*#")
    trim = el.get("trim", "trim-silence")
    action = runner.resolve(el.get("action")) or runner.doc_url
    method = attr_method(el)
    callback = runner.resolve(el.get("recordingStatusCallback"))
    callback_method = attr_method(el, "recordingStatusCallbackMethod")
    events = attr_events(el, "recordingStatusCallbackEvent", "completed")

    if attr_bool(el, "playBeep", True):
        runner.hear(Heard("beep", seconds=0.25))
    rec = new_recording(carrier, call.sid, "RecordVerb")
    carrier.recording_callback(rec, callback, callback_method, events, "in-progress")
    start = clock.now()
    limit = start + max_length
    pieces: list[tuple[float, object]] = []
    last_sound = start
    speaking_until: float | None = None  # the caller is talking until then
    ended_by = ""
    call.activity = "record"
    try:
        while True:
            # maxLength counts recorded time, talking or not: it ends an utterance midway.
            # The silence timeout only starts once the caller stops talking.
            if speaking_until is not None:
                deadline = min(limit, speaking_until)
            elif timeout > 0:
                deadline = min(limit, last_sound + timeout)
            else:
                deadline = limit
            event = call.mailbox.get(max(0.0, deadline - clock.now()))
            runner.churn = 0
            if event is None:
                now = clock.now()
                if speaking_until is not None and now < limit - 1e-9:
                    if now < speaking_until - 1e-9:
                        continue
                    speaking_until, last_sound = None, now  # the utterance is over
                    call.activity = "record"
                    continue
                break  # maxLength reached, or the silence timeout
            kind = event[0]
            if kind == "hangup":  # the message ends there; what was said so far is kept
                ended_by = "hangup"
                break
            if kind in ("end", "redirect"):
                runner.call.mailbox.post(event)  # handled after the recording is saved
                ended_by = "hangup" if kind == "end" else ""
                break
            if kind == "digits":
                if any(key in finish_keys for key in event[1]):
                    ended_by = next(key for key in event[1] if key in finish_keys)
                    break
                continue
            if kind == "speech":
                now = clock.now()
                pieces.append((now - start, event[3]))
                until = now + event[2]
                speaking_until = until if speaking_until is None else max(speaking_until, until)
                call.activity = "listening"
                continue
            runner.handle_event(event)
    finally:
        if call.activity in ("record", "listening"):
            call.activity = "media"
    end = min(clock.now(), limit)
    track = None
    # what was said up to the end (a hang-up, a key or maxLength cuts an utterance short)
    heard = [(o, p[: round((end - start - o) * 1000)]) for o, p in pieces if o < end - start]
    heard = [(o, p) for o, p in heard if len(p) > 0]
    if heard:
        if trim == "do-not-trim":
            track = audio.mix(heard, end - start)
        else:
            first = heard[0][0]
            last = max(offset + audio.seconds_of(piece) for offset, piece in heard)
            track = audio.mix([(o - first, p) for o, p in heard], last - first)
    complete(carrier, rec, track)
    if track is None:
        carrier.recording_callback(rec, callback, callback_method, events, "absent")
        if ended_by == "hangup":
            raise Hangup("completed", "caller")
        return  # nothing recorded: no action request, the next verb runs
    carrier.recording_callback(rec, callback, callback_method, events, "completed")
    params = {
        "RecordingUrl": carrier.recording_url(rec),
        "RecordingSid": rec.sid,
        "RecordingDuration": str(rec.duration),
    }
    if ended_by:
        params["Digits"] = ended_by
    if ended_by == "hangup":
        params = {**carrier.call_params(call), **params, "CallStatus": "completed"}
        try:
            carrier.webhooks.send(action, method, params)  # the response is not executed
        except Exception as exc:
            carrier.log_error(getattr(exc, "code", 11200), str(exc), action, call.sid)
        raise Hangup("completed", "caller")
    raise Transfer(Request(action, method, params))


def start_capture(runner: CallRunner) -> None:
    runner.capture = []
    runner.capture_start = runner.clock.now()


def finish_capture(
    runner: CallRunner,
    source: str,
    callback: str | None = None,
    callback_method: str = "POST",
    events: frozenset[str] = frozenset({"completed"}),
) -> Recording:
    """Turn the speech captured on a leg (both parties) into a completed recording."""
    carrier = runner.carrier
    pieces, runner.capture = runner.capture or [], None
    length = runner.clock.now() - runner.capture_start
    rec = new_recording(carrier, runner.call.sid, source)
    if pieces:
        length = max([length] + [o + audio.seconds_of(p) for o, p in pieces])
    track = audio.mix(pieces, length) if pieces else None
    complete(carrier, rec, track)
    carrier.recording_callback(rec, callback, callback_method, events, rec.status)
    return rec


def finish_call_recording(runner: CallRunner) -> None:
    """A call created over REST with Record=true: the recording covers the whole call."""
    if runner.capture is None:
        return
    call = runner.call
    finish_capture(
        runner, "OutboundAPI", call.recording_status_callback, call.recording_status_callback_method
    )
