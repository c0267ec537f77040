"""End to end: the app served over real HTTP, the emulator as its carrier, phones as callers."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

import pyotp
import pytest
from flask import Flask

from app import create_app
from emulator import Emulator
from settings import Settings
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, HOTLINE_NUMBER
from tests.e2e.live import LiveServer, free_port
from tests.support import handles


@dataclass
class Hotline:
    """The app, the server it runs in, and the emulated carrier pointed at it."""

    app: Flask
    server: LiveServer
    emulator: Emulator
    settings: Settings
    number: str = HOTLINE_NUMBER

    def dial(self, from_: str = "+79161234567", **kwargs):
        return self.emulator.dial(from_, self.number, **kwargs)


@pytest.fixture
def emulator():
    emu = Emulator(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, clock="virtual").start()
    yield emu
    emu.stop()


@pytest.fixture
def hotline(app, settings, emulator) -> Hotline:
    """``app`` (clean DB and Redis) rebuilt with its public URL on a live loopback port."""
    port = free_port()
    live_settings = settings.replace(
        public_base_url=f"http://127.0.0.1:{port}", twilio_api_base_url=emulator.base_url
    )
    live_app = create_app(live_settings)
    server = LiveServer(live_app, port=port).start()
    base = live_settings.public_base_url
    emulator.add_number(
        HOTLINE_NUMBER,
        voice_url=f"{base}/voice/incoming",
        voice_fallback_url=f"{base}/voice/fallback",
        status_callback=f"{base}/voice/status",
    )
    yield Hotline(live_app, server, emulator, live_settings)
    server.stop()
    handles(live_app).dispose()


CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
def chromium():
    if not os.path.exists(CHROMIUM) or shutil.which(CHROMIUM) is None:
        if os.environ.get("HOTLINE_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{CHROMIUM} is missing and HOTLINE_REQUIRE_BROWSER=1")
        pytest.skip(f"{CHROMIUM} is not installed (set HOTLINE_REQUIRE_BROWSER=1 to fail instead)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync",
                  "--autoplay-policy=no-user-gesture-required"],
        )  # fmt: skip
        try:
            yield browser
        finally:
            browser.close()


def console_login(page, base: str, username: str, password: str, secret: str) -> None:
    """Sign in through the console's real pages: the password, then a TOTP code."""
    page.goto(f"{base}/console/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.fill("#code", pyotp.TOTP(secret).now())
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/console/")
