"""<Dial> to numbers and clients (whisper, outcomes, action), <Enqueue>/<Leave>, queues over REST."""

from __future__ import annotations

from .conftest import CALLER, HOTLINE
from .scripted_app import twiml

HANDLER = "+15557770001"


def test_dial_number_with_whisper_then_bridge_and_action(emu, twiml_app, hotline):
    twiml_app.route(
        "/voice",
        twiml(
            f'<Dial action="/dialed" timeout="20" callerId="{HOTLINE}">'
            f'<Number url="/whisper">{HANDLER}</Number></Dial>'
        ),
    )
    twiml_app.route("/whisper", twiml("<Say>Hotline call, connecting</Say>"))
    twiml_app.route("/dialed", lambda f: twiml(f"<Say>Dial ended {f['DialCallStatus']}</Say>"))
    caller = emu.dial(CALLER, HOTLINE)
    assert caller.activity == "dial"
    handler = emu.phone(HANDLER).wait_for_ring()
    assert handler.from_ == HOTLINE and handler.parent_call_sid == caller.sid
    assert handler.direction == "outbound-dial"
    handler.answer()
    assert handler.said_texts() == ["Hotline call, connecting"]
    assert caller.said_texts() == []  # the whisper is for the handler only
    whisper_form = twiml_app.forms("/whisper")[0]
    assert whisper_form["ParentCallSid"] == caller.sid
    assert whisper_form["CallSid"] == handler.sid
    assert whisper_form["Direction"] == "outbound-dial"
    assert caller.activity == "bridged" and handler.activity == "bridged"
    caller.say("I need to talk to someone")
    handler.say("I am listening")
    assert handler.voices_heard() == ["I need to talk to someone"]
    assert caller.voices_heard() == ["I am listening"]
    emu.wait(30)
    handler.hang_up()
    (form,) = twiml_app.forms("/dialed")
    assert form["DialCallStatus"] == "completed"
    assert form["DialCallSid"] == handler.sid
    assert int(form["DialCallDuration"]) >= 30
    assert caller.said_texts() == ["Dial ended completed"]
    assert handler.status == "completed"


def test_dial_no_answer_after_timeout(emu, twiml_app, hotline):
    twiml_app.route("/voice", twiml(f'<Dial action="/dialed" timeout="10">{HANDLER}</Dial>'))
    twiml_app.route("/dialed", twiml("<Say>nobody answered</Say>"))
    caller = emu.dial(CALLER, HOTLINE)
    ringing = emu.phone(HANDLER).wait_for_ring()
    caller.wait(9.9)
    assert twiml_app.forms("/dialed") == []
    caller.wait(0.2)
    assert twiml_app.forms("/dialed")[0]["DialCallStatus"] == "no-answer"
    assert ringing.status == "no-answer"
    assert caller.said_texts() == ["nobody answered"]


def test_dial_default_timeout_is_30_seconds(emu, twiml_app, hotline):
    twiml_app.route("/voice", twiml(f'<Dial action="/dialed">{HANDLER}</Dial>'))
    twiml_app.route("/dialed", twiml("<Hangup/>"))
    emu.dial(CALLER, HOTLINE)
    emu.wait(29.5)
    assert twiml_app.forms("/dialed") == []
    emu.wait(1)
    assert twiml_app.forms("/dialed")[0]["DialCallStatus"] == "no-answer"


def test_dial_busy_when_rejected_and_falls_through_without_action(emu, twiml_app, hotline):
    twiml_app.route("/voice", twiml(f"<Dial>{HANDLER}</Dial>", "<Say>after dial</Say>"))
    caller = emu.dial(CALLER, HOTLINE)
    emu.phone(HANDLER).wait_for_ring().reject()
    assert caller.wait_until_finished() == "completed"
    assert caller.said_texts() == ["after dial"]


def test_dial_busy_reported_to_action(emu, twiml_app, hotline):
    twiml_app.route("/voice", twiml(f'<Dial action="/d"><Number>{HANDLER}</Number></Dial>'))
    twiml_app.route("/d", twiml("<Hangup/>"))
    emu.dial(CALLER, HOTLINE)
    emu.phone(HANDLER).reject(emu.phone(HANDLER).wait_for_ring())
    assert twiml_app.forms("/d")[0]["DialCallStatus"] == "busy"


def test_whisper_hangup_does_not_connect(emu, twiml_app, hotline):
    twiml_app.route(
        "/voice", twiml(f'<Dial action="/d"><Number url="/w">{HANDLER}</Number></Dial>')
    )
    twiml_app.route(
        "/w",
        twiml(
            '<Gather numDigits="1" action="/w-ok" timeout="3"><Say>Press 1</Say></Gather>',
            "<Hangup/>",
        ),
    )
    twiml_app.route("/d", twiml("<Say>no handler</Say>"))
    caller = emu.dial(CALLER, HOTLINE)
    handler = emu.phone(HANDLER).wait_for_ring().answer()
    assert handler.activity == "gather"
    handler.wait(3)
    assert twiml_app.forms("/d")[0]["DialCallStatus"] == "no-answer"
    assert caller.said_texts() == ["no handler"]


def test_dial_client(emu, twiml_app, hotline):
    twiml_app.route("/voice", twiml('<Dial action="/d"><Client>alice</Client></Dial>'))
    twiml_app.route("/d", twiml("<Hangup/>"))
    caller = emu.dial(CALLER, HOTLINE)
    alice = emu.client("alice")
    incoming = alice.wait_for_ring()
    assert incoming.to == "client:alice"
    alice.answer(incoming)
    assert caller.activity == "bridged"
    caller.hang_up()
    emu.settle()
    assert incoming.status == "completed"
    form = twiml_app.forms("/d")[0]
    assert form["DialCallStatus"] == "completed" and form["CallStatus"] == "completed"


def test_dial_two_numbers_first_answer_wins(emu, twiml_app, hotline):
    other = "+15557770002"
    twiml_app.route(
        "/voice", twiml(f"<Dial><Number>{HANDLER}</Number><Number>{other}</Number></Dial>")
    )
    emu.dial(CALLER, HOTLINE)
    first = emu.phone(HANDLER).wait_for_ring()
    second = emu.phone(other).wait_for_ring()
    second.answer()
    assert second.activity == "bridged"
    assert first.status == "canceled"


def test_dial_record_gives_recording_url(emu, twiml_app, hotline):
    twiml_app.route(
        "/voice", twiml(f'<Dial record="record-from-answer" action="/d">{HANDLER}</Dial>')
    )
    twiml_app.route("/d", twiml("<Hangup/>"))
    caller = emu.dial(CALLER, HOTLINE)
    handler = emu.phone(HANDLER).wait_for_ring().answer()
    caller.say("hello")
    handler.say("hi there")
    handler.hang_up()
    form = twiml_app.forms("/d")[0]
    assert form["RecordingSid"].startswith("RE") and int(form["RecordingDuration"]) >= 1


def test_enqueue_wait_url_loop_leave_and_action(emu, twiml_app, hotline):
    waits: list[dict] = []

    def wait_music(form):
        waits.append(form)
        if len(waits) >= 3:
            return twiml("<Say>Leaving the queue</Say>", "<Leave/>")
        return twiml('<Say>Please hold</Say><Pause length="10"/>')

    twiml_app.route("/voice", twiml('<Enqueue waitUrl="/wait" action="/left">support</Enqueue>'))
    twiml_app.route("/wait", wait_music)
    twiml_app.route("/left", lambda f: twiml(f"<Say>Result {f['QueueResult']}</Say>"))
    caller = emu.dial(CALLER, HOTLINE)
    assert caller.activity == "queue"
    assert len(waits) == 1
    first = waits[0]
    assert first["QueuePosition"] == "1" and first["QueueSid"].startswith("QU")
    assert first["CurrentQueueSize"] == "1" and first["QueueTime"] == "0"
    assert first["MaxQueueSize"] == "1000" and first["AvgQueueTime"] == "0"
    caller.wait(30)
    assert len(waits) == 3
    assert int(waits[1]["QueueTime"]) >= 10
    (left,) = twiml_app.forms("/left")
    assert left["QueueResult"] == "leave"
    assert left["QueueSid"] == first["QueueSid"]
    assert int(left["QueueTime"]) >= 20
    assert caller.said_texts()[-2:] == ["Leaving the queue", "Result leave"]


def test_leave_without_action_runs_next_verb(emu, twiml_app, hotline):
    twiml_app.route(
        "/voice", twiml('<Enqueue waitUrl="/wait">support</Enqueue>', "<Say>after queue</Say>")
    )
    twiml_app.route("/wait", twiml("<Leave/>"))
    caller = emu.dial(CALLER, HOTLINE)
    assert caller.said_texts() == ["after queue"]


def test_queues_and_members_over_rest_and_dequeue(emu, twiml_app, hotline, twilio_client):
    twiml_app.route("/voice", twiml('<Enqueue waitUrl="/wait">support</Enqueue>'))
    twiml_app.route("/wait", twiml('<Play loop="0">https://media.example.org/music.mp3</Play>'))
    twiml_app.route("/picked", twiml("<Say>A handler will call you back</Say>"))
    first = emu.dial(CALLER, HOTLINE)
    second = emu.dial("+380500000002", HOTLINE)
    (queue,) = twilio_client.queues.list()
    assert queue.friendly_name == "support" and queue.current_size == 2
    members = twilio_client.queues(queue.sid).members.list()
    assert [m.call_sid for m in members] == [first.sid, second.sid]
    assert [m.position for m in members] == [1, 2]
    front = twilio_client.queues(queue.sid).members("Front").fetch()
    assert front.call_sid == first.sid
    twilio_client.queues(queue.sid).members(second.sid).update(
        url=twiml_app.url("/picked"), method="POST"
    )
    second.listen()
    assert second.said_texts() == ["A handler will call you back"]
    assert [m.call_sid for m in twilio_client.queues(queue.sid).members.list()] == [first.sid]
    assert twilio_client.queues(queue.sid).fetch().current_size == 1


def test_dial_queue_bridges_agent_with_first_caller(emu, twiml_app, hotline, twilio_client):
    twiml_app.route("/voice", twiml('<Enqueue waitUrl="/wait" action="/after">support</Enqueue>'))
    twiml_app.route("/wait", twiml("<Say>hold</Say>"))
    twiml_app.route("/after", lambda f: twiml(f"<Say>queue result {f['QueueResult']}</Say>"))
    twiml_app.route(
        "/agent",
        twiml('<Dial action="/agent-done"><Queue url="/announce">support</Queue></Dial>'),
    )
    twiml_app.route("/announce", twiml("<Say>Connecting you to a handler</Say>"))
    twiml_app.route("/agent-done", twiml("<Hangup/>"))
    caller = emu.dial(CALLER, HOTLINE)
    caller.wait(12)
    twilio_client.calls.create(to=HANDLER, from_=HOTLINE, url=twiml_app.url("/agent"))
    agent = emu.phone(HANDLER).wait_for_ring().answer()
    caller.listen()
    assert caller.said_texts()[-1] == "Connecting you to a handler"
    announce = twiml_app.forms("/announce")[0]
    assert announce["CallSid"] == caller.sid and announce["DequeingCallSid"] == agent.sid
    assert announce["QueueSid"].startswith("QU") and int(announce["QueueTime"]) >= 12
    assert caller.activity == "bridged" and agent.activity == "bridged"
    agent.say("Hello, how can I help?")
    assert caller.voices_heard() == ["Hello, how can I help?"]
    agent.hang_up()
    done = twiml_app.forms("/agent-done")[0]
    assert done["DialCallStatus"] == "completed" and done["DialCallSid"] == caller.sid
    after = twiml_app.forms("/after")[0]
    assert after["QueueResult"] == "bridged"
    assert caller.said_texts()[-1] == "queue result bridged"


def test_dial_queue_waits_for_a_caller(emu, twiml_app, hotline, twilio_client):
    twiml_app.route("/voice", twiml("<Enqueue>support</Enqueue>"))
    twiml_app.route("/agent", twiml('<Dial timeout="60"><Queue>support</Queue></Dial>'))
    emu.add_number("+15550002222", voice_url=twiml_app.url("/voice"))
    # the queue must exist first
    first = emu.dial(CALLER, HOTLINE)
    first.hang_up()
    agent = emu.dial(HANDLER, "+15550002222", listen=True)
    twiml_app.route("/voice2", twiml('<Dial timeout="60"><Queue>support</Queue></Dial>'))
    emu.add_number("+15550003333", voice_url=twiml_app.url("/voice2"))
    agent.hang_up()
    waiting_agent = emu.dial(HANDLER, "+15550003333")
    assert waiting_agent.activity == "dial"
    caller = emu.dial("+380500000009", HOTLINE)
    assert caller.activity == "bridged" and waiting_agent.activity == "bridged"


def test_caller_hangs_up_in_queue(emu, twiml_app, hotline, twilio_client):
    twiml_app.route("/voice", twiml('<Enqueue action="/after">support</Enqueue>'))
    twiml_app.route("/after", twiml("<Say>ignored</Say>"))
    caller = emu.dial(CALLER, HOTLINE)
    caller.hang_up()
    emu.settle()
    assert twiml_app.forms("/after")[0]["QueueResult"] == "hangup"
    assert twilio_client.queues.list()[0].current_size == 0
