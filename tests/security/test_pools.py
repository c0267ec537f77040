"""The console cannot starve the IVR.

gunicorn's sync workers answer one request at a time. If the carrier's webhooks and the staff
console shared them, a burst of logins (each an argon2id hash) or a few clients that send
their request slowly would hold every worker, and a caller would hear silence until the
carrier gave up. So the Procfile runs two processes with workers of their own: ``web``
(``HOTLINE_SERVE=webhooks``: ``/voice/*``, ``/routing/*`` and the prompt audio the carrier
fetches) and ``console`` (``HOTLINE_SERVE=console``: ``/console``); each answers the other's
paths 404, so a misrouted proxy cannot put the two back in one pool. These tests saturate the
console process and time signed webhooks on the web process meanwhile.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode

import pytest

from tests.conftest import PUBLIC_BASE_URL, call_params, new_call_sid
from tests.security.conftest import Served
from tests.staff.support import csrf_from

#: The Procfile's default number of workers of each process (WEB_/CONSOLE_CONCURRENCY).
WORKERS = 2
#: A generous bound for one webhook; the carrier waits 15 s, a caller notices far less.
PROMPT_S = 2.0


def caller_number() -> str:
    """A different caller for each call (a per-number limit must not be what answers)."""
    return "+7916" + "".join(random.choices("0123456789", k=7))


def incoming_call(web: Served) -> float:
    """One signed ``/voice/incoming`` on the web process, answered with TwiML; its seconds."""
    started = time.monotonic()
    answer = web.signed_post(
        PUBLIC_BASE_URL, "/voice/incoming", call_params(new_call_sid(), from_=caller_number())
    )
    elapsed = time.monotonic() - started
    assert answer.status == 200, answer.text
    assert answer.headers["content-type"].startswith("text/xml") and "<Response" in answer.text
    return elapsed


def warm_up(web: Served) -> None:
    """Each gunicorn worker builds its app on its first request: several at once reach both."""
    with ThreadPoolExecutor(WORKERS * 2) as pool:
        list(pool.map(lambda _: incoming_call(web), range(WORKERS * 2)))


def hold(served: Served) -> socket.socket:
    """A slow client: a login request whose headers never end (a sync worker waits for them)."""
    sock = socket.create_connection(("127.0.0.1", served.port), timeout=10)
    sock.sendall(b"POST /console/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: applic")
    return sock


def test_slow_clients_holding_every_console_worker_do_not_delay_a_call(served) -> None:
    """The attack: open more half-sent requests to the console than it has workers and keep
    them open (slowloris). We promise: the console stops answering, calls do not notice —
    every webhook on the web process is still answered within ``PROMPT_S``."""
    web, console = served("web"), served("console")
    warm_up(web)
    held = [hold(console) for _ in range(WORKERS + 2)]
    try:
        time.sleep(0.5)  # each console worker has accepted one and waits for its headers
        with pytest.raises(TimeoutError):  # saturated: even its health check is not answered
            console.raw(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", timeout=PROMPT_S)
        timings = [incoming_call(web) for _ in range(10)]
    finally:
        for sock in held:
            sock.close()
    assert max(timings) < PROMPT_S, timings
    assert console.request("GET", "/healthz").status == 200  # released, it answers again


def test_a_burst_of_logins_does_not_delay_a_call(served) -> None:
    """The attack: 30 logins at once with wrong passwords, each an argon2id verification (an
    unknown username costs the same as a real one), to keep the console's workers hashing.
    We promise: while the console has a backlog at least as long as its workers, every webhook
    on the web process is answered within ``PROMPT_S`` — its workers are its own, and no login
    holds the database's write lock through its hash (on SQLite every transaction takes it)."""
    web, console = served("web"), served("console")
    warm_up(web)
    page = console.request("GET", "/console/login")
    assert page.status == 200
    cookie = page.headers["set-cookie"].partition(";")[0]  # the session holding the CSRF token
    token = csrf_from(page.body)
    lock = threading.Lock()
    outstanding = 30
    statuses: list[int] = []

    def login(number: int) -> None:
        nonlocal outstanding
        form = {"username": f"guess{number}", "password": "wrong-" * 4, "csrf_token": token}
        body = urlencode(form).encode()
        request = (
            b"POST /console/login HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Cookie: " + cookie.encode() + b"\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )
        try:
            answer = console.raw(request, timeout=180)  # the last waits for 29 hashes before it
        finally:
            with lock:
                outstanding -= 1
        statuses.append(answer.status)

    samples: list[tuple[float, int]] = []  # (seconds, logins not yet answered when it was sent)
    with ThreadPoolExecutor(outstanding) as pool:
        burst = [pool.submit(login, number) for number in range(outstanding)]
        time.sleep(0.2)  # every login sent: the console's workers and its backlog are full
        while True:
            with lock:
                waiting = outstanding
            if waiting < WORKERS:
                break
            samples.append((incoming_call(web), waiting))
            time.sleep(0.1)  # a busy line's pace, not a flood of our own
        for future in burst:
            future.result()
    assert statuses == [401] * 30  # every login was checked (and refused) by the console
    during = [seconds for seconds, waiting in samples if waiting >= WORKERS]
    assert len(during) >= 3, samples  # the calls were timed while the console was saturated
    assert max(during) < PROMPT_S, samples


def test_each_process_refuses_the_other_ones_paths(served) -> None:
    """The attack: a proxy misconfigured (or tricked) into sending console requests to the web
    process, or webhooks to the console, so that one pool serves both again. We promise: the
    web process answers 404 to every ``/console`` path and the console process to every other
    path (a signed webhook included), both before any view; health checks answer on both."""
    web, console = served("web"), served("console")
    params = call_params(new_call_sid(), from_=caller_number())

    for path in ("/console/login", "/console", "/console/", "/console/static/console.css"):
        answer = web.request("GET", path)
        assert answer.status == 404, (path, answer.text)
        assert answer.headers["content-type"].startswith("text/plain")
    assert web.post_form("/console/login", {"username": "a", "password": "b"}).status == 404

    assert console.signed_post(PUBLIC_BASE_URL, "/voice/incoming", params).status == 404
    for path in ("/voice/incoming", "/voice/status", "/routing/offer", "/voice/prompts/en/x.wav"):
        assert console.request("GET", path).status == 404, path
        assert console.post_form(path, params).status == 404, path

    for process in (web, console):
        assert process.request("GET", "/healthz").status == 200
        assert process.request("GET", "/readyz").status == 200
    assert web.signed_post(PUBLIC_BASE_URL, "/voice/incoming", params).status == 200
    assert console.request("GET", "/console/login").status == 200
    assert console.request("GET", "/console/static/console.css").status == 200
