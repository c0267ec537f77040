"""Screening incoming calls: the blocklist and the rate limits answer with <Reject> alone, before
any write; withheld numbers share a window of their own; Redis keys hold no number."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET

import redis
from sqlalchemy import func, select

from db import db_session, utcnow
from inquiries import blocklist
from inquiries.models import Caller, CallEvent, Inquiry, Interaction
from ivr import screening
from tests.conftest import call_params, new_call_sid
from tests.support import handles

CALLER = "+79161234567"
OTHER = "+380501234567"
WITHHELD = "+266696687"  # Twilio's placeholder for an anonymous caller


def incoming(carrier, from_: str, sid: str | None = None) -> ET.Element:
    return carrier.twiml("/voice/incoming", call_params(sid or new_call_sid(), from_))


def is_reject(root: ET.Element) -> bool:
    """<Reject reason="busy"> as the first and only verb."""
    return [el.tag for el in root] == ["Reject"] and root[0].get("reason") == "busy"


def rows(app) -> dict[str, int]:
    with app.app_context():
        db = db_session()
        return {
            model.__name__: db.scalar(select(func.count()).select_from(model))
            for model in (Caller, Inquiry, Interaction, CallEvent)
        }


def block(app, number: str, *, hours: int = 24, now: dt.datetime | None = None) -> int:
    with app.app_context():
        db = db_session()
        entry = blocklist.add(
            db, handles(app).protector, number=number, reason="flooding the line", hours=hours,
            max_days=90, actor=None, now=now,
        )  # fmt: skip
        db.commit()
        return entry


def refused_today(app) -> dict[str, int]:
    with app.app_context():
        found = screening.refusals_today()
        assert found is not None
        return found


def test_a_blocked_number_is_rejected_before_anything_is_written(app, carrier):
    block(app, CALLER)
    root = incoming(carrier, "+7 916 123-45-67")  # however the carrier spells it
    assert is_reject(root)
    assert rows(app) == {"Caller": 0, "Inquiry": 0, "Interaction": 0, "CallEvent": 0}
    assert refused_today(app) == {"blocked": 1, "rate": 0, "withheld": 0}
    assert not is_reject(incoming(carrier, OTHER))  # only that number


def test_an_expired_block_no_longer_rejects(app, carrier):
    block(app, CALLER, hours=1, now=utcnow() - dt.timedelta(hours=2))
    assert incoming(carrier, CALLER).find("Gather") is not None


def test_a_number_over_its_rate_is_rejected_and_not_counted_further(app, carrier, settings):
    limit = settings.call_limit_per_number
    assert limit == 6  # the default
    admitted = [incoming(carrier, CALLER) for _ in range(limit)]
    assert all(root.find("Gather") is not None for root in admitted)
    for _ in range(3):
        assert is_reject(incoming(carrier, CALLER))
    assert rows(app)["Interaction"] == limit
    assert refused_today(app)["rate"] == 3
    assert incoming(carrier, OTHER).find("Gather") is not None  # another number is not affected


def test_a_carrier_retry_of_an_admitted_call_is_admitted_again_without_counting(app, carrier):
    sid = new_call_sid()
    for _ in range(10):  # the same CallSid: one call
        assert incoming(carrier, CALLER, sid).find("Gather") is not None
    for _ in range(5):
        assert incoming(carrier, CALLER).find("Gather") is not None
    assert is_reject(incoming(carrier, CALLER))


def test_the_window_slides(app):
    with app.test_request_context():
        now = 1_000_000.0
        assert all(screening.admit(CALLER, new_call_sid(), now=now + i) for i in range(6))
        assert not screening.admit(CALLER, new_call_sid(), now=now + 599)
        assert screening.admit(CALLER, new_call_sid(), now=now + 600.5)  # the first has left
        assert not screening.admit(CALLER, new_call_sid(), now=now + 600.6)


def test_withheld_callers_share_a_more_generous_window_of_their_own(app, carrier, settings):
    assert settings.call_limit_withheld > settings.call_limit_per_number
    for _ in range(settings.call_limit_per_number):
        incoming(carrier, CALLER)
    assert is_reject(incoming(carrier, CALLER))  # that number is over its limit …
    for placeholder in [WITHHELD, "anonymous", "", "Restricted"] * 4:
        assert incoming(carrier, placeholder).find("Gather") is not None  # … withheld are not
    for _ in range(settings.call_limit_withheld - 16):
        assert incoming(carrier, WITHHELD).find("Gather") is not None
    assert is_reject(incoming(carrier, "anonymous"))  # the shared window is full
    assert incoming(carrier, OTHER).find("Gather") is not None  # numbers are not affected
    assert refused_today(app) == {"blocked": 0, "rate": 1, "withheld": 1}


def test_a_withheld_placeholder_is_never_blocked_by_the_blocklist(app, carrier):
    """A placeholder on the list would refuse every withheld caller: it is not looked up."""
    block(app, WITHHELD)  # (the console refuses it; the screening does not rely on that)
    assert incoming(carrier, WITHHELD).find("Gather") is not None


def test_zero_turns_the_rate_limits_off(app, carrier):
    svc = handles(app)
    svc.settings = svc.settings.replace(call_limit_per_number=0, call_limit_withheld=0)
    for _ in range(40):
        assert incoming(carrier, CALLER).find("Gather") is not None
        assert incoming(carrier, WITHHELD).find("Gather") is not None


def test_with_redis_down_calls_are_admitted_and_the_blocklist_still_holds(app, carrier):
    block(app, OTHER)
    svc = handles(app)
    svc.redis_client = redis.Redis.from_url("unix:///nonexistent/redis.sock")
    for _ in range(10):
        assert incoming(carrier, CALLER).find("Gather") is not None
    assert is_reject(incoming(carrier, OTHER))


def test_redis_keys_hold_neither_the_number_nor_the_callers_hash(app, carrier):
    incoming(carrier, CALLER)
    keys = [key.decode() for key in handles(app).redis.keys("hotline:screen:*")]
    assert len(keys) == 1 and keys[0].startswith("hotline:screen:calls:")
    with app.app_context():
        caller_hash = db_session().scalar(select(Caller.number_hash))
    assert caller_hash is not None
    digits = CALLER.lstrip("+")
    assert not any(digits in key or caller_hash[:32] in key for key in keys)
    members = handles(app).redis.zrange(keys[0], 0, -1)
    assert all(member.startswith(b"CA") for member in members)  # CallSids only
