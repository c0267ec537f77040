"""The handler's page in chromium at a phone's width: a real call through the emulator is offered
to the handler whose page is open; without a reload the page shows what to do, rings (the ring
sound turned on with its button) and changes its title; the handler answers without pressing 1,
the offer ends, the title comes back and the page says why the call went elsewhere.

Needs Debian's chromium (/usr/bin/chromium): skipped without it unless HOTLINE_REQUIRE_BROWSER=1.
"""

from __future__ import annotations

import time

from tests.e2e.conftest import chromium, console_login, emulator, hotline  # noqa: F401 (fixtures)
from tests.e2e.test_routing_calls import HANDLER_A, add_handler, drain, queued_caller
from tests.staff.support import PASSWORD, make_user


def wait_until(page, script: str, timeout_s: float = 15.0) -> None:
    """Poll a condition in the page (its own script must bring it about; we never reload)."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(script):
        assert time.monotonic() < deadline, f"still false: {script}"
        page.wait_for_timeout(200)


def rings(page) -> int:
    return int(page.evaluate("document.body.dataset.rings || '0'"))


def test_an_offer_rings_and_tells_the_handler_to_press_1(hotline, chromium):  # noqa: F811
    anna = add_handler(hotline, HANDLER_A, "Anna")  # on duty, reached on her phone
    _, secret = make_user(hotline.app, "handler", "anna", handler_id=anna)
    base = hotline.settings.public_base_url
    context = chromium.new_context(locale="en-US", viewport={"width": 390, "height": 844})
    page = context.new_page()
    refused = []
    page.on(
        "console", lambda msg: refused.append(msg.text) if "Content Security" in msg.text else None
    )
    console_login(page, base, "anna", PASSWORD, secret)
    page.goto(f"{base}/console/handler")
    title = page.title()
    assert title.startswith("My calls") and page.inner_text("#presence-now") == "available"
    assert page.get_attribute("#presence-available", "aria-pressed") == "true"
    assert page.inner_text("#ring-sound-state").startswith("Ring sound: off.")
    page.click("#ring-sound-on")  # the gesture browsers want before a page may play sound
    wait_until(page, "document.body.dataset.rings === '1'")  # one ring to hear what it is
    assert page.inner_text("#ring-sound-state").startswith("Ring sound: on.")
    assert page.evaluate("localStorage.getItem('hotline.ringSound')") == "on"
    page.evaluate("window.loadedOnce = true")  # gone if the page reloads
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scroll

    call = queued_caller(hotline)
    drain(hotline)  # the dispatch: Anna's phone rings
    phone = hotline.emulator.phone(HANDLER_A)
    leg = phone.wait_for_ring()
    page.wait_for_selector("#offer-banner", timeout=15_000)
    assert page.evaluate("window.loadedOnce === true")
    assert (page.inner_text("#offer-do")
            == "Your phone is ringing: answer it and press 1 to take the call.")  # fmt: skip
    font_px = float(page.evaluate(
        "parseFloat(getComputedStyle(document.querySelector('#offer-do')).fontSize)"
    ))  # fmt: skip
    assert font_px >= 20  # large text
    wait_until(page, "document.title.startsWith('☎ Call offered · My calls')")
    wait_until(page, "document.title === " + repr(title))  # alternating while it rings
    wait_until(page, "parseInt(document.body.dataset.rings, 10) >= 3")  # rings on, every 3 s
    assert rings(page) >= 3
    assert page.get_attribute("#presence-available", "disabled") is not None  # it rings on
    assert page.evaluate("document.documentElement.scrollWidth") <= 390

    leg = phone.answer(leg)  # answered, but 1 is never pressed: the offer ends as missed
    leg.wait_until_finished(max_seconds=120)
    hotline.emulator.settle()
    page.wait_for_selector("#offer-banner", state="detached", timeout=15_000)
    assert page.evaluate("window.loadedOnce === true")
    assert page.title() == title
    rung = rings(page)
    page.wait_for_timeout(3500)  # longer than a ring's period: the ringing has stopped
    assert rings(page) == rung and page.title() == title
    assert page.inner_text("#missed-offer").startswith(
        "You answered but did not press 1: the call went to someone else."
    )
    call.hang_up()
    hotline.emulator.settle()
    assert not refused, refused
    context.close()
