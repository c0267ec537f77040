"""The blocklist: numbers whose calls are refused with ``<Reject>``, managed by supervisors.

An entry holds the number's keyed hash, never the number: ``lookup_hash`` with its own purpose
(``blocklist``), not the callers' one, so a database dump does not link an entry to a caller and
their cases. For supervisors to tell entries apart it keeps a hint of the number — the country
code and the last two digits (``+7 …67``): one number in a hundred of that country, which names
nobody and, without the HMAC key, confirms nothing. Each entry has a reason (free text, refused
if it holds anything shaped like a phone number), an expiry (at most ``BLOCKLIST_MAX_DAYS``), and
who added it.

Adding, removing and the hourly purge of expired entries are audited (``blocklist.add``,
``blocklist.remove``, ``blocklist.expire``; the entry id and the hours, not the reason: the
audit log can never be erased and the reason is free text). An expired entry no longer blocks,
and ``purge_expired`` deletes it: the hash of a number is kept no longer than its block.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlalchemy import Connection, ForeignKey, String, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.sql.elements import ColumnElement

from dataprotection import DataProtector, country_code, normalise_number
from db import Base, UTCDateTime, insert_ignoring_duplicates, utcnow
from staff import audit

HASH_PURPOSE = "blocklist"
MAX_REASON = 200
_E164 = re.compile(r"\+[1-9]\d{6,14}")


class BlockedNumber(Base):
    """A number on the blocklist (see the module): its calls are answered with ``<Reject>``."""

    __tablename__ = "blocked_number"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: ``lookup_hash(number, purpose="blocklist")``: one entry per number.
    number_hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: The country code and the last two digits, for people: ``+7 …67``.
    hint: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(MAX_REASON))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    #: The staff member who added it (None: a command).
    created_by: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))


_table = BlockedNumber.__table__


class BlocklistError(ValueError):
    """An entry that cannot be added. ``problem``: ``number`` (not an E.164 number), ``reason``
    (empty, too long, or holding a phone number), ``duration`` (out of range) or ``exists``
    (the number is blocked already: ``entry`` is its id)."""

    def __init__(self, problem: str, entry: int | None = None):
        super().__init__(problem)
        self.problem = problem
        self.entry = entry


@dataclass(frozen=True)
class Entry:
    id: int
    hint: str
    reason: str
    created_at: dt.datetime
    expires_at: dt.datetime
    created_by: int | None


def number_hash(protector: DataProtector, number: str) -> str:
    """The blocklist's keyed hash of a (normalised) number."""
    return protector.lookup_hash(normalise_number(number), purpose=HASH_PURPOSE)


def parse_number(raw: str) -> str:
    """The number typed by a supervisor in E.164 (spaces, dashes, brackets dropped), else
    ``BlocklistError("number")`` (which never repeats the input)."""
    number = normalise_number((raw or "")[:64])
    if not _E164.fullmatch(number):
        raise BlocklistError("number")
    return number


def hint_of(number: str) -> str:
    """``+7 …67``: the country code and the last two digits (see the module)."""
    return f"+{country_code(number)} …{number[-2:]}"


def check_reason(raw: str) -> str:
    reason = " ".join((raw or "").split())  # no control characters, no line breaks
    if not reason or len(reason) > MAX_REASON or audit.looks_like_a_phone_number(reason):
        raise BlocklistError("reason")
    return reason


def _in_force(now: dt.datetime) -> ColumnElement[bool]:
    return _table.c.expires_at > now


def is_blocked(conn: Session | Connection, hashed: str, now: dt.datetime | None = None) -> bool:
    """Whether an entry for this hash is in force (``conn``: a session or a connection)."""
    statement = select(_table.c.id).where(
        _table.c.number_hash == hashed, _in_force(now or utcnow())
    )
    return conn.execute(statement.limit(1)).first() is not None


def add(
    db: Session,
    protector: DataProtector,
    *,
    number: str,
    reason: str,
    hours: int,
    max_days: int,
    actor: int | None,
    now: dt.datetime | None = None,
) -> int:
    """Put a number on the blocklist for ``hours`` (1 to ``max_days`` days); returns the entry's
    id. An expired entry of the same number is purged first. Audited in the same transaction
    (the caller commits). Raises ``BlocklistError``."""
    number = parse_number(number)
    reason = check_reason(reason)
    if isinstance(hours, bool) or not isinstance(hours, int) or not 1 <= hours <= max_days * 24:
        raise BlocklistError("duration")
    now = now or utcnow()
    hashed = number_hash(protector, number)
    old = db.execute(
        select(_table.c.id, _table.c.expires_at).where(_table.c.number_hash == hashed)
    ).first()
    if old is not None and old.expires_at > now:
        raise BlocklistError("exists", old.id)
    if old is not None:
        _purge(db, [old.id])
    values = {
        "number_hash": hashed, "hint": hint_of(number), "reason": reason, "created_at": now,
        "expires_at": now + dt.timedelta(hours=hours), "created_by": actor,
    }  # fmt: skip
    entry_id = insert_ignoring_duplicates(db, _table, values, "number_hash")
    if entry_id is None:  # another supervisor added it at the same moment
        raise BlocklistError("exists")
    audit.record("blocklist.add", "blocked_number", entry_id, using=db, actor=actor, hours=hours)
    return int(entry_id)


def remove(db: Session, entry_id: int, *, actor: int | None) -> bool:
    """Take an entry off the blocklist (audited; the caller commits). False if there was none."""
    removed = db.execute(delete(_table).where(_table.c.id == entry_id)).rowcount
    if removed:
        audit.record("blocklist.remove", "blocked_number", entry_id, using=db, actor=actor)
    return bool(removed)


def entries(db: Session, now: dt.datetime | None = None) -> list[Entry]:
    """The entries in force, the soonest to expire first."""
    rows = db.execute(
        select(
            _table.c.id, _table.c.hint, _table.c.reason, _table.c.created_at,
            _table.c.expires_at, _table.c.created_by,
        ).where(_in_force(now or utcnow())).order_by(_table.c.expires_at, _table.c.id)
    ).all()  # fmt: skip
    return [Entry(*row) for row in rows]


def _purge(db: Session, ids: list[int]) -> None:
    for entry_id in ids:
        if db.execute(delete(_table).where(_table.c.id == entry_id)).rowcount:
            audit.record(
                "blocklist.expire", "blocked_number", entry_id, using=db, actor=None, ip=None
            )


def purge_expired(db: Session, now: dt.datetime | None = None) -> int:
    """Delete the entries whose block has ended (each audited); the caller commits."""
    ids = list(db.scalars(select(_table.c.id).where(_table.c.expires_at <= (now or utcnow()))))
    _purge(db, ids)
    return len(ids)
