"""The supervisor's live board in chromium: a caller joins the queue through the emulator and
the open page shows them within seconds, with no reload."""

from __future__ import annotations

import time

from tests.e2e.conftest import console_login
from tests.e2e.test_routing_calls import HANDLER_A, add_handler, queued_caller
from tests.staff.support import PASSWORD, make_user


def wait_for_total(page, expected: str, timeout_s: float = 15.0) -> None:
    """Poll what the page shows (the board's own script must change it; we never reload)."""
    deadline = time.monotonic() + timeout_s
    while page.inner_text("#waiting-total").strip() != expected:
        assert time.monotonic() < deadline, (
            f"the board still shows {page.inner_text('#waiting-total')}"
        )
        page.wait_for_timeout(250)


def test_the_board_updates_by_itself_when_a_caller_joins(hotline, chromium):
    add_handler(hotline, HANDLER_A, "Anna")  # on duty, so the caller queues
    _, secret = make_user(hotline.app, "supervisor", "mira")
    base = hotline.settings.public_base_url
    page = chromium.new_context(locale="en-US").new_page()
    console_login(page, base, "mira", PASSWORD, secret)
    page.goto(f"{base}/console/board")
    assert page.inner_text("#waiting-total") == "0"
    page.evaluate("window.loadedOnce = true")  # gone if the page reloads

    call = queued_caller(hotline)  # Russian, a person: queued (the dispatch job is not run)
    wait_for_total(page, "1")
    assert page.evaluate("window.loadedOnce === true")
    assert "ru" in page.inner_text("#waiting") and "Anna" in page.inner_text("#handlers")
    call.hang_up()
    hotline.emulator.settle()
    wait_for_total(page, "0")
