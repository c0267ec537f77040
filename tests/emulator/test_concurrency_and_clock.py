"""Many calls at once, thread hygiene, and the real-time clock."""

from __future__ import annotations

import threading
import time

from emulator import Emulator

from .conftest import HOTLINE
from .scripted_app import TwimlApp, twiml


def test_fifty_concurrent_calls(emu, twiml_app, hotline):
    twiml_app.route(
        "/voice",
        twiml(
            '<Gather action="/g" timeout="60"><Say>menu</Say></Gather>', "<Redirect>/q</Redirect>"
        ),
    )
    twiml_app.route("/q", twiml('<Enqueue waitUrl="/wait">line</Enqueue>'))
    twiml_app.route("/wait", twiml('<Say>hold on</Say><Pause length="20"/>'))
    # every dial lets its prompt play (0.5 s of virtual time each): 60 s covers all 50
    calls = [emu.dial(f"+3805000{i:05d}", HOTLINE) for i in range(50)]
    assert all(c.activity == "gather" for c in calls)
    started = time.monotonic()
    emu.wait(60)  # the Gathers time out together: 50 calls hit the app concurrently
    assert time.monotonic() - started < 20
    assert all(c.activity == "queue" for c in calls)
    assert len({f["CallSid"] for f in twiml_app.forms("/q")}) == 50
    first_wait: dict[str, int] = {}
    for form in twiml_app.forms("/wait"):
        first_wait.setdefault(form["CallSid"], int(form["QueuePosition"]))
    positions = sorted(first_wait.values())
    assert positions == list(range(1, 51))
    for call in calls:
        call.hang_up()
    assert all(c.status == "completed" for c in calls)


def test_stop_ends_live_calls_and_their_threads(twiml_app):
    before = {t.ident for t in threading.enumerate()}
    emulator = Emulator(clock="virtual").start()
    app = TwimlApp(emulator.auth_token).start()
    try:
        emulator.add_number(HOTLINE, voice_url=app.url("/voice"))
        app.route("/voice", twiml("<Gather/>"))
        call = emulator.dial("+380500000001", HOTLINE)
        assert call.activity == "gather"
    finally:
        emulator.stop()
        app.stop()
    assert call.status == "completed"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        leftover = [
            t for t in threading.enumerate() if t.ident not in before and t.name.startswith("call-")
        ]
        if not leftover:
            break
        time.sleep(0.02)
    assert not leftover


def test_real_clock_timeouts_take_real_time():
    emulator = Emulator(clock="real").start()
    app = TwimlApp(emulator.auth_token).start()
    try:
        emulator.add_number(HOTLINE, voice_url=app.url("/voice"))
        app.route("/voice", twiml('<Gather timeout="1" action="/g"/>', "<Say>fell through</Say>"))
        started = time.monotonic()
        call = emulator.dial("+380500000001", HOTLINE)
        assert call.activity == "gather"
        status = call.wait_until_finished(max_seconds=10)
        elapsed = time.monotonic() - started
        assert status == "completed"
        assert call.said_texts() == ["fell through"]
        assert 1.0 <= elapsed < 8
    finally:
        emulator.stop()
        app.stop()
