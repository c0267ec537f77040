"""<Enqueue> (the waiting caller, its waitUrl loop, <Leave>) and <Dial><Queue> (the agent)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING

from .carrier import HOLD_MUSIC_URL
from .errors import CarrierError
from .state import Call, Queue, QueueMember
from .twiml import attr_int, attr_method, text_of

if TYPE_CHECKING:
    from .runner import CallRunner

DEFAULT_WAIT = f'<Response><Play loop="1">{HOLD_MUSIC_URL}</Play></Response>'


def queue_params(runner: CallRunner, queue: Queue, member: QueueMember) -> dict[str, str]:
    return {
        "QueueSid": queue.sid,
        "QueuePosition": str(queue.position(member.call)),
        "QueueTime": str(round(runner.clock.now() - member.enqueued_at)),
        "AvgQueueTime": str(queue.average_wait()),
        "CurrentQueueSize": str(len(queue.members)),
        "MaxQueueSize": str(queue.max_size),
    }


def _remove(runner: CallRunner, queue: Queue, member: QueueMember) -> int:
    with runner.carrier.lock:
        if member in queue.members:
            queue.members.remove(member)
        waited = runner.clock.now() - member.enqueued_at
        queue.wait_times.append(waited)
        runner.call.queue = None
        runner.call.queue_time = round(waited)
        queue.date_updated = runner.clock.wall()
    return round(waited)


def enqueue(runner: CallRunner, el: ET.Element) -> None:
    from .dialing import bridge_wait
    from .runner import Dequeued, Hangup, LeaveQueue, Request, Transfer

    carrier, call = runner.carrier, runner.call
    name = text_of(el)
    action = runner.resolve(el.get("action"))
    method = attr_method(el)
    wait_url = runner.resolve(el.get("waitUrl"))
    wait_method = attr_method(el, "waitUrlMethod")
    queue = carrier.queue_named(name, create=True)
    assert queue is not None
    with carrier.lock:
        full = len(queue.members) >= queue.max_size
        if not full:
            member = QueueMember(call, runner.clock.now(), runner.clock.wall())
            queue.members.append(member)
            call.queue = queue
            dialer = queue.waiting_dialers.pop(0) if queue.waiting_dialers else None
    if full:
        carrier.log_error(14207, f"queue {name} is full", runner.doc_url, call.sid, "WARNING")
        result, waited = "queue-full", 0
    else:
        if dialer is not None:
            dialer.mailbox.post(("queue_member", queue))
        call.on_hold, call.activity = True, "queue"
        result = "error"
        try:
            _wait_loop(runner, queue, member, wait_url, wait_method)
        except LeaveQueue:
            result = "leave"
        except Dequeued as picked:
            waited = _remove(runner, queue, member)
            result = "bridged"
            call.on_hold = False
            try:
                _play_dequeue_url(runner, queue, picked, waited)
                bridge_wait(runner, picked.agent, None)
            except Hangup:
                picked.agent.mailbox.post(("bridge_end", call))
                _action_after_hangup(runner, action, method, queue, "bridged", waited)
                raise
        except Hangup:
            waited = _remove(runner, queue, member)
            if member.dequeued_by is not None:
                member.dequeued_by.mailbox.post(("bridge_end", call))
            _action_after_hangup(runner, action, method, queue, "hangup", waited)
            raise
        except Transfer as moved:  # redirected out of the queue over REST
            waited = _remove(runner, queue, member)
            _action_after_redirect(runner, action, method, queue, waited, moved)
            raise
        finally:
            call.on_hold = False
            call.activity = "media"
        waited = _remove(runner, queue, member) if call.queue is not None else call.queue_time
    if action:
        params = {"QueueResult": result, "QueueSid": queue.sid, "QueueTime": str(waited)}
        raise Transfer(Request(action, method, params))


def _action_after_hangup(runner, action, method, queue, result, waited) -> None:
    if not action:
        return
    carrier = runner.carrier
    params = {**carrier.call_params(runner.call), "CallStatus": "completed"}
    params.update(QueueResult=result, QueueSid=queue.sid, QueueTime=str(waited))
    carrier.post_callback(runner.call.sid + ":enqueue", action, method, params)


def _action_after_redirect(runner, action, method, queue, waited, moved) -> None:
    """A REST request (``Members`` update, ``Calls`` redirect) took the call out of the queue:
    Twilio requests the action "right away" with ``QueueResult=redirected``; the call runs
    the new URL, so the action's answer is ignored. Before or after the new URL is fetched,
    as the carrier is told (``queue_redirect_action``): Twilio does not document the order."""
    if not action:
        return
    carrier, call = runner.carrier, runner.call
    params = carrier.call_params(call)
    params.update(QueueResult="redirected", QueueSid=queue.sid, QueueTime=str(waited))
    if carrier.queue_redirect_action == "after":
        moved.request.then = (call.sid + ":enqueue", action, method, params)
        return
    try:
        carrier.webhooks.send(action, method, params)  # answered; what it says is ignored
    except CarrierError as exc:
        carrier.log_error(exc.code, exc.message, action, call.sid, "WARNING")


def _wait_loop(runner: CallRunner, queue: Queue, member: QueueMember, url, method) -> None:
    """Run the waitUrl document again and again until the caller leaves the queue."""
    from . import twiml
    from .runner import Request, Transfer

    carrier, clock = runner.carrier, runner.clock
    request = Request(url, method, fallback=False) if url else None
    saved_url = runner.doc_url
    runner.context = "queue"
    try:
        while True:
            started = clock.now()
            doc = None
            if request is not None:
                params = {**carrier.call_params(runner.call), **request.extra}
                params.update(queue_params(runner, queue, member))
                try:
                    doc = runner.fetch(request.url, request.method, params)
                    runner.doc_url = request.url.partition("#")[0]
                except CarrierError as exc:
                    carrier.log_error(exc.code, exc.message, request.url, runner.call.sid)
            if doc is None:
                doc = twiml.parse(DEFAULT_WAIT)
            try:
                runner.execute(doc)
            except Transfer as moved:
                if moved.from_rest:
                    raise
                request = moved.request  # a Redirect or Gather action inside the wait music
                continue
            if clock.now() - started < 1.0:
                runner.wait_media(1.0)  # never spin: an empty wait document still takes time
            request = Request(url, method, fallback=False) if url else None
    finally:
        runner.context = None
        runner.doc_url = saved_url


def _play_dequeue_url(runner: CallRunner, queue: Queue, picked, waited: int) -> None:
    """<Queue url>: TwiML played to the dequeued caller before the bridge."""
    from .runner import Request, Transfer

    if not picked.url:
        return
    carrier = runner.carrier
    extra = {"QueueSid": queue.sid, "QueueTime": str(waited), "DequeingCallSid": picked.agent.sid}
    request = Request(picked.url, picked.method, extra, fallback=False)
    runner.context = "dequeue-url"
    try:
        for _ in range(10):
            params = {**carrier.call_params(runner.call), **request.extra}
            try:
                doc = runner.fetch(request.url, request.method, params)
            except CarrierError as exc:
                carrier.log_error(exc.code, exc.message, request.url, runner.call.sid)
                return
            try:
                runner.execute(doc)
                return
            except Transfer as moved:
                request = Request(moved.request.url, moved.request.method, extra, fallback=False)
    finally:
        runner.context = None


def dial_queue(runner: CallRunner, el: ET.Element, noun: ET.Element) -> None:
    """The agent's <Dial><Queue>: take the first waiting caller and bridge to them."""
    from .dialing import bridge, finish_dial

    carrier, call, clock = runner.carrier, runner.call, runner.clock
    queue = carrier.queue_named(text_of(noun), create=False)
    if queue is None:
        finish_dial(runner, el, {"DialCallStatus": "failed"})
        return
    url = runner.resolve(noun.get("url"))
    method = attr_method(noun)
    deadline = clock.now() + attr_int(el, "timeout", 30)
    call.activity = "dial"
    picked: Call | None = None
    while picked is None:
        with carrier.lock:
            member = next((m for m in queue.members if m.dequeued_by is None), None)
            if member is not None:
                member.dequeued_by = call
                queue.members.remove(member)
            elif call not in queue.waiting_dialers:
                queue.waiting_dialers.append(call)
        if member is not None:
            member.call.mailbox.post(("dequeue", call, url, method))
            picked = _await_member(runner, member)
            continue
        event = runner.next_event(max(0.0, deadline - clock.now()))
        if event is None:
            with carrier.lock:
                if call in queue.waiting_dialers:
                    queue.waiting_dialers.remove(call)
            finish_dial(runner, el, {"DialCallStatus": "no-answer"})
            return
        if event[0] != "queue_member":
            runner.handle_event(event)
    waited = round(clock.now() - member.enqueued_at)
    params = bridge(runner, el, picked, attr_int(el, "timeLimit", 14400), "do-not-record")
    params.update(
        QueueSid=queue.sid,
        DequeueResult="bridged",
        DequeuedCallSid=picked.sid,
        DequeuedCallQueueTime=str(waited),
        DequeuedCallDuration=params.get("DialCallDuration", "0"),
    )
    finish_dial(runner, el, params)


def _await_member(runner: CallRunner, member: QueueMember) -> Call | None:
    """Wait until the picked caller has heard the <Queue url> and reached the bridge."""
    while True:
        event = runner.next_event(None)
        if event[0] == "bridged" and event[1] is member.call:
            return member.call
        if event[0] == "bridge_end" and event[1] is member.call:
            return None  # the caller hung up meanwhile: take the next one
        runner.handle_event(event)
