"""<Record>: beep, the action's parameters, real WAV/MP3 media behind basic auth, callbacks."""

from __future__ import annotations

import io
import re
import wave

from .conftest import CALLER, HOTLINE
from .scripted_app import http_get, twiml

RECORDING_SID = re.compile(r"^RE[0-9a-f]{32}$")


def decode_wav(data: bytes) -> tuple[int, int, int, float]:
    with wave.open(io.BytesIO(data)) as wav:
        frames = wav.getnframes()
        rate = wav.getframerate()
        return rate, wav.getnchannels(), wav.getsampwidth(), frames / rate


def test_record_action_parameters_and_wav_media(emu, twiml_app, hotline):
    twiml_app.route(
        "/voice",
        twiml("<Say>Leave a message after the beep</Say>", '<Record action="/recorded"/>'),
    )
    twiml_app.route("/recorded", twiml("<Say>Thank you</Say>"))
    call = emu.dial(CALLER, HOTLINE)
    assert [h.kind for h in call.heard] == ["say", "beep"]
    assert call.activity == "record"
    call.say("I need help, please call me back")
    call.press("#")
    (form,) = twiml_app.forms("/recorded")
    assert RECORDING_SID.match(form["RecordingSid"])
    assert form["Digits"] == "#"
    assert form["RecordingUrl"] == (
        f"{emu.base_url}/2010-04-01/Accounts/{emu.account_sid}/Recordings/{form['RecordingSid']}"
    )
    assert call.said_texts()[-1] == "Thank you"

    media = http_get(form["RecordingUrl"] + ".wav", auth=(emu.account_sid, emu.auth_token))
    assert media.status_code == 200
    assert media.headers["Content-Type"].startswith("audio/")
    rate, channels, width, seconds = decode_wav(media.content)
    assert (rate, channels, width) == (8000, 1, 2)
    assert seconds > 1.0
    assert int(form["RecordingDuration"]) == round(seconds)

    mp3 = http_get(form["RecordingUrl"] + ".mp3", auth=(emu.account_sid, emu.auth_token))
    assert mp3.status_code == 200 and mp3.headers["Content-Type"] == "audio/mpeg"
    assert mp3.content[:3] == b"ID3" or mp3.content[0] == 0xFF

    anonymous = http_get(form["RecordingUrl"] + ".wav")
    assert anonymous.status_code == 401


def test_record_duration_is_the_length_of_what_was_said(emu, twiml_app, hotline):
    twiml_app.route("/voice", twiml('<Record action="/r" timeout="3" playBeep="false"/>'))
    twiml_app.route("/r", twiml("<Hangup/>"))
    call = emu.dial(CALLER, HOTLINE)
    assert call.heard == []  # playBeep=false
    call.speak_for(4)
    call.wait(1)
    call.speak_for(3)
    call.wait(3)  # silence timeout ends the recording
    (form,) = twiml_app.forms("/r")
    assert form["RecordingDuration"] == "8"  # 4 s + 1 s gap + 3 s, silence trimmed
    assert "Digits" not in form
    media = http_get(form["RecordingUrl"], auth=(emu.account_sid, emu.auth_token))
    rate, channels, _, seconds = decode_wav(media.content)
    assert (rate, channels) == (8000, 1)
    assert abs(seconds - 8.0) < 0.05


def test_record_defaults(emu, twiml_app, hotline):
    twiml_app.route("/voice", twiml("<Record/>"))  # action defaults to this document
    twiml_app.route("/again", twiml("<Hangup/>"))
    call = emu.dial(CALLER, HOTLINE)
    assert [h.kind for h in call.heard] == ["beep"]  # playBeep defaults to true
    call.speak_for(2)
    call.wait(4.9)  # timeout defaults to 5 s of silence
    assert len(twiml_app.forms("/voice")) == 1
    call.wait(0.2)
    forms = twiml_app.forms("/voice")
    assert len(forms) == 2 and forms[1]["RecordingDuration"] == "2"
    twiml_app.route("/voice", twiml("<Hangup/>"))
    call.hang_up()


def test_record_finish_on_key_default_and_max_length(emu, twiml_app, hotline):
    twiml_app.route("/voice", twiml('<Record maxLength="5" action="/r"/>'))
    twiml_app.route("/r", twiml("<Hangup/>"))
    call = emu.dial(CALLER, HOTLINE)
    call.speak_for(10)  # longer than maxLength
    (form,) = twiml_app.forms("/r")
    assert form["RecordingDuration"] == "5"
    # every key finishes a recording by default
    for key in "7*":
        twiml_app.hits.clear()
        call = emu.dial(CALLER, HOTLINE)
        call.speak_for(1)
        call.press(key)
        assert twiml_app.forms("/r")[0]["Digits"] == key


def test_empty_recording_runs_next_verb_without_action(emu, twiml_app, hotline):
    twiml_app.route(
        "/voice",
        twiml(
            '<Record action="/r" timeout="2" recordingStatusCallback="/rs"'
            ' recordingStatusCallbackEvent="in-progress completed absent"/>',
            "<Say>You did not say anything</Say>",
        ),
    )
    call = emu.dial(CALLER, HOTLINE)
    call.wait(2)
    assert twiml_app.hits_to("/r") == []
    assert call.said_texts() == ["You did not say anything"]
    emu.settle()
    statuses = [f["RecordingStatus"] for f in twiml_app.forms("/rs")]
    assert statuses == ["in-progress", "absent"]


def test_recording_status_callback_default_event_completed(emu, twiml_app, hotline):
    twiml_app.route("/voice", twiml('<Record action="/r" recordingStatusCallback="/rs"/>'))
    twiml_app.route("/r", twiml("<Hangup/>"))
    call = emu.dial(CALLER, HOTLINE)
    call.say("hello there")
    call.press("1")
    emu.settle()
    (form,) = twiml_app.forms("/rs")
    assert form["RecordingStatus"] == "completed"
    assert form["CallSid"] == call.sid
    assert form["AccountSid"] == emu.account_sid
    assert form["RecordingSource"] == "RecordVerb"
    assert form["RecordingChannels"] == "1"
    assert form["RecordingDuration"] == twiml_app.forms("/r")[0]["RecordingDuration"]
    assert form["RecordingUrl"] == twiml_app.forms("/r")[0]["RecordingUrl"]
    assert form["RecordingStartTime"]


def test_hangup_during_record_sends_action_with_digits_hangup(emu, twiml_app, hotline):
    twiml_app.route("/voice", twiml('<Record action="/r"/>', "<Say>not heard</Say>"))
    twiml_app.route("/r", twiml("<Say>ignored</Say>"))
    call = emu.dial(CALLER, HOTLINE)
    call.say("bye")
    call.hang_up()
    (form,) = twiml_app.forms("/r")
    assert form["Digits"] == "hangup"
    assert call.status == "completed"
    assert call.said_texts() == []


def test_recordings_rest_fetch_list_delete(emu, twiml_app, hotline, twilio_client):
    twiml_app.route("/voice", twiml('<Record action="/r"/>'))
    twiml_app.route("/r", twiml("<Hangup/>"))
    call = emu.dial(CALLER, HOTLINE)
    call.say("please help")
    call.press("#")
    sid = twiml_app.forms("/r")[0]["RecordingSid"]
    rec = twilio_client.recordings(sid).fetch()
    assert rec.sid == sid and rec.call_sid == call.sid
    assert rec.status == "completed" and rec.source == "RecordVerb" and rec.channels == 1
    assert int(rec.duration) >= 1
    assert [r.sid for r in twilio_client.recordings.list(call_sid=call.sid)] == [sid]
    assert [r.sid for r in twilio_client.calls(call.sid).recordings.list()] == [sid]
    assert twilio_client.recordings(sid).delete() is True
    assert twilio_client.recordings.list() == []
    gone = http_get(
        f"{emu.base_url}/2010-04-01/Accounts/{emu.account_sid}/Recordings/{sid}.wav",
        auth=(emu.account_sid, emu.auth_token),
    )
    assert gone.status_code == 404
    assert gone.json()["code"] == 20404


def test_fail_media_injects_download_failures_then_serves_the_audio(emu, twiml_app, hotline):
    twiml_app.route("/voice", twiml('<Record action="/r"/>'))
    twiml_app.route("/r", twiml("<Hangup/>"))
    call = emu.dial(CALLER, HOTLINE)
    call.say("please help")
    call.press("#")
    sid = twiml_app.forms("/r")[0]["RecordingSid"]
    base = f"{emu.base_url}/2010-04-01/Accounts/{emu.account_sid}/Recordings/{sid}"
    auth = (emu.account_sid, emu.auth_token)
    emu.fail_media(sid, times=2, status=503)
    for _ in range(2):
        failed = http_get(base + ".wav", auth=auth)
        assert failed.status_code == 503 and failed.json()["status"] == 503
    assert http_get(base + ".json", auth=auth).status_code == 200  # metadata is not media
    assert http_get(base + ".wav", auth=auth).content.startswith(b"RIFF")
    assert emu.media_requests(sid) == 3
    emu.fail_media(sid, times=1)
    emu.fail_media(sid, times=0)  # cleared
    assert http_get(base + ".wav", auth=auth).status_code == 200


def test_max_length_ends_the_recording_while_the_caller_is_still_talking(emu, twiml_app, hotline):
    """Twilio's <Record> page, maxLength: "If you set maxLength to 30, the recording will
    automatically end after 30 seconds of recorded time has elapsed" — and "When recording is
    finished, Twilio will make a GET or POST request to this URL [action]". The action comes
    when maxLength is reached, not when the caller stops talking."""
    twiml_app.route("/voice", twiml('<Record maxLength="5" action="/r"/>'))
    twiml_app.route("/r", twiml("<Say>Thank you</Say>", '<Pause length="60"/>'))
    call = emu.dial(CALLER, HOTLINE)
    (beep,) = call.heard
    call.speak_for(20, listen=False)  # a long message, still being spoken
    call.wait(5)
    (form,) = twiml_app.forms("/r")
    assert form["RecordingDuration"] == "5"
    assert "Digits" not in form
    assert call.activity == "media"  # the action's TwiML plays while the caller talks on
    (thanks,) = [h for h in call.heard if h.kind == "say"]
    assert thanks.text == "Thank you" and abs(thanks.at - beep.at - 5.0) < 1e-6
    media = http_get(form["RecordingUrl"], auth=(emu.account_sid, emu.auth_token))
    assert abs(decode_wav(media.content)[3] - 5.0) < 0.05
    call.hang_up()


def test_a_finish_key_pressed_while_talking_ends_the_recording_at_once(emu, twiml_app, hotline):
    """Twilio's <Record> page, finishOnKey: "if you set finishOnKey to # and the caller presses
    the # key, Twilio will immediately stop recording and submit RecordingUrl,
    RecordingDuration, and # as parameters in a request to the action URL"."""
    twiml_app.route("/voice", twiml('<Record action="/r" finishOnKey="#"/>'))
    twiml_app.route("/r", twiml("<Hangup/>"))
    call = emu.dial(CALLER, HOTLINE)
    call.speak_for(20, listen=False)
    call.wait(4)
    call.press("5", listen=False)  # not a finish key: the recording goes on
    assert twiml_app.hits_to("/r") == []
    call.wait(2)
    call.press("#", listen=False)
    (form,) = twiml_app.forms("/r")
    assert (form["Digits"], form["RecordingDuration"]) == ("#", "6")
    assert call.status == "completed"


def test_hanging_up_mid_message_keeps_what_was_said_and_reports_it(emu, twiml_app, hotline):
    """Twilio's <Record> page, the action's parameters: "Digits — The key (if any) pressed to
    end the recording, or hangup if the caller hung up"; "RecordingUrl — The URL of the
    recorded audio. The recording file may not yet be accessible when the action callback is
    sent. Use recordingStatusCallback for reliable notification on when the recording is
    available for access." A caller who ends a voicemail by hanging up mid-sentence leaves a
    message: the action gets it with Digits=hangup, the status callback says completed, and
    the audio holds what was said until the hang-up."""
    twiml_app.route(
        "/voice",
        twiml(
            '<Record action="/r" recordingStatusCallback="/rs"'
            ' recordingStatusCallbackEvent="in-progress completed absent"/>',
            "<Say>not heard</Say>",
        ),
    )
    twiml_app.route("/r", twiml("<Say>ignored</Say>"))
    call = emu.dial(CALLER, HOTLINE)
    call.say("I need help, please call me back tomorrow evening after six", listen=False)
    call.wait(2)
    call.hang_up()
    emu.settle()
    (form,) = twiml_app.forms("/r")
    assert form["Digits"] == "hangup" and form["CallStatus"] == "completed"
    assert form["RecordingDuration"] == "2" and RECORDING_SID.match(form["RecordingSid"])
    statuses = [(f["RecordingStatus"], f["RecordingSid"]) for f in twiml_app.forms("/rs")]
    assert statuses == [("in-progress", form["RecordingSid"]), ("completed", form["RecordingSid"])]
    assert twiml_app.forms("/rs")[-1]["RecordingUrl"] == form["RecordingUrl"]
    media = http_get(form["RecordingUrl"] + ".wav", auth=(emu.account_sid, emu.auth_token))
    assert media.status_code == 200
    assert abs(decode_wav(media.content)[3] - 2.0) < 0.05  # cut where the caller hung up
    assert call.status == "completed" and call.said_texts() == []
