"""The browser softphone: a ringing call's Answer button stays put between polls; its default
caller number is nobody's example number."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from .conftest import CALLER, HOTLINE
from .scripted_app import twiml

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
