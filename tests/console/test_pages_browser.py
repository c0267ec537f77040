"""Every console page, for every role, in Ukrainian and English, in chromium: the page speaks
words, not the codes the hotline stores.

The data is made the real way (issue 17): calls through the emulator (a message left, a call
offered to one handler who did not answer and taken by another who pressed 1 and talked, a
caller who hung up while waiting, the safety question answered), a note, an outcome, a played
recording, a break and a blocklist entry through the console's own forms. Then each role signs
in and opens each page it may see, once at a desktop's width and once at a phone's (390×844),
taking a full-page screenshot of each (``HOTLINE_SCREENSHOT_DIR``, else pytest's tmp dir;
``role-lang-page.png`` and ``role-lang-page-phone.png``).

Each page's visible text (``inner_text``: a closed ``<details>`` hides the raw events, which is
allowed) is searched for the raw codes: call statuses with a hyphen, codes with an underscore
(topics, outcomes, presences, reasons, recording states), the events the calls wrote, the audit
actions the visits wrote, ``key=value``, ``None``, ISO timestamps, a language code alone in a
cell, handlers by id; a Ukrainian page also for English labels. At a phone's width the page
must not scroll sideways (a wide table scrolls inside its own wrapper). Every finding of every
page is reported at once.

Needs Debian's chromium (/usr/bin/chromium): skipped without it unless HOTLINE_REQUIRE_BROWSER=1.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from flask_babel import force_locale
from sqlalchemy import select

from console import labels
from console.i18n import compile_catalogs
from db import db_session
from inquiries.models import CALL_STATUS_RANK, INQUIRY_KINDS, QUEUE_EVENTS, CallEvent, Interaction
from routing.models import QueueEntry
from staff.models import ROLES, AuditEvent, StaffUser
from tests.e2e.conftest import chromium, console_login, emulator, hotline  # noqa: F401 (fixtures)
from tests.e2e.test_recordings import leave_message
from tests.e2e.test_routing_calls import HANDLER_A, HANDLER_B, add_handler, drain
from tests.staff.support import PASSWORD, make_user

LANGS = ("uk", "en")
PHONE = {"width": 390, "height": 844}
SAFE_CALLER = "+79031112233"
GONE_CALLER = "+79035556677"
BLOCKED = "+79037778899"


@dataclass
class Story:
    """What the calls left behind: the ids the pages are opened with."""

    taken_case: int = 0  # connected to a handler who pressed 1 (safety question answered)
    message_case: int = 0  # a message left in the message box
    gone_case: int = 0  # hung up while waiting
    taker: int = 0  # the handler who took the call
    other: int = 0  # the handler who did not answer
    events: set[str] = field(default_factory=set)


def case_of(line, sid: str) -> int:
    with line.app.app_context():
        row = db_session().scalar(select(Interaction).where(Interaction.provider_sid == sid))
        assert row is not None
        return row.inquiry_id


def make_calls(line) -> Story:
    story = Story()
    # Nobody on duty: a message in the message box, its recording stored.
    message = leave_message(line)
    drain(line)
    story.message_case = case_of(line, message.sid)

    anna = add_handler(line, HANDLER_A, "Olena", position=1)
    boris = add_handler(line, HANDLER_B, "Petro", position=2)
    # Russian, surrender, "safe to talk": queued; the first phone is not answered, the second
    # answers, presses 1 and talks; the caller hangs up.
    call = line.dial(SAFE_CALLER)
    for key in ("1", "1", "1"):
        call.press(key)
    assert call.activity == "queue"
    call.wait(6)
    drain(line)
    phones = {anna: line.emulator.phone(HANDLER_A), boris: line.emulator.phone(HANDLER_B)}
    ringing = [hid for hid, phone in phones.items() if phone.ringing()]
    assert len(ringing) == 1
    story.other = ringing[0]
    story.taker = boris if story.other == anna else anna
    line.emulator.wait(25)  # not answered
    line.emulator.settle()
    drain(line)
    leg = phones[story.taker].answer(phones[story.taker].wait_for_ring(max_seconds=5))
    leg.press("1")
    line.emulator.settle()
    assert call.activity == "conference"
    leg.say("Здравствуйте, я вас слушаю", language="ru-RU")
    call.say("Я хочу сдаться", language="ru-RU")
    call.wait(20)
    call.hang_up()
    line.emulator.settle()
    drain(line)  # the wrap-up ends, the conversation's recording is stored
    story.taken_case = case_of(line, call.sid)
    with line.app.app_context():
        entry = db_session().scalar(
            select(QueueEntry).join(Interaction, Interaction.id == QueueEntry.interaction_id)
            .where(Interaction.provider_sid == call.sid)
        )  # fmt: skip
        assert entry is not None and entry.handler_id == story.taker

    # A caller who hung up while waiting (the dispatch job not yet run).
    gone = line.dial(GONE_CALLER)
    gone.press("1")  # Russian
    gone.press("0")  # a person
    assert gone.activity == "queue"
    gone.wait(8)
    gone.hang_up()
    line.emulator.settle()
    drain(line)
    story.gone_case = case_of(line, gone.sid)

    with line.app.app_context():
        story.events = set(db_session().scalars(select(CallEvent.event).distinct()))
    return story


def supervisor_work(page, base: str, story: Story) -> None:
    """What a supervisor does through the console's forms: a note and an outcome on the case,
    the message played, a handler put on a break, a number blocked."""
    page.goto(f"{base}/console/inquiries/{story.taken_case}")
    page.fill("#note-form textarea[name=text]", "Просить перезвонить вечером, безопасно.")
    page.click("#note-form button[type=submit]")
    page.wait_for_url(f"**/console/inquiries/{story.taken_case}")
    page.select_option("#outcome-form select[name=outcome]", "callback_arranged")
    page.click("#outcome-form button[type=submit]")
    page.wait_for_url(f"**/console/inquiries/{story.taken_case}")

    page.goto(f"{base}/console/inquiries/{story.message_case}")
    audio = page.locator("audio source, audio").first.get_attribute("src")
    if audio is None:
        audio = page.locator("audio source").first.get_attribute("src")
    assert audio, "the message case has no player"
    assert page.request.get(f"{base}{audio}" if audio.startswith("/") else audio).ok

    page.goto(f"{base}/console/board")
    page.fill(f"#handler-{story.other} input[name=reason]", "навчання")
    page.click(f"#handler-{story.other} button[value=break]")
    page.wait_for_url(f"{base}/console/board")

    page.goto(f"{base}/console/blocklist")
    page.fill("#number", BLOCKED)
    page.fill("#reason", "погрози")
    page.select_option("#hours", index=0)
    page.click("#number >> xpath=ancestor::form//button[@type='submit']")
    page.wait_for_url(f"{base}/console/blocklist")


def pages_for(role: str, story: Story) -> list[tuple[str, str]]:
    """(name, path) of every page the role may see."""
    found = [("home", "/console/")]
    if role == "handler":
        found.append(("handler", "/console/handler"))
    if role in ("supervisor", "admin"):
        found.append(("board", "/console/board"))
    found.append(("calls", "/console/calls?language=ru"))
    found.append(("case", f"/console/inquiries/{story.taken_case}"))
    if role != "handler":
        found.append(("case-message", f"/console/inquiries/{story.message_case}"))
        found.append(("case-gone", f"/console/inquiries/{story.gone_case}"))
        found.append(("dashboard", "/console/dashboard"))
    if role == "auditor":
        found.append(("audit", "/console/audit"))
    if role in ("supervisor", "admin"):
        found.append(("blocklist", "/console/blocklist"))
    if role == "admin":
        found += [
            ("users", "/console/admin/users"),
            ("user-new", "/console/admin/users/new"),
            ("retention", "/console/admin/retention"),
        ]
    found.append(("password", "/console/account/password"))
    return found


# -- what must not be shown ------------------------------------------------------------------


def token(code: str, flags: int = 0) -> re.Pattern[str]:
    """``code`` as a whole token (not inside a word, a hyphenated word or a dotted name)."""
    return re.compile(rf"(?<![\w\-.]){re.escape(code)}(?![\w\-]|\.\w)", flags)


PATTERNS = {
    "None": re.compile(r"\bNone\b"),
    "ISO date-time": re.compile(r"\d{4}-\d\d-\d\dT\d|\d\d:\d\d:\d\d\.\d+|[+-]00:00\b"),
    "key=value": re.compile(r"\b[A-Za-z_]+=\S"),
    "key: None": re.compile(r"\b[a-z_]+: (None|null)\b"),
    "handler by id": re.compile(r"(?i)\bhandler(?: id)?[ #]*\d+\b|\bHandler id\b|handler_id"),
    "(UTC)": re.compile(r"\(UTC\)"),
}


def raw_codes(app, story: Story, outcomes: tuple[str, ...]) -> dict[str, re.Pattern[str]]:
    """Codes built from the code: every stored code with a hyphen or an underscore, the
    channel/direction pairs, the events the calls wrote, the audit actions written."""
    codes: set[str] = set(CALL_STATUS_RANK) | set(INQUIRY_KINDS)
    for names in (labels.PRESENCE_NAMES, labels.OUTCOME_NAMES, labels.RECORDING_STATE_NAMES,
                  labels.REASON_NAMES, labels.CASE_STATUS_NAMES):  # fmt: skip
        codes |= set(names)
    codes |= set(outcomes)
    found = {c: token(c) for c in sorted(codes) if "_" in c or "-" in c}
    for channel, direction in labels.CALL_CHANNEL_NAMES:
        found[f"{channel} {direction}"] = token(f"{channel} {direction}")
    found["inbound"] = token("inbound")
    found["outbound"] = token("outbound")
    for event in set(QUEUE_EVENTS) | story.events:
        found[event] = token(event)
    with app.app_context():
        actions = set(db_session().scalars(select(AuditEvent.action).distinct()))
    for action in actions:
        found[action] = token(action)
    return found


def english_labels(app) -> dict[str, re.Pattern[str]]:
    """The English names of the labels that Ukrainian says differently, and a few words of the
    pages: none belongs on a Ukrainian page."""
    uk = compile_catalogs()["uk"]
    words: set[str] = {"available", "offline", "missed offers", "Handler", "Waiting", "Caller"}
    with app.test_request_context("/"), force_locale("en"):
        for names in (labels.PRESENCE_NAMES, labels.KIND_NAMES, labels.CALLER_LANGUAGE_NAMES,
                      labels.OUTCOME_NAMES, labels.CALL_STATUS_NAMES, labels.CASE_STATUS_NAMES,
                      labels.CALL_CHANNEL_NAMES, labels.RECORDING_KIND_NAMES,
                      labels.RECORDING_STATE_NAMES, labels.REASON_NAMES):  # fmt: skip
            for name in names.values():
                english = str(name)
                if uk.ugettext(english) != english and len(english) > 3:
                    words.add(english)
    return {w: token(w) for w in sorted(words)}


LANGUAGE_CELLS = """() => Array.from(document.querySelectorAll('td, th, dd, li'))
    .filter(e => e.offsetParent !== null)
    .map(e => e.innerText.trim()).filter(t => ['ru', 'uk', 'en'].includes(t))"""
SIDEWAYS = "() => [document.documentElement.scrollWidth, window.innerWidth]"


def findings_of(page, lang: str, codes, english) -> list[str]:
    text = page.inner_text("body")
    found = []
    for name, pattern in {**PATTERNS, **codes}.items():
        hit = pattern.search(text)
        if hit:
            start = max(0, hit.start() - 30)
            found.append(f"{name}: …{text[start : hit.end() + 30]!r}…".replace("\\n", " / "))
    for cell in page.evaluate(LANGUAGE_CELLS):
        found.append(f"a language code alone in a cell: {cell!r}")
    if lang == "uk":
        for name, pattern in english.items():
            if pattern.search(text):
                found.append(f"English on a Ukrainian page: {name!r}")
    return found


def sideways(page) -> str | None:
    width, inner = page.evaluate(SIDEWAYS)
    return f"scrolls sideways at 390 px ({width} px wide)" if width > inner + 1 else None


def shot(page, where: Path, name: str) -> None:
    page.screenshot(path=str(where / f"{name}.png"), full_page=True)


#: People's names for the accounts (make_user names them after their role, in English).
STAFF_NAMES = {"handler": "Olena", "supervisor": "Mira", "auditor": "Iryna", "admin": "Taras"}


def set_account(app, user_id: int, lang: str, name: str) -> None:
    with app.app_context():
        db = db_session()
        user = db.get(StaffUser, user_id)
        assert user is not None
        user.language = lang
        user.display_name = name
        db.commit()


def test_every_page_speaks_words_in_both_languages(hotline, chromium, tmp_path):  # noqa: F811
    story = make_calls(hotline)
    app, base = hotline.app, hotline.settings.public_base_url
    where = Path(os.environ.get("HOTLINE_SCREENSHOT_DIR") or tmp_path)
    where.mkdir(parents=True, exist_ok=True)
    accounts = {
        role: make_user(
            app, role, f"{role}-one", handler_id=story.taker if role == "handler" else None
        )
        for role in ROLES
    }
    for role, (user_id, _secret) in accounts.items():
        set_account(app, user_id, "en", STAFF_NAMES[role])
    findings: dict[str, list[str]] = {}
    refused: list[str] = []

    # The sign-in pages (the password, then the code), by the browser's language.
    for lang in LANGS:
        context = chromium.new_context(locale="uk-UA" if lang == "uk" else "en-US")
        page = context.new_page()
        page.goto(f"{base}/console/login")
        for name in ("login", "code"):
            if name == "code":
                page.set_viewport_size({"width": 1280, "height": 900})
                page.fill("#username", "supervisor-one")
                page.fill("#password", PASSWORD)
                page.click("button[type=submit]")
                page.wait_for_url("**/console/login/totp")
            english = english_labels(app) if lang == "uk" else {}
            shot(page, where, f"anon-{lang}-{name}")
            problems = findings_of(page, lang, {}, english)
            page.set_viewport_size(PHONE)
            shot(page, where, f"anon-{lang}-{name}-phone")
            if wide := sideways(page):
                problems.append(wide)
            if problems:
                findings[f"anon {lang} {name}"] = problems
        context.close()

    # The supervisor works first (a note, an outcome, a recording played…), the auditor last:
    # the audit log then has the others' visits.
    order = ("supervisor", "admin", "handler", "auditor")
    for role in order:
        user_id, secret = accounts[role]
        context = chromium.new_context(locale="en-US", viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.on(
            "console", lambda m: refused.append(m.text) if "Content Security" in m.text else None
        )
        console_login(page, base, f"{role}-one", PASSWORD, secret)
        if role == "supervisor":
            supervisor_work(page, base, story)
        phone = chromium.new_context(viewport=PHONE, storage_state=context.storage_state())
        small = phone.new_page()
        for lang in LANGS:
            set_account(app, user_id, lang, STAFF_NAMES[role])
            codes = raw_codes(app, story, hotline.settings.case_outcomes)
            english = english_labels(app) if lang == "uk" else {}
            for name, path in [*pages_for(role, story), ("not-found", "/console/inquiries/9999")]:
                key = f"{role} {lang} {name}"
                response = page.goto(f"{base}{path}")
                expected = 404 if name == "not-found" else 200
                assert response is not None and response.status == expected, (key, response)
                shot(page, where, f"{role}-{lang}-{name}")
                problems = findings_of(page, lang, codes, english)
                small.goto(f"{base}{path}")
                shot(small, where, f"{role}-{lang}-{name}-phone")
                if wide := sideways(small):
                    problems.append(wide)
                if problems:
                    findings[key] = problems
        phone.close()
        context.close()

    report = "\n".join(
        f"{page}:\n" + "\n".join(f"    {p}" for p in problems)
        for page, problems in findings.items()
    )
    assert not findings, f"raw codes on {len(findings)} pages (screenshots in {where}):\n{report}"
    assert not refused, refused
