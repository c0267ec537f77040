"""The ``recording`` table: one row per carrier recording, its pipeline state and its file; the
``retention_setting`` table: retention periods changed in the console."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from db import Base, one_of
from inquiries.models import UTCDateTime, utcnow

#: A message left in the message box; a handler's conversation recorded by routing.
KINDS = ("message", "conversation")

PENDING = "pending"  # the callback came: to be fetched from the carrier
FETCHED = "fetched"  # downloaded and checked (a real, non-empty WAV): being encrypted and stored
STORED = "stored"  # encrypted in the store and read back: to be deleted at the carrier
CARRIER_DELETED = "carrier_deleted"  # done: only our encrypted copy exists
FAILED = "failed"  # the last attempt failed (``failure_reason``); retried, or by hand
DELETED = "deleted"  # retention: the audio is gone everywhere; the row stays as the record
STATES = (PENDING, FETCHED, STORED, CARRIER_DELETED, FAILED, DELETED)
#: States in which the job still has work to do.
UNFINISHED = (PENDING, FETCHED, STORED, FAILED)
#: Failure reasons that neither RQ nor the stalled sweep retries: the same download would give
#: the same answer (media larger than ``RECORDING_MAX_BYTES``). A person retries (``flask
#: recordings retry``) once the cause is dealt with.
PERMANENT_FAILURES = ("too_large",)


class Recording(Base):
    """A recording from the carrier, on its way to (or in) the encrypted store.

    No personal data in clear: the audio is only in the store, encrypted with a per-file data
    key that is itself sealed with the app's data-protection key (``key_id``, ``wrapped_key``).
    """

    __tablename__ = "recording"
    __table_args__ = (
        CheckConstraint(one_of("kind", KINDS), name="kind"),
        CheckConstraint(one_of("state", STATES), name="state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The carrier's RecordingSid (``RE`` + 32 hex): the callbacks' idempotence key.
    recording_sid: Mapped[str] = mapped_column(String(64), unique=True)
    interaction_id: Mapped[int] = mapped_column(ForeignKey("interaction.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default=PENDING, index=True)
    #: Why the last attempt failed, as a short code (``carrier_unavailable``, ``not_audio``,
    #: ``encode_failed``, ``store_failed``, ``verify_failed``, ``carrier_delete_failed``,
    #: ``too_large``…).
    failure_reason: Mapped[str | None] = mapped_column(String(32))
    #: The last error's type and message (ids only), for staff and the CLI.
    last_error: Mapped[str | None] = mapped_column(String(255))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: RecordingDuration as the carrier reported it (seconds).
    carrier_duration_s: Mapped[int | None] = mapped_column(Integer)
    #: What the player needs: the measured duration, peaks (``PEAK_COUNT`` bytes 0-255), the
    #: encoded audio's type and size, and its SHA-256 (checked when it is read back).
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    waveform: Mapped[bytes | None] = mapped_column(LargeBinary)
    content_type: Mapped[str | None] = mapped_column(String(64))
    size_bytes: Mapped[int | None] = mapped_column(Integer)
    sha256: Mapped[str | None] = mapped_column(String(64))
    #: Where the encrypted file is (``RecordingStore`` key), its id (hex), its size.
    storage_key: Mapped[str | None] = mapped_column(String(128))
    file_id: Mapped[str | None] = mapped_column(String(32))
    stored_size: Mapped[int | None] = mapped_column(Integer)
    #: The file's data key sealed with the data-protection key ``key_id`` (rotation: rewrap).
    key_id: Mapped[str | None] = mapped_column(String(32))
    wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    fetched_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    stored_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    carrier_deleted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    failed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    deleted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    @property
    def peaks(self) -> list[int]:
        """The waveform summary for the player (empty until fetched, and after deletion)."""
        return list(self.waveform or b"")

    @property
    def playable(self) -> bool:
        """An encrypted copy is in the store (the carrier's may still exist too)."""
        return self.storage_key is not None and self.wrapped_key is not None


#: The retention periods staff may change in the console: ``Settings`` field names, whose
#: environment values (``RECORDING_RETENTION_DAYS_MESSAGE``, …) are the defaults.
RETENTION_NAMES = (
    "recording_retention_days_message",
    "recording_retention_days_conversation",
    "personal_data_retention_days",
)
#: The longest period that may be set (about ten years); 0 keeps forever.
RETENTION_MAX_DAYS = 3650


class RetentionSetting(Base):
    """A retention period set in the console, overriding its environment default. No row: the
    environment's value applies. Every change is in the audit log (``retention.change``)."""

    __tablename__ = "retention_setting"
    __table_args__ = (
        CheckConstraint(one_of("name", RETENTION_NAMES), name="name"),
        CheckConstraint(f"days >= 0 AND days <= {RETENTION_MAX_DAYS}", name="days"),
    )

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: Days kept; 0 keeps forever.
    days: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: Who set it (a staff user; None: a command).
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))


#: Which leg of a case a carrier call is: the caller's call in, an offer to a handler, a
#: call-back to the caller; ``other``: found at the carrier by the sweep, matched to nothing.
CALL_LEGS = ("inbound", "offer", "callback", "other")


class CarrierCall(Base):
    """A call resource at the carrier, until it is deleted there.

    The carrier keeps a call's record (the caller's number as From of an inbound call, a
    handler's or a caller's number as To of an offer or a call-back) until it is deleted; this
    row says which calls the hotline knows of, when each ended and when it was deleted at the
    carrier (``carrier_calls``: a job once the call ended and its recordings are stored, and a
    periodic sweep). Ids and times only.
    """

    __tablename__ = "carrier_call"
    __table_args__ = (CheckConstraint(one_of("leg", CALL_LEGS), name="leg"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The carrier's CallSid (``CA`` + 32 hex).
    call_sid: Mapped[str] = mapped_column(String(64), unique=True)
    #: The case's call this leg belongs to (None: found at the carrier, matched to nothing).
    interaction_id: Mapped[int | None] = mapped_column(ForeignKey("interaction.id"), index=True)
    leg: Mapped[str] = mapped_column(String(16))
    #: When the hotline learned that the call ended (a final status); None: not yet.
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    #: When the carrier deleted it (or answered 404); None: still there.
    deleted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: The last failed attempt's reason (an HTTP status and a carrier error code, or a type).
    last_error: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
