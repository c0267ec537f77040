"""<Dial> to <Number>/<Client>: ring child legs, whisper, bridge, and the Dial action."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING

from .control import Hangup
from .recording import finish_capture, start_capture
from .state import Call, Heard
from .twiml import attr_events, attr_int, attr_method, text_of

if TYPE_CHECKING:
    from .runner import CallRunner


def dial(runner: CallRunner, el: ET.Element) -> None:
    """Run a <Dial>; afterwards request its action (a transfer) or fall through."""
    nouns = list(el)
    if not nouns and text_of(el):
        nouns = [ET.Element("Number")]
        nouns[0].text = text_of(el)
    kinds = {noun.tag for noun in nouns}
    if "Conference" in kinds:
        from .conferences import join

        try:
            join(runner, el, None)
        except Hangup as done:
            conference_action_after_hangup(runner, el, done)
            raise
        return
    if "Queue" in kinds:
        from .queues import dial_queue

        dial_queue(runner, el, next(n for n in nouns if n.tag == "Queue"))
        return
    targets = [n for n in nouns if n.tag in ("Number", "Client", "Sip")]
    params = ring_and_bridge(runner, el, targets)
    finish_dial(runner, el, params)


#: ``Emulator(dial_action_on_caller_hangup=…)``: False, True (= "before-status"), or when.
CALLER_HANGUP_ACTIONS = (False, True, "before-status", "after-status")


def conference_action_after_hangup(runner: CallRunner, el: ET.Element, done: Hangup) -> None:
    """The caller hung up inside a <Dial><Conference>. Twilio documents that the action is
    requested "when the <Dial> call ends", not whether a caller's hang-up inside a conference
    does so: by the emulator's option, no request (the default), or one (its response ignored)
    on the call's own ordered callbacks, before or after its ``completed`` status callback."""
    when = runner.carrier.dial_action_on_caller_hangup
    action = runner.resolve(el.get("action"))
    if not when or not action:
        return
    if when == "after-status":
        runner.finish(done.status)  # the status callback first; the runner's finish is then a no-op
    carrier = runner.carrier
    body = {**carrier.call_params(runner.call), "CallStatus": "completed",
            "DialCallStatus": "answered"}  # fmt: skip
    carrier.post_callback(runner.call.sid, action, attr_method(el), body)


def finish_dial(runner: CallRunner, el: ET.Element, params: dict[str, str]) -> None:
    from .runner import Request, Transfer

    action = runner.resolve(el.get("action"))
    if action:
        raise Transfer(Request(action, attr_method(el), params))


def send_action_after_hangup(runner: CallRunner, el: ET.Element, params: dict[str, str]) -> None:
    """The caller hung up: Twilio still requests the action URL, and ignores what it says."""
    action = runner.resolve(el.get("action"))
    if not action:
        return
    carrier = runner.carrier
    body = {**carrier.call_params(runner.call), "CallStatus": "completed", **params}
    carrier.post_callback(runner.call.sid + ":dial", action, attr_method(el), body)


def _address(noun: ET.Element) -> str:
    if noun.tag == "Client":
        identity = noun.find("Identity")
        name = text_of(identity) if identity is not None else text_of(noun)
        return name if name.startswith("client:") else "client:" + name
    return text_of(noun)


def ring_and_bridge(runner: CallRunner, el: ET.Element, targets: list[ET.Element]) -> dict:
    from .runner import Hangup, Transfer

    carrier, call, clock = runner.carrier, runner.call, runner.clock
    timeout = attr_int(el, "timeout", 30)
    time_limit = attr_int(el, "timeLimit", 14400)
    caller_id = el.get("callerId") or call.from_
    record = el.get("record", "do-not-record")
    children: list[Call] = []
    for noun in targets:
        child = carrier.new_call(
            caller_id,
            _address(noun),
            "outbound-dial",
            parent_call_sid=call.sid,
            device=carrier.device(_address(noun)),
            timeout=timeout,
            status_callback=runner.resolve(noun.get("statusCallback")),
            status_callback_method=attr_method(noun, "statusCallbackMethod"),
            status_callback_events=attr_events(noun, "statusCallbackEvent", "completed"),
        )
        child.device.legs.append(child)
        whisper = runner.resolve(noun.get("url"))
        child_runner_start(runner, child, whisper, attr_method(noun))
        children.append(child)
    runner.hear(Heard("ringing"))
    call.activity = "dial"
    ring_deadline = clock.now() + timeout
    deadline: float | None = ring_deadline
    outcomes: dict[str, str] = {}
    answered: set[str] = set()
    winner: Call | None = None
    try:
        while len(outcomes) < len(children):
            wait = None if deadline is None else max(0.0, deadline - clock.now())
            event = runner.next_event(wait)
            if event is None:
                for child in children:
                    if child.sid not in outcomes:
                        child.mailbox.post(("end", "no-answer"))
                        outcomes[child.sid] = "no-answer"
                break
            kind = event[0]
            if kind == "child_answered":
                answered.add(event[1].sid)
                deadline = None  # answered: the whisper decides
            elif kind == "child_result":
                outcomes[event[1].sid] = event[2]
                answered.discard(event[1].sid)
                if not answered:
                    deadline = ring_deadline  # a whisper declined: keep ringing the others
            elif kind == "child_ready":
                winner = event[1]
                break
            else:
                runner.handle_event(event)
    except (Hangup, Transfer) as stop:
        for child in children:
            if child.sid not in outcomes:
                child.mailbox.post(("end", "canceled"))
        if isinstance(stop, Hangup):
            send_action_after_hangup(runner, el, {"DialCallStatus": "canceled"})
        raise
    for child in children:
        if child is not winner and child.sid not in outcomes:
            child.mailbox.post(("end", "canceled"))
    if winner is None:
        statuses = set(outcomes.values())
        for status in ("busy", "failed", "no-answer", "canceled"):
            if status in statuses:
                return {"DialCallStatus": status}
        return {"DialCallStatus": "no-answer"}
    return bridge(runner, el, winner, time_limit, record)


def bridge(runner: CallRunner, el: ET.Element, peer: Call, time_limit: int, record: str) -> dict:
    """Connect this leg with ``peer`` until either side leaves; the Dial action parameters."""
    from .runner import Hangup

    runner.answer()
    clock = runner.clock
    recording = record.startswith("record-from")
    if recording:
        start_capture(runner)
    started = clock.now()
    params = {"DialCallSid": peer.sid}
    try:
        outcome = bridge_wait(runner, peer, time_limit)
    except Hangup:
        params.update(
            DialCallStatus="completed", DialCallDuration=str(round(clock.now() - started))
        )
        if recording:
            _recording_params(runner, el, params)
        send_action_after_hangup(runner, el, params)
        raise
    del outcome
    params.update(DialCallStatus="completed", DialCallDuration=str(round(clock.now() - started)))
    if recording:
        _recording_params(runner, el, params)
    return params


def _recording_params(runner: CallRunner, el: ET.Element, params: dict[str, str]) -> None:
    rec = finish_capture(
        runner,
        "DialVerb",
        runner.resolve(el.get("recordingStatusCallback")),
        attr_method(el, "recordingStatusCallbackMethod"),
        attr_events(el, "recordingStatusCallbackEvent", "completed"),
    )
    if rec.status == "completed":
        params.update(
            RecordingUrl=runner.carrier.recording_url(rec),
            RecordingSid=rec.sid,
            RecordingDuration=str(rec.duration),
        )


def bridge_wait(runner: CallRunner, peer: Call, time_limit: float | None) -> str:
    """Stay bridged until the peer leaves ('peer') or the time limit passes ('time-limit')."""
    call, clock = runner.call, runner.clock
    with runner.carrier.lock:
        call.bridge = peer
        call.activity = "bridged"
    peer.mailbox.post(("bridged", call))
    deadline = None if time_limit is None else clock.now() + time_limit
    outcome = "time-limit"
    try:
        while True:
            wait = None if deadline is None else max(0.0, deadline - clock.now())
            event = runner.next_event(wait)
            if event is None:
                break
            if event[0] == "bridge_end" and event[1] is peer:
                outcome = "peer"
                break
            if event[0] != "bridged":
                runner.handle_event(event)
    finally:
        with runner.carrier.lock:
            still = call.bridge is peer
            call.bridge = None
            if call.activity == "bridged":
                call.activity = "media"
        if still and outcome != "peer":
            peer.mailbox.post(("bridge_end", call))
    return outcome


def child_runner_start(parent: CallRunner, child: Call, whisper: str | None, method: str) -> None:
    """Ring a dialed leg in its own thread; report to the parent via its mailbox."""
    from .runner import CallRunner, Hangup, Request

    carrier = parent.carrier
    runner = CallRunner(carrier, child)

    def run() -> None:
        reported = False
        try:
            carrier.status_callback(child, "initiated")
            with carrier.lock:
                child.status = "ringing"
                child.activity = "ringing"
            carrier.status_callback(child, "ringing")
            while True:
                event = runner.next_event(None)
                if event[0] == "answer":
                    break
                if event[0] == "reject":
                    raise Hangup("busy")
            runner.answer()
            parent.call.mailbox.post(("child_answered", child))
            if whisper:
                runner.context = "whisper"
                runner.run_flow(Request(whisper, method, fallback=False), end_hangs_up=False)
                runner.context = None
            child.activity = "connecting"
            parent.call.mailbox.post(("child_ready", child))
            reported = True
            while True:  # wait to be bridged (or canceled)
                event = runner.next_event(None)
                if event[0] == "bridged":
                    break
                if event[0] == "bridge_end":
                    raise Hangup("completed")
            bridge_wait(runner, parent.call, None)
            raise Hangup("completed")
        except Hangup as done:
            status = done.status
            if child.answered_at is not None and status in ("canceled", "no-answer"):
                status = "completed"
            if not reported:
                result = "no-answer" if child.answered_at is not None else status
                parent.call.mailbox.post(("child_result", child, result))
            runner.finish(status)
        except Exception as exc:
            carrier.log_error(0, f"emulator error: {exc!r}", None, child.sid)
            if not reported:
                parent.call.mailbox.post(("child_result", child, "failed"))
            runner.finish("failed" if child.answered_at is None else "completed")

    carrier.clock.spawn(run, name=f"leg-{child.sid[-6:]}")
