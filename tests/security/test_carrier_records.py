"""What the carrier, or a dump of ours, would keep of a caller: the carrier's call records are
deleted once a call has ended (through gunicorn and the Procfile's worker, against the emulator
as the carrier), a forged callback cannot make us delete anything, and what a caller says or
types at the menu is kept only as the choice it made."""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from sqlalchemy import select
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from db import db_session
from devtools import procfile
from emulator import Emulator
from inquiries.models import Interaction
from recordings.models import CarrierCall
from tests.conftest import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    HOTLINE_NUMBER,
    PUBLIC_BASE_URL,
    call_params,
    new_call_sid,
    path_of,
)
from tests.security.conftest import process_env
from tests.support import handles
from tests.test_confidentiality import database_blobs, redis_blobs

ROOT = Path(__file__).resolve().parents[2]
CALLER = "+79161234567"


@pytest.fixture
def emulator():
    emu = Emulator(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, clock="virtual").start()
    emu.add_number(HOTLINE_NUMBER)  # no webhooks: the tests post the carrier's callbacks
    yield emu
    emu.stop()


@pytest.fixture
def carrier_api(emulator):
    """twilio-python's Client on the emulator: what the carrier's REST API shows."""
    client = Client(ACCOUNT_SID, AUTH_TOKEN)
    client.api.base_url = emulator.base_url
    yield client
    client.http_client.session.close()


def ended_call(emulator) -> str:
    """A caller's call that came in and ended at the carrier: its record holds their number."""
    call = emulator.dial(CALLER, HOTLINE_NUMBER)
    emulator.settle()
    assert call.ended
    return call.sid


def at_carrier(carrier_api, sid: str) -> bool:
    try:
        carrier_api.calls(sid).fetch()
    except TwilioRestException as exc:
        assert exc.status == 404
        return False
    return True


def run_worker(settings, **extra: str) -> str:
    """The Procfile's worker, in burst mode, with the test's settings: it runs what is queued."""
    env = process_env(settings, extra)
    done = subprocess.run(
        [*procfile.command("worker", env), "--burst"], cwd=ROOT, env=env, timeout=180,
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def carrier_rows(app) -> list[CarrierCall]:
    with app.app_context():
        return list(db_session().scalars(select(CarrierCall)))


def test_a_completed_call_does_not_stay_at_the_carrier(
    app, settings, served, emulator, carrier_api
):
    """The carrier keeps a call's record (the caller's number as its From) for about 13 months
    unless it is deleted. A signed status callback saying the call completed, through gunicorn,
    leads the worker to delete the record: the carrier's API no longer shows the call."""
    sid = ended_call(emulator)
    assert [c.sid for c in carrier_api.calls.list(from_=CALLER)] == [sid]
    web = served("web", TWILIO_API_BASE_URL=emulator.base_url)
    params = call_params(sid, CALLER, CallStatus="completed", CallDuration="3")
    assert web.signed_post(PUBLIC_BASE_URL, "/voice/status", params).status == 200
    assert at_carrier(carrier_api, sid)  # the webhook only noted it: the job deletes it

    worker_log = run_worker(settings, TWILIO_API_BASE_URL=emulator.base_url)
    assert not at_carrier(carrier_api, sid)
    assert carrier_api.calls.list() == []
    (row,) = carrier_rows(app)
    assert (row.call_sid, row.leg) == (sid, "inbound")
    assert row.ended_at is not None and row.deleted_at is not None
    for text in (web.log(), worker_log):
        assert CALLER not in text and CALLER[1:] not in text


def test_a_forged_status_callback_deletes_nothing(app, settings, served, emulator, carrier_api):
    """Whoever lacks the carrier's token cannot make the hotline delete call records (or note
    any): a "completed" callback without a valid signature is refused before any write."""
    sid = ended_call(emulator)
    web = served("web", TWILIO_API_BASE_URL=emulator.base_url)
    params = call_params(sid, CALLER, CallStatus="completed")
    assert web.post_form("/voice/status", params).status == 403
    forged = {"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"}
    assert web.post_form("/voice/status", params, forged).status == 403
    assert carrier_rows(app) == []
    assert handles(app).queued() == 0
    run_worker(settings, TWILIO_API_BASE_URL=emulator.base_url)
    assert at_carrier(carrier_api, sid)


NEEDLES = ("Шевчук", "Садова", "380501234567")


def found_needles(blob: bytes) -> list[str]:
    return [
        needle for needle in NEEDLES
        if any(needle.encode(enc) in blob for enc in ("utf-8", "utf-16-le", "utf-16-be"))
    ]  # fmt: skip


def test_what_a_caller_says_or_types_at_the_menu_is_not_kept(app, served):
    """A dump of the database or Redis, or the logs, must not hold what a caller said to the
    speech menu (a name, an address) or typed on the keypad (a phone number): only which choice
    it matched. Through gunicorn, as the carrier posts them: a spoken answer that matches a
    choice, one that matches none, and a keypad entry of many digits."""
    web = served("web")
    sid = new_call_sid()

    def answer(path: str, **extra: str) -> ET.Element:
        got = web.signed_post(PUBLIC_BASE_URL, path, call_params(sid, CALLER, **extra))
        assert got.status == 200, got.text
        return ET.fromstring(got.body)

    def gather_path(root: ET.Element) -> str:
        gather = root.find("Gather")
        assert gather is not None, ET.tostring(root, encoding="unicode")
        return path_of(gather.get("action", ""))

    menu = answer("/voice/incoming")
    menu = answer(gather_path(menu), SpeechResult="Меня зовут Тарас Шевчук, українська",
                  Confidence="0.93")  # fmt: skip
    menu = answer(gather_path(menu), SpeechResult="Моя адреса вулиця Садова, будинок сім",
                  Confidence="0.88")  # fmt: skip
    answer(gather_path(menu), Digits="380501234567")

    with app.app_context():
        session = db_session()
        path = session.scalar(select(Interaction.ivr_path).where(Interaction.provider_sid == sid))
        session.commit()
        svc = handles(app)
        leaks = {
            where: needles
            for where, blob in [*database_blobs(svc.engine), *redis_blobs(svc.redis)]
            if (needles := found_needles(blob))
        }
    assert [(s["node"], s["answer"], s.get("choice"), s.get("problem")) for s in path] == [
        ("language", "speech", "2", None),  # the choice of key 2: Ukrainian
        ("main", None, None, "invalid"),
        ("main", "keys", None, "invalid"),
    ]
    assert leaks == {}
    assert found_needles(web.log().encode()) == []
