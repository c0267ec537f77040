"""Fixtures for the emulator's tests: an emulator, a tiny TwiML app, twilio-python's Client."""

from __future__ import annotations

import os
import shutil

import pytest
from twilio.rest import Client

from emulator import Emulator

from .scripted_app import TwimlApp

HOTLINE = "+15550001111"
CALLER = "+380501234567"
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
def emu():
    emulator = Emulator(
        account_sid="AC" + "1" * 32, auth_token="test-token-" + "0" * 22, clock="virtual"
    ).start()
    yield emulator
    emulator.stop()


@pytest.fixture
def twiml_app(emu):
    twiml_app = TwimlApp(emu.auth_token).start()
    yield twiml_app
    twiml_app.stop()
    bad = [h for h in twiml_app.hits if not h.valid]
    assert not bad, f"webhooks with a bad signature: {bad}"


@pytest.fixture
def hotline(emu, twiml_app):
    """The hotline number, wired to the test app's /voice, /fallback and /status."""
    twiml_app.route("/status", "")
    emu.add_number(
        HOTLINE,
        voice_url=twiml_app.url("/voice"),
        voice_fallback_url=twiml_app.url("/fallback"),
        status_callback=twiml_app.url("/status"),
        sms_url=twiml_app.url("/sms"),
    )
    return HOTLINE


@pytest.fixture
def twilio_client(emu):
    """twilio-python's own Client, pointed at the emulator."""
    twilio = Client(emu.account_sid, emu.auth_token)
    twilio.api.base_url = emu.base_url
    yield twilio
    session = getattr(twilio.http_client, "session", None)
    if session is not None:
        session.close()


@pytest.fixture
def browser():
    """Chromium through Playwright; skipped when absent unless HOTLINE_REQUIRE_BROWSER=1."""
    if not os.path.exists(CHROMIUM) or shutil.which(CHROMIUM) is None:
        if os.environ.get("HOTLINE_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{CHROMIUM} is missing and HOTLINE_REQUIRE_BROWSER=1")
        pytest.skip(f"{CHROMIUM} is not installed (set HOTLINE_REQUIRE_BROWSER=1 to fail instead)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        try:
            yield chromium
        finally:
            chromium.close()
