"""Retention periods set in the console override the environment's, and the retention job
follows them; each change is audited."""

from __future__ import annotations

import datetime as dt
import os
from itertools import count

import pytest
from sqlalchemy import select

from inquiries.models import Caller, Inquiry, Interaction
from recordings import retention
from recordings.models import CARRIER_DELETED, DELETED, Recording, RetentionSetting
from recordings.retention_policy import (
    RetentionValueError,
    effective_days,
    parse_days,
    periods,
    set_period,
)
from recordings.store import LocalRecordingStore, object_key
from staff.models import AuditEvent
from tests.support import handles

_sids = count(1)
NOW = dt.datetime.now(dt.UTC)


def days_ago(days: float) -> dt.datetime:
    return NOW - dt.timedelta(days=days)


def a_recording(svc, kind: str, age_days: float, store: LocalRecordingStore) -> int:
    """A stored recording (already gone at the carrier) of a caller last heard ``age_days`` ago."""
    n = next(_sids)
    with svc.session_factory() as session:
        caller = Caller(number_hash=f"{n:064x}", number_ciphertext=b"sealed", number_key_id="k",
                        created_at=days_ago(age_days))  # fmt: skip
        session.add(caller)
        session.flush()
        inquiry = Inquiry(caller_id=caller.id)
        session.add(inquiry)
        session.flush()
        call = Interaction(inquiry_id=inquiry.id, provider_sid=f"CA{n:032x}",
                           status="completed", started_at=days_ago(age_days))  # fmt: skip
        session.add(call)
        session.flush()
        file_id = os.urandom(16)
        recording = Recording(
            recording_sid=f"RE{n:032x}", interaction_id=call.id, kind=kind,
            state=CARRIER_DELETED, storage_key=None, created_at=days_ago(age_days),
            carrier_deleted_at=days_ago(age_days), file_id=file_id.hex(),
        )  # fmt: skip
        session.add(recording)
        session.flush()
        recording.storage_key = object_key(recording.id, file_id)
        store.put(recording.storage_key, b"HREC encrypted bytes")
        session.commit()
        return recording.id


def run_retention(svc, store) -> dict[str, int]:
    with svc.engine.connect() as conn:
        return retention.apply(conn, svc, store, now=NOW)


def state_of(svc, recording_id: int) -> str:
    with svc.session_factory() as session:
        return session.get(Recording, recording_id).state


def override(svc, name: str, days: int | None) -> bool:
    with svc.engine.begin() as conn:
        return set_period(conn, svc.settings, name, days, actor=None)


@pytest.fixture
def svc(app):
    return handles(app)


def test_an_override_deletes_what_the_environment_would_keep(app, svc, store) -> None:
    assert svc.settings.recording_retention_days_message == 90  # the environment's value
    message = a_recording(svc, "message", 40, store)
    conversation = a_recording(svc, "conversation", 40, store)
    assert run_retention(svc, store)["recordings"] == 0  # 40 days < 90: kept
    assert state_of(svc, message) != DELETED

    override(svc, "recording_retention_days_message", 30)
    counts = run_retention(svc, store)
    assert counts["recordings"] == 1
    assert state_of(svc, message) == DELETED and store.keys(f"{message}/") == []
    assert state_of(svc, conversation) == CARRIER_DELETED  # still 90 days for conversations
    assert store.keys(f"{conversation}/") != []


def test_an_override_of_zero_keeps_what_the_environment_would_delete(app, svc, store) -> None:
    svc.settings = svc.settings.replace(recording_retention_days_conversation=10)
    old = a_recording(svc, "conversation", 40, store)
    override(svc, "recording_retention_days_conversation", 0)
    assert run_retention(svc, store)["recordings"] == 0
    assert state_of(svc, old) == CARRIER_DELETED
    override(svc, "recording_retention_days_conversation", None)  # back to the environment: 10
    assert run_retention(svc, store)["recordings"] == 1
    assert state_of(svc, old) == DELETED


def test_the_personal_data_period_follows_its_override(app, svc, store) -> None:
    a_recording(svc, "message", 100, store)  # a caller last heard 100 days ago
    override(svc, "recording_retention_days_message", 0)
    assert run_retention(svc, store)["callers"] == 0  # 365 days in the environment
    override(svc, "personal_data_retention_days", 60)
    assert run_retention(svc, store)["callers"] == 1
    with svc.session_factory() as session:
        (caller,) = session.scalars(select(Caller)).all()
        assert caller.number_ciphertext is None and caller.number_hash == f"erased:{caller.id}"


def test_effective_values_sources_and_audit_rows(app, svc) -> None:
    with svc.engine.connect() as conn:
        found = periods(conn, svc.settings)
    assert {name: (p.days, p.source) for name, p in found.items()} == {
        "recording_retention_days_message": (90, "environment"),
        "recording_retention_days_conversation": (90, "environment"),
        "personal_data_retention_days": (365, "environment"),
    }
    assert override(svc, "personal_data_retention_days", 30) is True
    assert override(svc, "personal_data_retention_days", 30) is False  # the same: no change
    assert override(svc, "personal_data_retention_days", None) is True
    assert override(svc, "personal_data_retention_days", None) is False
    with svc.engine.connect() as conn:
        assert effective_days(conn, svc.settings)["personal_data_retention_days"] == 365
        assert conn.execute(select(RetentionSetting)).all() == []
        rows = conn.execute(
            select(AuditEvent.action, AuditEvent.object_id, AuditEvent.staff_user_id,
                   AuditEvent.details).order_by(AuditEvent.id)
        ).all()  # fmt: skip
    assert [(r.action, r.object_id, r.staff_user_id, r.details["old"], r.details["new"])
            for r in rows] == [
        ("retention.change", "personal_data_retention_days", None, 365, 30),
        ("retention.change", "personal_data_retention_days", None, 30, 365),
    ]  # fmt: skip


@pytest.mark.parametrize(
    "raw,expected",
    [("", None), ("  ", None), (None, None), ("0", 0), (" 42 ", 42), ("3650", 3650)],
)
def test_parse_days(raw, expected) -> None:
    assert parse_days(raw) == expected


@pytest.mark.parametrize(
    "raw,reason",
    [("-1", "number"), ("x", "number"), ("2.5", "number"), ("٣", "number"), ("3651", "range")],
)
def test_parse_days_refuses(raw, reason) -> None:
    with pytest.raises(RetentionValueError) as refused:
        parse_days(raw)
    assert refused.value.reason == reason


def test_set_period_refuses_what_the_form_would(app, svc) -> None:
    with pytest.raises(RetentionValueError):
        override(svc, "recording_retention_days_message", -5)
    with pytest.raises(RetentionValueError):
        override(svc, "recording_retention_days_message", 10_000)
    with pytest.raises(ValueError, match="no retention period"):
        override(svc, "log_retention_days", 5)


def test_two_first_saves_at_once_both_land(app, svc, monkeypatch) -> None:
    """Two admins save the same period for the first time at once: both read "no override"
    before either writes. Neither fails (an upsert, not an INSERT that the second would lose
    on the primary key), the later wins, both are audited."""
    from recordings import retention_policy

    name = "recording_retention_days_message"
    with svc.engine.connect() as conn:
        read_before_either_wrote = periods(conn, svc.settings)
    assert read_before_either_wrote[name].override is None
    assert override(svc, name, 30) is True  # the first admin
    monkeypatch.setattr(retention_policy, "periods", lambda db, settings: read_before_either_wrote)
    assert override(svc, name, 40) is True  # the second, from what they had read
    monkeypatch.undo()
    with svc.engine.connect() as conn:
        assert effective_days(conn, svc.settings)[name] == 40
        news = conn.execute(
            select(AuditEvent.details).where(AuditEvent.action == "retention.change")
        ).scalars().all()  # fmt: skip
    assert [d["new"] for d in news] == [30, 40]
