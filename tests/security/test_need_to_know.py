"""Need to know: a handler reads a case only once they take one of its calls.

Two ways a handler could read cases that are not theirs, each attacked through the Procfile's
gunicorn over a real socket, with a handler who signs in through the console's real login pages:

- an offer: with ring-all, every handler on duty is offered every caller. While the phone rings
  (before they press 1) their page shows only the caller's language, topic and wait, never the
  case: its number, earlier calls, notes, or a way to open it;
- withheld numbers: every caller without a usable number (``anonymous``, Twilio's
  ``+266696687``, an empty From, …) used to be one caller with one case, so whoever took one
  such call read all the others. Each such call is now a case of its own.
"""

from __future__ import annotations

import datetime as dt
import http.client
import re
from urllib.parse import urlencode

from sqlalchemy import func, select, update

from db import db_session
from inquiries.models import Caller, Inquiry, Interaction
from inquiries.notes import add_note
from routing.models import Offer, QueueEntry
from staff.models import AuditEvent
from tests.conftest import PUBLIC_BASE_URL, call_params, new_call_sid
from tests.console.seed import a_case, handler_row
from tests.security.conftest import Served
from tests.staff.support import PASSWORD, code, make_user
from tests.support import handles

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Browser:
    """Raw HTTP/1.1 to a served process, keeping its cookies (every ``Set-Cookie``, which the
    harness's ``Answer`` folds into one)."""

    def __init__(self, web: Served):
        self.web = web
        self.cookies: dict[str, str] = {}

    def send(self, method: str, path: str, form: dict[str, str] | None = None):
        connection = http.client.HTTPConnection("127.0.0.1", self.web.port, timeout=15)
        headers = {"Host": "127.0.0.1"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            text = response.read().decode("utf-8", "replace")
            for name, value in response.getheaders():
                if name.lower() == "set-cookie":
                    cookie, _, attributes = value.partition(";")
                    key, _, content = cookie.strip().partition("=")
                    gone = "expires=thu, 01 jan 1970" in attributes.lower() or not content
                    if gone:
                        self.cookies.pop(key, None)
                    else:
                        self.cookies[key] = content
            return response.status, response.getheader("Location", ""), text
        finally:
            connection.close()

    def get(self, path: str) -> tuple[int, str]:
        status, _, text = self.send("GET", path)
        return status, text


def log_in_over_http(web: Served, username: str, secret: str) -> Browser:
    """Sign in as a browser does, through the console's pages: the password, then the TOTP
    code. (The one place that knows the login flow.)"""
    browser = Browser(web)
    status, page = browser.get("/console/login")
    assert status == 200, page
    token = _CSRF.search(page).group(1)
    status, location, page = browser.send(
        "POST", "/console/login", {"username": username, "password": PASSWORD, "csrf_token": token}
    )
    assert status == 302 and location.endswith("/console/login/totp"), (status, location, page)
    status, page = browser.get("/console/login/totp")
    assert status == 200, page
    token = _CSRF.search(page).group(1)
    status, location, page = browser.send(
        "POST", "/console/login/totp", {"code": code(secret), "csrf_token": token}
    )
    assert status == 302 and location.endswith("/console/"), (status, location, page)
    return browser


def a_handler_signed_in(app, web: Served, name: str) -> tuple[int, Browser]:
    """A routing handler with a staff account, signed in over HTTP: (handler id, browser)."""
    handler_id = handler_row(app, name.title())
    _, secret = make_user(app, "handler", name, handler_id=handler_id)
    return handler_id, log_in_over_http(web, name, secret)


def views_of(app, inquiry_id: int) -> int:
    with app.app_context():
        return db_session().scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "inquiry.view", AuditEvent.object_id == str(inquiry_id))
        )


def test_a_ringing_offer_does_not_show_the_handler_the_case(app, served):
    """The attack: a handler on duty (ring-all: offered every caller) reads each caller's case
    from their page, or opens it by its id, while their phone rings, without ever taking the
    call. We promise: the page and its live fragment show the language, topic and wait only;
    the case page is a 404 and no view is audited; once the handler takes the call they see it."""
    web = served("web")
    handler_id, anna = a_handler_signed_in(app, web, "anna")
    inquiry_id, call_id = a_case(app, earlier_calls=2, kind="family", language="ru")
    with app.app_context():
        session = db_session()
        add_note(
            session, handles(app).protector, inquiry_id, "lives near the depot", author_id=None
        )
        offer = Offer(interaction_id=call_id, handler_id=handler_id, state="ringing")
        session.add(offer)
        session.execute(update(QueueEntry).values(state="offered"))
        session.commit()
        offer_id = offer.id

    for path in ("/console/handler", "/console/handler/live"):
        status, page = anna.get(path)
        assert status == 200, page
        assert 'id="current-what">Call offered<' in page
        assert 'id="current-language">Russian<' in page and 'id="current-kind">a relative<' in page
        assert 'id="current-waited">1:15<' in page
        for secret in ("lives near the depot", f"#{inquiry_id}", f"/inquiries/{inquiry_id}",
                       "case-calls", 'class="number"', "0:42"):  # fmt: skip
            assert secret not in page, (path, secret)
    status, page = anna.get(f"/console/inquiries/{inquiry_id}")
    assert status == 404 and "lives near the depot" not in page
    assert views_of(app, inquiry_id) == 0

    with app.app_context():  # she pressed 1: the call is hers
        session = db_session()
        session.execute(update(Offer).where(Offer.id == offer_id).values(state="accepted"))
        session.execute(update(QueueEntry).values(state="connected", handler_id=handler_id,
                                                  connected_at=dt.datetime.now(dt.UTC)))  # fmt: skip
        session.commit()
    status, page = anna.get("/console/handler")
    assert status == 200 and "lives near the depot" in page and f"#{inquiry_id}" in page
    status, page = anna.get(f"/console/inquiries/{inquiry_id}")
    assert status == 200 and "lives near the depot" in page
    assert views_of(app, inquiry_id) == 2


def _case_of(app, sid: str) -> int:
    with app.app_context():
        return db_session().scalar(
            select(Interaction.inquiry_id).where(Interaction.provider_sid == sid)
        )


def test_withheld_callers_do_not_share_a_case(app, served):
    """The attack: a handler takes one call from a withheld number and, in its case, reads
    every other withheld caller's calls, notes and recordings (all were one caller, one case).
    We promise: each call without a usable number is a case of its own (a retried webhook
    finds the same one); a handler who took one of them cannot open another; a number that
    calls again still finds its own case."""
    web = served("web")
    withheld = {
        raw: new_call_sid()
        for raw in ("anonymous", "Anonymous", "restricted", "+266696687", "", "unknown")
    }
    twice = new_call_sid()
    numbered = [new_call_sid(), new_call_sid()]
    posts = [(sid, raw) for raw, sid in withheld.items()]
    posts += [(twice, "anonymous"), (twice, "anonymous")]
    posts += [(sid, "+380501112233") for sid in numbered]
    for sid, raw in posts:
        answer = web.signed_post(PUBLIC_BASE_URL, "/voice/incoming", call_params(sid, raw))
        assert answer.status == 200 and "<Gather" in answer.text, answer.text

    cases = {raw: _case_of(app, sid) for raw, sid in withheld.items()}
    cases["anonymous (2)"] = _case_of(app, twice)
    assert None not in cases.values() and len(set(cases.values())) == len(cases)
    assert _case_of(app, numbered[0]) == _case_of(app, numbered[1])
    with app.app_context():
        session = db_session()
        assert session.scalar(
            select(func.count()).select_from(Interaction).where(Interaction.provider_sid == twice)
        ) == 1  # fmt: skip
        withheld_callers = session.scalar(
            select(func.count()).select_from(Caller).where(Caller.withheld.is_(True))
        )
        assert withheld_callers == len(cases)
        assert session.scalar(select(func.count()).select_from(Inquiry)) == len(cases) + 1

    handler_id, anna = a_handler_signed_in(app, web, "anna")
    with app.app_context():  # Anna took the first anonymous call
        session = db_session()
        call_id = session.scalar(
            select(Interaction.id).where(Interaction.provider_sid == withheld["anonymous"])
        )
        session.add(QueueEntry(interaction_id=call_id, state="done", language="ru", kind="other",
                               handler_id=handler_id, connected_at=dt.datetime.now(dt.UTC)))  # fmt: skip
        session.commit()
    mine = cases["anonymous"]
    status, page = anna.get(f"/console/inquiries/{mine}")
    assert status == 200 and "withheld" in page
    for raw, other in cases.items():
        if other != mine:
            assert anna.get(f"/console/inquiries/{other}")[0] == 404, raw
    status, page = anna.get("/console/calls")
    assert status == 200
    shown = set(re.findall(r"/console/inquiries/(\d+)", page))
    assert shown == {str(mine)}
