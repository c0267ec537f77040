"""The supervisor's live board in chromium: a caller joins the queue through the emulator and
the open page shows them within seconds, with no reload; the board's break form works from the
browser; the page breaks no rule of the CSP.

Needs Debian's chromium (/usr/bin/chromium): skipped without it unless HOTLINE_REQUIRE_BROWSER=1.
"""

from __future__ import annotations

import time

from tests.e2e.conftest import chromium, console_login, emulator, hotline  # noqa: F401 (fixtures)
from tests.e2e.test_routing_calls import HANDLER_A, add_handler, queued_caller
from tests.staff.support import PASSWORD, make_user


def wait_for_text(page, selector: str, expected: str, timeout_s: float = 15.0) -> None:
    """Poll what the page shows (the board's own script must change it; we never reload)."""
    deadline = time.monotonic() + timeout_s
    while page.inner_text(selector).strip() != expected:
        assert time.monotonic() < deadline, f"{selector} still shows {page.inner_text(selector)!r}"
        page.wait_for_timeout(250)


def test_the_board_updates_by_itself_when_a_caller_joins(hotline, chromium):  # noqa: F811
    anna = add_handler(hotline, HANDLER_A, "Anna")  # on duty, so the caller queues
    _, secret = make_user(hotline.app, "supervisor", "mira")
    base = hotline.settings.public_base_url
    page = chromium.new_context(locale="en-US").new_page()
    refused = []
    page.on(
        "console", lambda msg: refused.append(msg.text) if "Content Security" in msg.text else None
    )
    console_login(page, base, "mira", PASSWORD, secret)
    page.goto(f"{base}/console/board")
    assert page.inner_text("#waiting-total") == "0"
    page.evaluate("window.loadedOnce = true")  # gone if the page reloads

    call = queued_caller(hotline)  # Russian, a person: queued (the dispatch job is not run)
    wait_for_text(page, "#waiting-total", "1")
    assert page.evaluate("window.loadedOnce === true")
    assert "Russian" in page.inner_text("#waiting") and "Anna" in page.inner_text("#handlers")
    call.hang_up()
    hotline.emulator.settle()
    wait_for_text(page, "#waiting-total", "0")

    page.fill(f"#handler-{anna} input[name=reason]", "training")
    page.click(f"#handler-{anna} button[value=break]")
    page.wait_for_url(f"{base}/console/board")
    assert "on a break (training)" in page.inner_text(f"#handler-{anna}")
    assert not refused, refused
