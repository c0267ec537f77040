"""Notes and the outcome of a case: what staff write and decide. Note texts are personal data,
sealed like phone numbers; retention erases them (the row stays, without its text).

Plain functions over a Core connection; the caller checks who may write (the console), commits,
and audits.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from dataprotection import DataProtector, Sealed
from inquiries.models import CaseNote, Inquiry, utcnow

MAX_NOTE_CHARS = 4000
_note = CaseNote.__table__
_inquiry = Inquiry.__table__


class NoteError(ValueError):
    """A note or an outcome that cannot be saved; the message says why (never the text)."""


@dataclass(frozen=True)
class Note:
    id: int
    inquiry_id: int
    interaction_id: int | None
    author_id: int | None
    created_at: dt.datetime
    text: str | None  # None once erased


def associated_data(inquiry_id: int) -> bytes:
    """What a note's ciphertext is bound to: its case (a note moved to another does not open)."""
    return f"case-note:{inquiry_id}".encode()


def add_note(
    conn: Session,
    protector: DataProtector,
    inquiry_id: int,
    text: str,
    *,
    author_id: int | None,
    interaction_id: int | None = None,
) -> int:
    """Seal and store a note; its id. Blank or over MAX_NOTE_CHARS: NoteError."""
    text = (text or "").strip()
    if not text:
        raise NoteError("the note is empty")
    if len(text) > MAX_NOTE_CHARS:
        raise NoteError(f"a note holds at most {MAX_NOTE_CHARS} characters")
    exists = conn.execute(select(_inquiry.c.id).where(_inquiry.c.id == inquiry_id)).scalar()
    if exists is None:
        raise NoteError("no such case")
    sealed = protector.seal_text(text, associated=associated_data(inquiry_id))
    return conn.execute(
        _note.insert().returning(_note.c.id),
        {"inquiry_id": inquiry_id, "interaction_id": interaction_id, "author_id": author_id,
         "created_at": utcnow(), "text_ciphertext": sealed.ciphertext,
         "text_key_id": sealed.key_id},
    ).scalar_one()  # fmt: skip


def notes_of(conn: Session, protector: DataProtector, inquiry_id: int) -> list[Note]:
    """The case's notes, oldest first, opened."""
    rows = conn.execute(
        select(_note).where(_note.c.inquiry_id == inquiry_id).order_by(_note.c.id)
    ).all()
    notes = []
    for row in rows:
        text = None
        if row.text_ciphertext is not None and row.text_key_id:
            sealed = Sealed(row.text_key_id, row.text_ciphertext)
            text = protector.open_text(sealed, associated=associated_data(inquiry_id))
        notes.append(
            Note(row.id, row.inquiry_id, row.interaction_id, row.author_id, row.created_at, text)
        )
    return notes


def set_outcome(conn: Session, inquiry_id: int, outcome: str, allowed: tuple[str, ...]) -> str:
    """Record the case's outcome (one of ``allowed``; "" clears it); the previous one."""
    outcome = (outcome or "").strip()
    if outcome and outcome not in allowed:
        raise NoteError(f"outcome must be one of {', '.join(allowed)}")
    previous = conn.execute(select(_inquiry.c.outcome).where(_inquiry.c.id == inquiry_id)).first()
    if previous is None:
        raise NoteError("no such case")
    conn.execute(
        update(_inquiry)
        .where(_inquiry.c.id == inquiry_id)
        .values(outcome=outcome or None, updated_at=utcnow())
    )
    return previous.outcome or ""


def erase_notes_before(conn: Session, cutoff: dt.datetime) -> list[tuple[int, int]]:
    """Retention: drop the text of notes written before ``cutoff``; (note id, inquiry id) of
    each erased (the caller audits them)."""
    rows = conn.execute(
        select(_note.c.id, _note.c.inquiry_id).where(
            _note.c.created_at < cutoff, _note.c.erased_at.is_(None)
        )
    ).all()
    if rows:
        conn.execute(
            update(_note)
            .where(_note.c.id.in_([r.id for r in rows]))
            .values(text_ciphertext=None, text_key_id=None, erased_at=utcnow())
        )
    return [(r.id, r.inquiry_id) for r in rows]
