"""Callers (pseudonymous), inquiries (cases), interactions (calls) and the append-only event log."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    bindparam,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from db import Base, UTCDateTime, utcnow

INQUIRY_KINDS = ("surrender", "family", "pow_info", "other")
INQUIRY_STATUSES = ("new", "open", "resolved", "closed")
LANGUAGES = ("ru", "uk", "en")

#: Call statuses by progress. A callback may only move a call forward (never back).
CALL_STATUS_RANK = {
    "queued": 0,
    "initiated": 0,
    "ringing": 1,
    "in-progress": 2,
    "completed": 3,
    "busy": 3,
    "failed": 3,
    "no-answer": 3,
    "canceled": 3,
}
FINAL_CALL_STATUSES = frozenset(s for s, rank in CALL_STATUS_RANK.items() if rank == 3)

#: The events read by time: the queue figures and reports (routing's queue and offer events,
#: call-back requests, hand-set presence) and the duty board (completions). Only these are in
#: the time index ``ix_call_event_queue``; the IVR's events (most of the rows: one or more per
#: step of every call) are found by their interaction only. Each event a webhook appends is
#: then written into three B-trees (the table, the interaction, the dedupe key), not five; with
#: two web workers every page of them is also read again after the other's commit. A query by
#: time must say ``QUEUE_EVENT_TERM`` (see there); a name added here needs a migration that makes
#: the index again (tests/test_schema.py compares the two).
QUEUE_EVENTS = (
    "ENTERQUEUE",
    "OFFER",
    "CONNECT",
    "REJECT",
    "RINGNOANSWER",
    "RINGCANCELED",
    "ABANDON",
    "COMPLETECALLER",
    "COMPLETEAGENT",
    "CALLBACK_REQUESTED",
    "HANDLER_PRESENCE",
    "HANDLER_PAUSED",
)


class Caller(Base):
    """A person who contacted the line, known only by a keyed hash and a ciphertext.

    A caller who withheld their number (``withheld``) is one call: the hash is keyed on that
    call's CallSid, no number is kept, and no later call joins them or their case."""

    __tablename__ = "caller"

    id: Mapped[int] = mapped_column(primary_key=True)
    number_hash: Mapped[str] = mapped_column(String(64), unique=True)
    number_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    number_key_id: Mapped[str | None] = mapped_column(String(32))
    withheld: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

    inquiries: Mapped[list[Inquiry]] = relationship(back_populates="caller")


class Inquiry(Base):
    """One case: everything a caller brought to the line until it is resolved."""

    __tablename__ = "inquiry"

    id: Mapped[int] = mapped_column(primary_key=True)
    caller_id: Mapped[int] = mapped_column(ForeignKey("caller.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16), default="other")
    language: Mapped[str | None] = mapped_column(String(8))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="new", index=True)
    callback_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    callback_requested_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    #: What came of it, from the configurable list CASE_OUTCOMES (set by staff).
    outcome: Mapped[str | None] = mapped_column(String(32), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    caller: Mapped[Caller] = relationship(back_populates="inquiries")
    interactions: Mapped[list[Interaction]] = relationship(
        back_populates="inquiry", order_by="Interaction.id"
    )


class Interaction(Base):
    """One call (later also one message thread) of an inquiry."""

    __tablename__ = "interaction"
    #: The call log's order and keyset pagination (newest first); by time too (its first column).
    __table_args__ = (Index("ix_interaction_started_at_id", "started_at", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    inquiry_id: Mapped[int] = mapped_column(ForeignKey("inquiry.id"), index=True)
    provider_sid: Mapped[str] = mapped_column(String(64), unique=True)
    channel: Mapped[str] = mapped_column(String(16), default="voice")
    direction: Mapped[str] = mapped_column(String(16), default="inbound")
    status: Mapped[str] = mapped_column(String(16), default="ringing")
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    answered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    duration_s: Mapped[int | None] = mapped_column(Integer)
    #: The IVR path: ``[{"node": …, "answer": …, "at": iso8601}, …]`` in order.
    ivr_path: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    recording_sid: Mapped[str | None] = mapped_column(String(64))
    recording_status: Mapped[str | None] = mapped_column(String(16))
    recording_duration_s: Mapped[int | None] = mapped_column(Integer)
    recording_url: Mapped[str | None] = mapped_column(String(512))

    inquiry: Mapped[Inquiry] = relationship(back_populates="interactions")
    events: Mapped[list[CallEvent]] = relationship(
        back_populates="interaction", order_by="CallEvent.id"
    )


class CallEvent(Base):
    """Append-only, queue_log-like: one row per step of a call. Never updated or deleted."""

    __tablename__ = "call_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    time: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    interaction_id: Mapped[int | None] = mapped_column(ForeignKey("interaction.id"), index=True)
    event: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: Set for events that must be written once (carrier retries, journal replays).
    dedupe_key: Mapped[str | None] = mapped_column(String(128), unique=True)

    interaction: Mapped[Interaction | None] = relationship(back_populates="events")


_event_table = CallEvent.__table__
_queue_events = _event_table.c.event.in_(QUEUE_EVENTS)
Index(  # on the table: its columns are the table's
    "ix_call_event_queue",
    _event_table.c.event,
    _event_table.c.time,
    sqlite_where=_queue_events,
    postgresql_where=_queue_events,
)
#: ``event IN (QUEUE_EVENTS)`` with the values written into the SQL, as the index's WHERE has
#: them. SQLite uses a partial index only for a query whose WHERE has the index's condition as
#: one of its terms, and a bound parameter does not stand for a literal there.
QUEUE_EVENT_TERM = _event_table.c.event.in_(
    bindparam("queue_events", QUEUE_EVENTS, expanding=True, literal_execute=True)
)


class CaseNote(Base):
    """A staff member's note on a case. The text is personal data: sealed like a phone number
    (AES-GCM, key id kept), erased by retention (``erased_at`` set, ciphertext dropped)."""

    __tablename__ = "case_note"

    id: Mapped[int] = mapped_column(primary_key=True)
    inquiry_id: Mapped[int] = mapped_column(ForeignKey("inquiry.id"), index=True)
    interaction_id: Mapped[int | None] = mapped_column(ForeignKey("interaction.id"))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    text_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    text_key_id: Mapped[str | None] = mapped_column(String(32))
    erased_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
