"""Staff accounts, their server-side sessions and the append-only audit log."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from db import Base, UTCDateTime, one_of, utcnow

#: What a staff member may be. Handlers take calls and see the inquiries they took part in;
#: supervisors watch queues and see every inquiry; auditors review (every inquiry, the audit
#: log); admins manage accounts (and see every inquiry).
ROLES = ("handler", "supervisor", "auditor", "admin")
#: The console's languages.
STAFF_LANGUAGES = ("uk", "en")


class StaffUser(Base):
    """A person who signs in to the console. Never deleted: disabled (``active`` false)."""

    __tablename__ = "staff_user"
    __table_args__ = (
        CheckConstraint(one_of("role", ROLES), name="role"),
        CheckConstraint(one_of("language", STAFF_LANGUAGES), name="language"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Lower case, compared as such.
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(80))
    role: Mapped[str] = mapped_column(String(16))
    #: argon2id, in the PHC string format (parameters inside).
    password_hash: Mapped[str] = mapped_column(String(255))
    #: The TOTP secret, sealed with the data key (AES-GCM, the row id as associated data). Set
    #: only when its owner confirms the enrolment (until then it lives in their pending login).
    totp_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    totp_key_id: Mapped[str | None] = mapped_column(String(32))
    #: False until the first code is confirmed (enrolment pending, or never enrolled).
    totp_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    #: The last TOTP time step accepted: a code is good once (no replay within its window).
    #: Moved forward only by a conditional UPDATE (``staff.totp.consume_code``).
    totp_last_step: Mapped[int | None] = mapped_column(Integer)
    #: The password was set by someone else (``flask staff create``/``reset``, an admin): the
    #: next login must choose a new one before anything else.
    must_change_password: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    language: Mapped[str] = mapped_column(String(8), default="uk")
    #: The routing handler this person is, if they take calls.
    handler_id: Mapped[int | None] = mapped_column(ForeignKey("handler.id"), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    password_changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_login_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    def totp_associated_data(self) -> bytes:
        return f"staff_user:{self.id}:totp".encode()


class StaffSession(Base):
    """A console login, kept on the server. The browser holds a random token; only its SHA-256
    is stored. Ended at logout, by the idle or absolute timeout, or when the account changes."""

    __tablename__ = "staff_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    staff_user_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    ip: Mapped[str | None] = mapped_column(String(45))
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    #: logout, idle, absolute, renewed, disabled, reset, password (the member changed it)
    end_reason: Mapped[str | None] = mapped_column(String(16))


class AuditEvent(Base):
    """Who did what, when, from where. Append-only: the app has no code that updates or deletes
    a row, and database triggers (migration 0006) refuse UPDATE and DELETE. Details hold ids
    and short codes, never personal data (``staff.audit.record`` checks)."""

    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_event_object", "object_type", "object_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    time: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    staff_user_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"), index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    object_type: Mapped[str | None] = mapped_column(String(32))
    object_id: Mapped[str | None] = mapped_column(String(64))
    ip: Mapped[str | None] = mapped_column(String(45))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
