"""The console in a real browser (Debian's chromium through Playwright): sign in with a TOTP
code, filter the call log, open a case, play its recording (decrypted as it streams, range
requests), export the filtered list as CSV. Every step leaves its audit row."""

from __future__ import annotations

import csv

from sqlalchemy import select

from db import db_session
from staff.models import AuditEvent
from tests.e2e.conftest import console_login
from tests.e2e.test_recordings import leave_message
from tests.e2e.test_routing_calls import drain
from tests.staff.support import PASSWORD, make_user


def test_sign_in_filter_open_play_and_export(hotline, chromium, tmp_path):
    call = leave_message(hotline)
    drain(hotline)  # the recording is fetched, encrypted, stored, deleted at the carrier
    user_id, secret = make_user(hotline.app, "supervisor", "olena")
    base = hotline.settings.public_base_url
    context = chromium.new_context(accept_downloads=True, locale="en-US")
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)

    console_login(page, base, "olena", PASSWORD, secret)

    page.goto(f"{base}/console/calls")
    page.select_option("select[name=language]", "ru")
    page.click("#call-filters button[type=submit]")
    page.wait_for_url("**/console/calls?**language=ru**")
    rows = page.locator("#call-log tbody tr")
    assert rows.count() == 1
    assert "+7 ••• ••• 45 67" in rows.first.inner_text()

    rows.first.locator("a").first.click()
    page.wait_for_url("**/console/inquiries/*")
    assert page.locator("#case-recordings audio").count() == 1
    played = page.evaluate(
        """async () => {
            const audio = document.querySelector('#case-recordings audio');
            await audio.play();
            await new Promise(resolve => setTimeout(resolve, 700));
            audio.currentTime = 1.0;  /* a seek: a range request */
            await new Promise(resolve => setTimeout(resolve, 400));
            return {time: audio.currentTime, duration: audio.duration,
                    error: audio.error ? audio.error.code : null};
        }"""
    )
    assert played["error"] is None, played
    assert played["duration"] > 1 and played["time"] >= 1.0, played

    page.goto(f"{base}/console/calls?language=ru")
    with page.expect_download() as download:
        page.click("#export-csv")
    path = tmp_path / "calls.csv"
    download.value.save_as(path)
    with path.open(newline="") as fh:
        exported = list(csv.reader(fh))
    assert exported[0][0] == "interaction" and len(exported) == 2
    assert exported[1][-1] == "'+7 ••• ••• 45 67"  # a text cell to a spreadsheet
    assert not [e for e in errors if "Content Security Policy" in e], errors
    context.close()

    with hotline.app.app_context():
        actions = [a.action for a in db_session().scalars(
            select(AuditEvent).where(AuditEvent.staff_user_id == user_id))]  # fmt: skip
    for action in ("login.success", "calllog.view", "inquiry.view", "recording.play",
                   "calllog.export"):  # fmt: skip
        assert action in actions, (action, actions)
    assert call.ended
