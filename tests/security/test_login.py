"""Attacks on the staff login, sent to the Procfile's gunicorn over a real socket.

The console's second factor is what stands between a phished or leaked password and the
callers' cases. These attacks come from someone who holds ``SECRET_KEY`` (it signs Flask's
session cookie), someone who holds an initial or reset password, two requests racing with one
code, and a guesser who rotates through the addresses of one IPv6 /64, or who sends logins
faster than the CPU can hash them.
"""

from __future__ import annotations

import contextlib
import http.client
import re
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode

import pyotp
from sqlalchemy import select

from db import db_session
from services import services
from staff import totp
from staff.accounts import create_user
from staff.models import AuditEvent, StaffSession, StaffUser
from staff.ratelimit import PAIR, HashingGate
from tests.security.conftest import Answer, Served
from tests.staff.support import PASSWORD, make_user
from tests.support import handles

CSRF = re.compile(rb'name="csrf_token" value="([^"]+)"')
SECRET = re.compile(rb'<code class="secret">([A-Z2-7]{16,})</code>')
STAFF_COOKIE = "hotline_staff"
NEW_PASSWORD = "amber-orchard-compass-97"


@dataclass
class Browser:
    """A browser's cookie jar and CSRF token over plain ``http.client`` (every Set-Cookie of a
    response is kept; nothing is followed automatically)."""

    web: Served
    forwarded_for: str | None = None
    cookies: dict[str, str] = field(default_factory=dict)
    csrf: str | None = None

    def send(
        self,
        method: str,
        path: str,
        form: dict[str, str] | None = None,
        *,
        barrier: threading.Barrier | None = None,
    ) -> Answer:
        connection = http.client.HTTPConnection("127.0.0.1", self.web.port, timeout=60)
        try:
            headers = {"Accept-Language": "en"}
            if self.cookies:
                headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
            if self.forwarded_for:
                headers["X-Forwarded-For"] = self.forwarded_for
            body = None
            if form is not None:
                body = urlencode(form).encode()
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            connection.connect()
            if barrier is not None:
                barrier.wait(timeout=30)
            connection.request(method, path, body, headers)
            response = connection.getresponse()
            data = response.read()
            for header in response.msg.get_all("Set-Cookie") or []:
                pair = header.split(";", 1)[0]
                name, _, value = pair.partition("=")
                if "max-age=0" in header.lower() or "expires=thu, 01 jan 1970" in header.lower():
                    self.cookies.pop(name.strip(), None)
                else:
                    self.cookies[name.strip()] = value.strip().strip('"')
            found = CSRF.search(data)
            if found:
                self.csrf = found.group(1).decode()
            return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, data)
        finally:
            connection.close()

    def get(self, path: str) -> Answer:
        return self.send("GET", path)

    def post(self, path: str, form: dict[str, str], **kwargs) -> Answer:
        if self.csrf is None:
            self.get("/console/login")
        return self.send("POST", path, {**form, "csrf_token": self.csrf or ""}, **kwargs)

    def password(self, username: str, password: str) -> Answer:
        return self.post("/console/login", {"username": username, "password": password})

    def signed_in(self) -> bool:
        return self.get("/console/").status == 200


def location(answer: Answer) -> str:
    return answer.headers.get("location", "")


def audit_actions(app) -> list[str]:
    with app.app_context():
        return list(db_session().scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


def live_sessions(app, user_id: int) -> int:
    with app.app_context():
        rows = db_session().scalars(
            select(StaffSession).where(
                StaffSession.staff_user_id == user_id, StaffSession.ended_at.is_(None)
            )
        )
        return len(rows.all())


def race(browsers: list[Browser], path: str, form: dict[str, str]) -> list[Answer]:
    """Each browser posts ``form`` to ``path`` at the same moment (connections open first)."""
    barrier = threading.Barrier(len(browsers))
    answers: dict[int, Answer] = {}

    def send(index: int) -> None:
        answers[index] = browsers[index].post(path, form, barrier=barrier)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(len(browsers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(answers) == len(browsers), "a request did not come back"
    return [answers[n] for n in range(len(browsers))]


def forged_session_cookie(app, data: dict) -> str:
    """What an attacker holding SECRET_KEY can make: any Flask session, validly signed."""
    return app.session_interface.get_signing_serializer(app).dumps(data)


def test_a_cookie_forged_with_secret_key_neither_shows_a_totp_secret_nor_skips_the_password(
    app, served
) -> None:
    """The attack: with SECRET_KEY, sign a Flask session that says "this browser passed the
    password step of Olena's account", then open the enrolment page to read her TOTP secret,
    or send a code to the code page to sign in without her password. We promise: the signed
    session holds only a CSRF token; the login's progress is on the server under a random
    token; a forged session reaches no step, shows no secret and opens no session."""
    web = served("web")
    user_id, secret = make_user(app, "supervisor", "olena")
    attacker = Browser(web)
    attacker.get("/console/login")
    csrf = attacker.csrf or ""
    for stage in ("enrol", "totp"):
        forged = {
            "_csrf": csrf,
            "login": {"uid": user_id, "stage": stage, "since": time.time(), "next": None},
            "uid": user_id,
            "stage": stage,
        }
        attacker.cookies[app.config["SESSION_COOKIE_NAME"]] = forged_session_cookie(app, forged)
        attacker.cookies["hotline_login"] = "forged-" + str(user_id)
        page = attacker.get("/console/login/enrol")
        assert page.status == 302 and location(page).endswith("/console/login")
        assert secret.encode() not in page.body
        code_page = attacker.post("/console/login/totp", {"code": pyotp.TOTP(secret).now()})
        assert code_page.status == 302 and location(code_page).endswith("/console/login")
        assert STAFF_COOKIE not in attacker.cookies
        assert not attacker.signed_in()
    assert live_sessions(app, user_id) == 0
    assert "login.success" not in audit_actions(app)
    with app.app_context():  # the code was not even looked at: Olena's next code still works
        assert db_session().get(StaffUser, user_id).totp_last_step is None


def test_an_initial_password_opens_nothing_but_the_password_change(app, served) -> None:
    """The attack: whoever created the account, or read the terminal, or the reset message,
    holds its first password, and signs in before its owner to copy the TOTP secret (or the
    session). We promise: no TOTP secret exists before the owner's login makes one; that
    password leads only to the page that replaces it (the enrolment page, the code page and
    the console stay shut), and once replaced it opens nothing."""
    web = served("web")
    with app.app_context():
        db = db_session()
        enrolment = create_user(
            db, services().protector, username="mykola", display_name="Mykola", role="handler",
            password=None, language="en",
        )  # fmt: skip
        db.commit()
        initial = enrolment.password
        assert initial is not None
        assert db.get(StaffUser, enrolment.user_id).totp_ciphertext is None
    insider = Browser(web)
    first = insider.password("mykola", initial)
    assert first.status == 302 and location(first).endswith("/console/login/password")
    for path in ("/console/login/enrol", "/console/login/totp", "/console/"):
        answer = insider.get(path)
        assert answer.status == 302 and "/console/login" in location(answer), path
        assert not SECRET.search(answer.body)
    same = insider.post(
        "/console/login/password", {"new_password": initial, "new_password2": initial}
    )
    assert same.status == 400
    # The owner chooses a password; the enrolment key appears only now, in her login.
    owner = Browser(web)
    assert location(owner.password("mykola", initial)).endswith("/console/login/password")
    changed = owner.post(
        "/console/login/password", {"new_password": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    )
    assert changed.status == 302 and location(changed).endswith("/console/login/enrol")
    key = SECRET.search(owner.get("/console/login/enrol").body)
    assert key is not None
    done = owner.post("/console/login/enrol", {"code": pyotp.TOTP(key.group(1).decode()).now()})
    assert done.status == 302 and location(done).endswith("/console/")
    assert owner.signed_in()
    # The insider's half-finished login died with the old password; the old password is dead.
    late = insider.post(
        "/console/login/password", {"new_password": "x" + NEW_PASSWORD, "new_password2": "x"
                                    + NEW_PASSWORD},
    )  # fmt: skip
    assert late.status == 302 and location(late).endswith("/console/login")
    assert Browser(web).password("mykola", initial).status == 401
    with app.app_context():
        user = db_session().get(StaffUser, enrolment.user_id)
        assert not user.must_change_password and user.totp_enabled


def test_the_enrolment_page_is_refused_for_an_enrolled_account(app, served) -> None:
    """The attack: with an enrolled account's password (phished), open the enrolment page to
    be handed a TOTP secret of one's own, or to replace the owner's. We promise: an enrolled
    account's login goes to the code page only; a login that reached the enrolment while the
    account was not enrolled is refused once it is (409, no key shown, nothing replaced)."""
    web = served("web")
    user_id, secret = make_user(app, "supervisor", "olena")
    phisher = Browser(web)
    assert location(phisher.password("olena", PASSWORD)).endswith("/console/login/totp")
    page = phisher.get("/console/login/enrol")
    assert page.status == 302 and not SECRET.search(page.body)
    confirm = phisher.post("/console/login/enrol", {"code": "123456"})
    assert confirm.status == 302 and location(confirm).endswith("/console/login")
    with app.app_context():
        user = db_session().get(StaffUser, user_id)
        assert totp.open_secret(handles(app).protector, user) == secret

    # An account not enrolled yet: two logins reach the enrolment; the owner confirms first.
    new_id, _ = make_user(app, "handler", "mykola", enrolled=False)
    owner, other = Browser(web), Browser(web)
    for browser in (owner, other):
        assert location(browser.password("mykola", PASSWORD)).endswith("/console/login/enrol")
    theirs = SECRET.search(other.get("/console/login/enrol").body)
    mine = SECRET.search(owner.get("/console/login/enrol").body)
    assert mine and theirs and mine.group(1) != theirs.group(1)
    done = owner.post("/console/login/enrol", {"code": pyotp.TOTP(mine.group(1).decode()).now()})
    assert done.status == 302 and location(done).endswith("/console/")
    refused = other.get("/console/login/enrol")
    assert refused.status == 409 and not SECRET.search(refused.body)
    late = other.post("/console/login/enrol", {"code": pyotp.TOTP(theirs.group(1).decode()).now()})
    assert late.status == 409 and not other.signed_in()
    with app.app_context():
        user = db_session().get(StaffUser, new_id)
        assert totp.open_secret(handles(app).protector, user) == mine.group(1).decode()


def test_two_parallel_requests_with_one_totp_code_sign_in_once(app, served) -> None:
    """The attack: a code read over a shoulder (or from a phishing proxy) sent at the very
    moment its owner sends it, from another login with the same password, in the hope that
    both requests pass the "used once" check before either records it. We promise: the step
    is used up by a conditional UPDATE, so exactly one of the two requests signs in."""
    web = served("web")
    user_id, secret = make_user(app, "supervisor", "olena")
    generator = pyotp.TOTP(secret)
    for round_, steps_ahead in enumerate((0, 1)):
        browsers = [Browser(web), Browser(web)]
        for browser in browsers:
            assert location(browser.password("olena", PASSWORD)).endswith("/console/login/totp")
        code = generator.at(time.time() + 30 * steps_ahead)
        answers = race(browsers, "/console/login/totp", {"code": code})
        statuses = sorted(answer.status for answer in answers)
        passed = [b for b in browsers if STAFF_COOKIE in b.cookies]
        assert len(passed) == 1, statuses
        assert statuses == [302, 401], statuses
        assert passed[0].signed_in()
        assert live_sessions(app, user_id) == round_ + 1
    assert audit_actions(app).count("login.success") == 2


def test_clients_of_one_ipv6_64_share_a_throttle(app, served) -> None:
    """The attack: a guesser who holds an IPv6 /64 (what one subscriber usually gets) takes a
    fresh address for every password guess, so that no address is ever slowed down. We
    promise: the throttle counts an IPv6 client by its /64 (an IPv4 client by its address)."""
    web = served("web", TRUSTED_PROXIES="1")
    make_user(app, "supervisor", "olena")
    statuses = []
    for n in range(PAIR.free + 1):
        guesser = Browser(web, forwarded_for=f"2001:db8:77:1:{n + 1:x}:{n + 7:x}::{n + 3:x}")
        statuses.append(guesser.password("olena", f"guess-{n}-xxxxxxxx").status)
    assert statuses == [401] * PAIR.free + [429]
    # Another /64 is another client (the account's own limit for new addresses is not reached).
    elsewhere = Browser(web, forwarded_for="2001:db8:77:2::1")
    assert elsewhere.password("olena", "guess-elsewhere-xx").status == 401
    with app.app_context():  # the audit log keeps each full address (the throttle the /64)
        addresses = db_session().scalars(
            select(AuditEvent.ip).where(AuditEvent.action == "login.failure")
        )
        assert all(address.startswith("2001:db8:77:") for address in addresses)


def test_a_burst_of_logins_is_answered_at_once_not_queued_for_the_cpu(app, served) -> None:
    """The attack: many logins at once, each an argon2id hash (CPU and 64 MiB), to take the
    CPU that the carrier's webhooks need. We promise: at most STAFF_MAX_PASSWORD_HASHES hashes
    are computed at once over every process; one more is answered at once with 503 and
    Retry-After, computing nothing and charging nothing to the throttle."""
    web = served("web", STAFF_MAX_PASSWORD_HASHES="1")
    make_user(app, "supervisor", "olena")
    svc = handles(app)
    gate = HashingGate(svc.redis, 1)
    with contextlib.ExitStack() as held:
        held.enter_context(gate.slot())  # a hash in progress elsewhere takes the only slot
        browser = Browser(web)
        browser.get("/console/login")
        started = time.monotonic()
        answers = [browser.password("olena", PASSWORD) for _ in range(PAIR.free + 2)]
        elapsed = time.monotonic() - started
    assert [answer.status for answer in answers] == [503] * (PAIR.free + 2)
    assert all(answer.headers.get("retry-after") == "2" for answer in answers)
    assert elapsed < 0.2 * len(answers)  # no hash was computed: none waits for the CPU
    assert audit_actions(app) == ["staff.create"]
    # Once the slot is free the right password goes through (the busy answers cost nothing).
    assert location(browser.password("olena", PASSWORD)).endswith("/console/login/totp")
