"""Call handlers: who takes routed calls, how to reach them, and their presence (the truth that
the Redis routing core is rebuilt from)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Boolean, CheckConstraint, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from db import Base, one_of
from inquiries.models import UTCDateTime, utcnow
from routing.strategies import PRESENCES

#: The presences a person may choose; the others (offered, on_call, wrap_up) are the system's.
PERSON_PRESENCES = ("offline", "available", "break")


class Handler(Base):
    """A call handler. They take calls on their own phone (its number sealed exactly like a
    caller's: keyed hash + AES-GCM ciphertext, never plain) or in the browser (a client name):
    exactly one of the two."""

    __tablename__ = "handler"
    __table_args__ = (
        CheckConstraint(
            "(phone_hash IS NULL) <> (client_identity IS NULL)", name="one_way_to_reach"
        ),
        CheckConstraint(one_of("presence", PRESENCES), name="presence"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    display_name: Mapped[str] = mapped_column(String(80))
    #: Languages they take callers in: ["ru", "uk", "en"].
    languages: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: Languages they take only from callers who waited ROUTING_LANGUAGE_FALLBACK_AFTER_S.
    fallback_languages: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: Inquiry kinds they take: surrender, family, pow_info, other.
    skills: Mapped[list[str]] = mapped_column(JSON, default=list)
    phone_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    phone_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    phone_key_id: Mapped[str | None] = mapped_column(String(32))
    client_identity: Mapped[str | None] = mapped_column(String(64), unique=True)
    #: Lower levels are offered first (0-99).
    level: Mapped[int] = mapped_column(Integer, default=1)
    #: Order for linear, round-robin and ring-all.
    position: Mapped[int] = mapped_column(Integer, default=0)
    wrap_up_s: Mapped[int] = mapped_column(Integer, default=30)
    presence: Mapped[str] = mapped_column(String(16), default="offline")
    presence_reason: Mapped[str | None] = mapped_column(String(200))
    presence_changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


#: A waiting caller's states in the database (the truth the core is rebuilt from).
QUEUE_STATES = (
    "waiting", "offered", "connected", "done", "abandoned", "left", "overflow",
    "calling_back",  # a call-back accepted by a handler: the caller's phone is being called
    "callback_failed",  # no call-back attempt reached the caller (the case keeps the request)
)  # fmt: skip
#: An offer call's states.
OFFER_STATES = ("placing", "ringing", "accepted", "missed", "rejected", "canceled", "lost")


class QueueEntry(Base):
    """A caller handed over to the handlers: one per call (interaction)."""

    __tablename__ = "queue_entry"

    id: Mapped[int] = mapped_column(primary_key=True)
    interaction_id: Mapped[int] = mapped_column(ForeignKey("interaction.id"), unique=True)
    state: Mapped[str] = mapped_column(String(16), default="waiting", index=True)
    language: Mapped[str] = mapped_column(String(8))
    kind: Mapped[str] = mapped_column(String(16))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    enqueued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    handler_id: Mapped[int | None] = mapped_column(ForeignKey("handler.id"), index=True)
    connected_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    #: Set when the caller asked to be called back while waiting: they hung up, their place
    #: (enqueued_at, priority) is kept, and the handler who takes it is called first.
    callback_requested_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    callback_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: The current call-back attempt's call to the caller.
    callback_sid: Mapped[str | None] = mapped_column(String(64))
    #: After a failed attempt: back in the queue (in its old place) at this time.
    callback_due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class Offer(Base):
    """One offer of a caller to a handler: an outbound call to the handler (no number kept)."""

    __tablename__ = "routing_offer"

    id: Mapped[int] = mapped_column(primary_key=True)
    interaction_id: Mapped[int] = mapped_column(ForeignKey("interaction.id"), index=True)
    handler_id: Mapped[int] = mapped_column(ForeignKey("handler.id"), index=True)
    call_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    state: Mapped[str] = mapped_column(String(16), default="placing")
    offered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
