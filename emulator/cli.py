"""Command line: ``python -m emulator`` serves; ``python -m emulator call`` is a terminal phone."""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from typing import TextIO

import requests


class _NumberAction(argparse.Action):
    """``--number`` starts a new number; the webhook options after it configure that number."""

    def __call__(self, parser, namespace, values, option_string=None):
        numbers = getattr(namespace, "numbers", None) or []
        numbers.append({"number": values})
        namespace.numbers = numbers


class _NumberSetting(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        numbers = getattr(namespace, "numbers", None)
        if not numbers:
            parser.error(f"{option_string} must follow a --number")
        numbers[-1][self.dest] = values


def serve_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m emulator",
        description="A local Twilio: REST API, signed webhooks, TwiML, phones and a softphone. "
        "Use 'python -m emulator call --help' for the terminal phone.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=5050, help="port (default 5050; 0 = any)")
    parser.add_argument(
        "--account-sid", default=os.environ.get("EMULATOR_ACCOUNT_SID"), help="AC... (generated)"
    )
    parser.add_argument(
        "--auth-token", default=os.environ.get("EMULATOR_AUTH_TOKEN"), help="(generated)"
    )
    parser.add_argument("--clock", choices=("real", "virtual"), default="real")
    parser.add_argument(
        "--play-seconds", type=float, default=5.0, help="how long a <Play> lasts (default 5)"
    )
    parser.add_argument(
        "--dial-action-on-caller-hangup", choices=("no", "before-status", "after-status"),
        default="no", help="request a <Dial><Conference> action when the caller hangs up in it",
    )  # fmt: skip
    parser.add_argument(
        "--telegram-token", default=os.environ.get("EMULATOR_TELEGRAM_TOKEN"),
        help="the Telegram bot token the Bot API stand-in answers to (generated)",
    )  # fmt: skip
    parser.add_argument("--number", action=_NumberAction, dest="numbers", default=[],
                        help="a phone number of the account (repeatable)")  # fmt: skip
    for flag, dest in (
        ("--voice-url", "voice_url"),
        ("--fallback-url", "voice_fallback_url"),
        ("--status-callback", "status_callback"),
        ("--sms-url", "sms_url"),
        ("--voice-method", "voice_method"),
    ):
        parser.add_argument(flag, action=_NumberSetting, dest=dest, help="for the last --number")
    return parser


def serve(argv: list[str]) -> int:
    from .server import Emulator

    args = serve_parser().parse_args(argv)
    emu = Emulator(
        account_sid=args.account_sid,
        auth_token=args.auth_token,
        clock=args.clock,
        host=args.host,
        port=args.port,
        play_seconds=args.play_seconds,
        dial_action_on_caller_hangup=(
            args.dial_action_on_caller_hangup != "no" and args.dial_action_on_caller_hangup
        ),
        telegram_token=args.telegram_token,
    )
    for spec in args.numbers:
        number = spec.pop("number")
        emu.add_number(number, **spec)
    emu.start()
    print(f"Twilio emulator at {emu.base_url}  (clock: {args.clock})", flush=True)
    print(f"  account SID : {emu.account_sid}", flush=True)
    print(f"  auth token  : {emu.auth_token}", flush=True)
    print("  twilio-python: client = Client(sid, token); client.api.base_url = " + emu.base_url)
    for number in emu.carrier.store.numbers.values():
        print(f"  number {number.phone_number} -> {number.voice_url}", flush=True)
    print(f"  telegram bot token: {emu.telegram_token}", flush=True)
    print(f"  Telegram Bot API base: {emu.base_url}/bot<token>/  (files: /file/bot<token>/)",
          flush=True)  # fmt: skip
    print(f"Softphone: {emu.softphone_url}", flush=True)
    print(f"Terminal phone: python -m emulator call --emulator {emu.base_url} --to NUMBER",
          flush=True)  # fmt: skip
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        emu.stop()
    return 0


def describe(entry: dict) -> str:
    """One heard thing as a terminal line."""
    kind = entry.get("kind")
    if kind == "say":
        return f"[say {entry.get('language', '')} {entry.get('voice', '')}] {entry.get('text', '')}"
    if kind == "play":
        return f"[play] {entry.get('url') or 'digits ' + str(entry.get('digits'))}"
    if kind == "pause":
        return f"[pause {entry.get('seconds', 0):g}s]"
    if kind == "voice":
        return f"[{entry.get('source', 'other party')}] {entry.get('text', '')}"
    if kind == "tone":
        return f"[tone {entry.get('text', '')}]"
    return f"[{kind}]"


class TerminalPhone:
    """A call typed in a shell: prints what is heard, sends keys and speech."""

    def __init__(self, base: str, out: TextIO, poll: float = 0.3) -> None:
        self.base = base.rstrip("/")
        self.out = out
        self.poll = poll
        self.session = requests.Session()
        self.sid = ""
        self.seen = 0
        self.ended = False
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def show(self, state: dict) -> None:
        with self.lock:
            entries = state["heard"]
            start = state["heard_count"] - len(entries)
            for index, entry in enumerate(entries, start):
                if index >= self.seen:
                    print(describe(entry), file=self.out, flush=True)
                    self.seen = index + 1
            if state["ended"] and not self.ended:
                self.ended = True
                print(f"[call ended: {state['status']}]", file=self.out, flush=True)

    def refresh(self) -> None:
        response = self.session.get(
            f"{self.base}/phones/calls/{self.sid}", params={"since": self.seen}
        )
        self.show(response.json())

    def act(self, action: str, **data: object) -> None:
        response = self.session.post(f"{self.base}/phones/calls/{self.sid}/{action}", json=data)
        self.show(response.json())

    def poller(self) -> None:
        while not self.stop.wait(self.poll) and not self.ended:
            try:
                self.refresh()
            except requests.RequestException:
                return

    def run(self, from_: str, to: str, lines: TextIO) -> int:
        response = self.session.post(f"{self.base}/phones/dial", json={"from": from_, "to": to})
        if response.status_code != 201:
            print(f"dial failed: {response.text}", file=self.out)
            return 1
        state = response.json()
        self.sid = state["sid"]
        print(f"[calling {to} from {from_}: {self.sid}]", file=self.out, flush=True)
        self.show(state)
        thread = threading.Thread(target=self.poller, daemon=True)
        thread.start()
        try:
            for raw in lines:
                line = raw.strip()
                if self.ended:
                    break
                if not line:
                    continue
                if line in ("/hangup", "/quit"):
                    self.act("hangup")
                    break
                if line.startswith("/wait"):
                    parts = line.split()
                    self.act("wait", seconds=float(parts[1]) if len(parts) > 1 else 1.0)
                elif all(ch in "0123456789*#" for ch in line):
                    self.act("press", digits=line)
                else:
                    self.act("say", text=line)
            else:
                if not self.ended:
                    self.act("hangup")
        finally:
            self.stop.set()
            thread.join(5)
            self.session.close()
        return 0


def call(argv: list[str], stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m emulator call",
        description="Call a number through a running emulator. Type digits to press keys, any "
        "other text to speak, '/wait N' to let N seconds pass, '/hangup' to end.",
    )
    parser.add_argument("--emulator", default="http://127.0.0.1:5050", help="emulator base URL")
    parser.add_argument("--from", dest="from_", default="+380500000001", help="caller number")
    parser.add_argument("--to", required=True, help="the number to call")
    args = parser.parse_args(argv)
    phone = TerminalPhone(args.emulator, stdout or sys.stdout)
    return phone.run(args.from_, args.to, stdin or sys.stdin)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["call"]:
        return call(argv[1:])
    if argv[:1] == ["serve"]:
        argv = argv[1:]
    return serve(argv)
