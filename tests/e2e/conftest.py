"""End to end: the app served over real HTTP, the emulator as its carrier, phones as callers."""

from __future__ import annotations

import os
import shutil
import traceback
from dataclasses import dataclass
from pathlib import Path

import pyotp
import pytest
from flask import Flask, g, has_app_context

from app import create_app
from emulator import Emulator
from services import services
from settings import Settings
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, HOTLINE_NUMBER
from tests.e2e.live import LiveServer, free_port
from tests.support import handles

ROOT = Path(__file__).resolve().parents[2]


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
    rest_in_transaction = watch_rest_calls(live_app)
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
    assert not rest_in_transaction, (
        "a REST call to the carrier inside a database transaction:\n"
        + ("\n".join(rest_in_transaction[:3]))
    )


def watch_rest_calls(app: Flask) -> list[str]:
    """Where the app called the carrier's REST API with a database transaction open: on
    SQLite every transaction holds the write lock, and no webhook or job should wait for the
    carrier with it. The app's own frames of each such call."""
    found: list[str] = []
    with app.app_context():
        client = services().twilio.http_client
    send = client.request

    def request(*args, **kwargs):
        if has_app_context():
            session = g.get("db_session")
            if session is not None and session.in_transaction():
                frames = [
                    line for line in traceback.format_stack(limit=30)
                    if str(ROOT) in line and ".venv" not in line and "conftest" not in line
                ]  # fmt: skip
                found.append("".join(frames))
        return send(*args, **kwargs)

    client.request = request
    return found


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
