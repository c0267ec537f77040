"""The phones' HTTP API, the softphone in Chromium, the terminal phone, ``python -m emulator``."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from emulator.cli import call as terminal_call

from .conftest import CALLER, HOTLINE
from .scripted_app import http_get, http_post, twiml

ROOT = Path(__file__).resolve().parents[2]
MENU = twiml('<Gather numDigits="1" action="/menu"><Say language="ru-RU">Нажмите 1</Say></Gather>')


def test_phones_http_api(emu, twiml_app, hotline):
    twiml_app.route("/voice", MENU)
    twiml_app.route(
        "/menu",
        lambda f: twiml(f"<Say>Choice {f['Digits']}</Say>", "<Dial><Client>bob</Client></Dial>"),
    )
    base = emu.base_url
    assert http_get(base + "/phones/numbers").json()[0]["phone_number"] == HOTLINE
    state = http_post(base + "/phones/dial", json={"from": CALLER, "to": HOTLINE}).json()
    assert state["activity"] == "gather"
    assert state["heard"][0] == {
        "kind": "say", "text": "Нажмите 1", "language": "ru-RU", "voice": "man",
        "seconds": state["heard"][0]["seconds"], "loop": 1, "at": 0.0,
    }  # fmt: skip
    sid = state["sid"]
    state = http_post(f"{base}/phones/calls/{sid}/press", json={"digits": "1"}).json()
    assert [h["text"] for h in state["heard"] if h["kind"] == "say"][-1] == "Choice 1"
    ringing = http_get(base + "/phones/client:bob/ringing").json()
    assert [r["from"] for r in ringing] == [CALLER]
    answered = http_post(f"{base}/phones/calls/{ringing[0]['sid']}/answer").json()
    assert answered["activity"] == "bridged"
    http_post(f"{base}/phones/calls/{sid}/say", json={"text": "hello bob"})
    bob = http_get(f"{base}/phones/calls/{ringing[0]['sid']}?since=0").json()
    assert bob["heard"][-1]["kind"] == "voice" and bob["heard"][-1]["text"] == "hello bob"
    ended = http_post(f"{base}/phones/calls/{sid}/hangup").json()
    assert ended["ended"] and ended["status"] == "completed"
    assert http_get(base + "/phones/calls/CA0").status_code == 404


def test_terminal_phone(emu, twiml_app, hotline):
    twiml_app.route("/voice", MENU)
    twiml_app.route("/menu", twiml('<Say>Tell us</Say><Gather input="speech" action="/s"/>'))
    twiml_app.route("/s", lambda f: twiml(f"<Say>You said {f['SpeechResult']}</Say>"))
    out = io.StringIO()
    lines = io.StringIO("1\nI need help\n/wait 1\n/hangup\n")
    code = terminal_call(
        ["--emulator", emu.base_url, "--from", CALLER, "--to", HOTLINE], lines, out
    )
    assert code == 0
    text = out.getvalue()
    assert "[say ru-RU man] Нажмите 1" in text
    assert "[say en-US man] Tell us" in text
    assert "You said I need help" in text
    assert "[call ended: completed]" in text


TELEGRAM_TOKEN = "123456:AA" + "b" * 33


def test_python_m_emulator_serves(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-m", "emulator", "--port", "0", "--account-sid", "AC" + "2" * 32,
         "--auth-token", "secret", "--number", HOTLINE, "--voice-url", "http://127.0.0.1:9/v",
         "--fallback-url", "http://127.0.0.1:9/f", "--status-callback", "http://127.0.0.1:9/s",
         "--telegram-token", TELEGRAM_TOKEN],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        lines = []
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if line.startswith("Softphone:"):
                break
        banner = "".join(lines)
        base = lines[0].split()[3]
        assert f"{HOTLINE} -> http://127.0.0.1:9/v" in banner
        assert http_get(lines[-1].split()[1]).status_code == 200
        numbers = http_get(
            f"{base}/2010-04-01/Accounts/{'AC' + '2' * 32}/IncomingPhoneNumbers.json",
            auth=("AC" + "2" * 32, "secret"),
        ).json()["incoming_phone_numbers"]
        assert numbers[0]["voice_fallback_url"] == "http://127.0.0.1:9/f"
        assert numbers[0]["status_callback"] == "http://127.0.0.1:9/s"
        assert f"telegram bot token: {TELEGRAM_TOKEN}" in banner
        me = http_get(f"{base}/bot{TELEGRAM_TOKEN}/getMe").json()
        assert me["ok"] is True and me["result"]["id"] == 123456
    finally:
        process.terminate()
        process.wait(10)
        if process.stdout is not None:
            process.stdout.close()


@pytest.mark.browser
def test_softphone_in_chromium(emu, twiml_app, hotline, browser):
    twiml_app.route("/voice", MENU)
    twiml_app.route(
        "/menu", lambda f: twiml(f"<Say>Вы выбрали {f['Digits']}</Say>", '<Gather timeout="60"/>')
    )
    page = browser.new_page()
    try:
        page.goto(emu.softphone_url)
        page.wait_for_selector(f"#to option[value='{HOTLINE}']", state="attached")
        page.fill("#from", CALLER)
        page.click("#dial")
        page.wait_for_selector("#caller-log li:has-text('Нажмите 1')")
        page.click("#keypad button[data-key='1']")
        page.wait_for_selector("#caller-log li:has-text('Вы выбрали 1')")
        assert "in-progress" in page.inner_text("#caller-status")
        page.click("#hangup")
        page.wait_for_selector("#caller-status:has-text('completed')")
    finally:
        page.close()
    assert twiml_app.forms("/menu")[0]["Digits"] == "1"
