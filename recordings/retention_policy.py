"""Retention periods: the environment's values are the defaults; admins may override them in
the console, and the retention job uses the effective value.

``periods(db, settings)`` says, for each of ``RETENTION_NAMES``, the effective number of days,
where it comes from (``environment`` or ``console``) and the environment's default;
``effective_days`` is what ``recordings.retention.apply`` reads. ``set_period`` changes one
(``None``: back to the environment's value) and writes a ``retention.change`` audit row with the
old and new values in the same transaction (the caller commits). 0 keeps forever, as in the
environment; at most ``RETENTION_MAX_DAYS``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from db import utcnow
from recordings.models import RETENTION_MAX_DAYS, RETENTION_NAMES, RetentionSetting
from settings import Settings
from staff import audit

_table = RetentionSetting.__table__
ENVIRONMENT, CONSOLE = "environment", "console"
#: The environment variable behind each period (for the page and the errors).
ENVIRONMENT_NAMES = {name: name.upper() for name in RETENTION_NAMES}


class RetentionValueError(ValueError):
    """A period that may not be set; ``reason`` is ``number`` (not a whole number of days) or
    ``range`` (outside 0 … ``RETENTION_MAX_DAYS``)."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Period:
    name: str
    days: int  # effective; 0 keeps forever
    default: int  # the environment's value
    override: int | None  # set in the console, or None
    updated_at: dt.datetime | None = None
    updated_by: int | None = None

    @property
    def source(self) -> str:
        return ENVIRONMENT if self.override is None else CONSOLE


def _check_name(name: str) -> None:
    if name not in RETENTION_NAMES:
        raise ValueError(f"no retention period {name!r}")


def parse_days(raw: str | None) -> int | None:
    """A form's value: blank → None (the environment's value), else whole days in range."""
    text = (raw or "").strip()
    if not text:
        return None
    if not text.isascii() or not text.isdigit() or len(text) > 6:
        raise RetentionValueError("a whole number of days (0 keeps forever)", "number")
    return check_days(int(text))


def check_days(days: int) -> int:
    if isinstance(days, bool) or not isinstance(days, int):
        raise RetentionValueError("a whole number of days (0 keeps forever)", "number")
    if not 0 <= days <= RETENTION_MAX_DAYS:
        raise RetentionValueError(f"from 0 to {RETENTION_MAX_DAYS} days", "range")
    return days


def periods(db: Session, settings: Settings) -> dict[str, Period]:
    """Every period: effective value, source, default (in ``RETENTION_NAMES`` order)."""
    rows = {row.name: row for row in db.execute(select(_table)).all()}
    found = {}
    for name in RETENTION_NAMES:
        default = int(getattr(settings, name))
        row = rows.get(name)
        if row is None:
            found[name] = Period(name, default, default, None)
        else:
            found[name] = Period(name, row.days, default, row.days, row.updated_at, row.updated_by)
    return found


def effective_days(db: Session, settings: Settings) -> dict[str, int]:
    """The days each period keeps, override or environment (what the retention job uses)."""
    return {name: period.days for name, period in periods(db, settings).items()}


def set_period(
    db: Session,
    settings: Settings,
    name: str,
    days: int | None,
    *,
    actor: int | None,
) -> bool:
    """Override a period (``days``), or go back to the environment's value (None). Audited as
    ``retention.change`` (old and new effective days and their sources) in the same transaction;
    the caller commits. Returns whether anything changed."""
    _check_name(name)
    if days is not None:
        check_days(days)
    before = periods(db, settings)[name]
    if before.override == days:
        return False
    if days is None:
        db.execute(delete(_table).where(_table.c.name == name))
        after_days, after_source = before.default, ENVIRONMENT
    else:
        values = {"days": days, "updated_at": utcnow(), "updated_by": actor}
        # An upsert: two admins saving the same period for the first time at once both land
        # (the later one wins), rather than the second failing on the primary key.
        bind = db.get_bind() if isinstance(db, Session) else db
        dialect = sqlite if bind.dialect.name == "sqlite" else postgresql
        statement = dialect.insert(_table).values(name=name, **values)
        db.execute(statement.on_conflict_do_update(index_elements=["name"], set_=values))
        after_days, after_source = days, CONSOLE
    audit.record(
        "retention.change", "retention_setting", name, using=db, actor=actor,
        old=before.days, new=after_days, old_source=before.source, new_source=after_source,
        environment=before.default,
    )  # fmt: skip
    return True
