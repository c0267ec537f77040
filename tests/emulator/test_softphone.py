"""The browser softphone: a ringing call's Answer button stays put between polls; its default
caller number is nobody's example number."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from .conftest import CALLER, HOTLINE
from .scripted_app import http_get, http_post, twiml

ROOT = Path(__file__).resolve().parents[2]
SOFTPHONE = ROOT / "emulator" / "softphone"
PHONE_NUMBER = re.compile(r"\+[0-9][0-9 ]{9,15}[0-9]")


class _Inputs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, str] = {}

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "input" and attributes.get("id"):
            self.values[attributes["id"]] = attributes.get("value") or ""


def test_the_default_caller_number_is_no_example_number_of_the_docs():
    """Dialling from the softphone with its default caller number must not look like a call
    from a handler or any number the READMEs and docs use as an example (a person trying the
    hotline locally would see "their" handler calling in)."""
    page = _Inputs()
    page.feed((SOFTPHONE / "index.html").read_text(encoding="utf-8"))
    default = page.values["from"]
    assert PHONE_NUMBER.fullmatch(default)
    documents = [ROOT / "README.md", ROOT / "emulator" / "README.md"]
    documents += sorted((ROOT / "docs").rglob("*.md"))
    examples = {
        re.sub(r"\s", "", number)
        for document in documents
        for number in PHONE_NUMBER.findall(document.read_text(encoding="utf-8"))
    }
    assert "+380501234567" in examples  # the README's example handler phone is found
    assert default not in examples


@pytest.mark.browser
def test_the_answer_button_of_a_ringing_call_survives_the_list_refresh(
    emu, twiml_app, hotline, browser
):
    """The ringing list is polled every 700 ms. Rebuilding it replaced the Answer button under
    the pointer, so a click could land on a detached button and the offer was missed. A call
    still ringing keeps the very same element across refreshes, and clicking it answers."""
    twiml_app.route("/voice", twiml('<Dial timeout="600"><Client>alice</Client></Dial>'))
    page = browser.new_page()
    polls = []
    page.on("request", lambda r: polls.append(r.url) if r.url.endswith("/ringing") else None)
    try:
        page.goto(emu.softphone_url)
        page.fill("#handler-address", "client:alice")
        page.click("#watch")
        call = emu.dial(CALLER, HOTLINE)  # rings client:alice (virtual time: until answered)
        assert call.activity == "dial"
        answer = page.wait_for_selector("#ringing li button.answer")
        page.evaluate("button => { window.firstAnswer = button; }", answer)
        seen = len(polls)
        page.wait_for_timeout(1500)
        assert len(polls) >= seen + 2  # the list was refreshed meanwhile
        assert page.evaluate(
            "() => window.firstAnswer.isConnected &&"
            " document.querySelectorAll('#ringing button.answer').length === 1 &&"
            " document.querySelector('#ringing button.answer') === window.firstAnswer"
        )
        answer.click()
        page.wait_for_selector("#handler-status:has-text('in-progress')")
        page.wait_for_function("() => document.querySelectorAll('#ringing li').length === 0")
        page.wait_for_timeout(1000)  # later polls do not bring the answered call back
        assert page.evaluate("() => document.querySelectorAll('#ringing li').length") == 0
    finally:
        page.close()
    emu.settle()
    assert call.activity == "bridged"
    call.hang_up()


def test_the_phones_polling_is_not_logged_but_other_requests_are(emu, twiml_app, hotline, caplog):
    """An open softphone polls a call's state every 500 ms and its handler phone's ringing calls
    every 700 ms; werkzeug logged each as an access line, two thirds of the run command's
    output. Successful polling is not logged; actions, other requests and failed polls are."""
    twiml_app.route("/voice", twiml('<Dial timeout="600"><Client>alice</Client></Dial>'))
    call = emu.dial(CALLER, HOTLINE)
    with caplog.at_level(logging.INFO, logger="werkzeug"):
        for _ in range(3):
            assert http_get(f"{emu.base_url}/phones/client:alice/ringing").status_code == 200
            assert http_get(f"{emu.base_url}/phones/calls/{call.sid}?since=0").status_code == 200
        assert http_get(f"{emu.base_url}/phones/numbers").status_code == 200
        assert http_get(f"{emu.base_url}/phones/calls/CA0?since=0").status_code == 404
        answered = http_post(f"{emu.base_url}/phones/client:alice/ringing")
        assert answered.status_code == 405
    lines = [r.getMessage() for r in caplog.records if r.name == "werkzeug"]
    assert not [line for line in lines if "/ringing HTTP" in line and '" 200 ' in line]
    assert not [line for line in lines if f"/phones/calls/{call.sid}" in line]
    assert len([line for line in lines if "GET /phones/numbers HTTP/1.1" in line]) == 1
    assert len([line for line in lines if "GET /phones/calls/CA0?since=0" in line]) == 1
    assert len([line for line in lines if "POST /phones/client:alice/ringing" in line]) == 1
    call.hang_up()


def test_python_m_emulator_does_not_print_the_polling(tmp_path):
    """The run command shows ``python -m emulator``'s output: a softphone left open must not
    fill it with polling lines."""
    process = subprocess.Popen(
        [sys.executable, "-m", "emulator", "--port", "0", "--account-sid", "AC" + "3" * 32,
         "--auth-token", "secret"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        base = process.stdout.readline().split()[3]
        for _ in range(5):
            assert http_get(f"{base}/phones/client:alice/ringing").json() == []
        assert http_get(f"{base}/phones/numbers").json() == []
    finally:
        process.terminate()
        _, errors = process.communicate(timeout=10)
    assert "GET /phones/numbers HTTP/1.1" in errors  # werkzeug's access log is on
    assert "/ringing" not in errors
