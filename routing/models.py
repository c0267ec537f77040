"""Call handlers: who takes routed calls, how to reach them, and their presence (the truth that
the Redis routing core is rebuilt from)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Boolean, CheckConstraint, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from extensions import Base
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
        CheckConstraint(
            "presence IN (" + ", ".join(f"'{p}'" for p in PRESENCES) + ")", name="presence"
        ),
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
