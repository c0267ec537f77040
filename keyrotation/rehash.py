"""The keyed hashes of phone numbers recomputed under a new ``HOTLINE_PHONE_HMAC_KEY``.

A hash cannot be turned into another key's hash: HMAC is one-way, that is its point. But every
hashed number is also sealed beside its hash (callers and handlers), so a rotation opens each
sealed number, computes its hash under the new key and seals it again (the hash is the
ciphertext's associated data, so the two change together). An erased caller has neither
number nor hash (``erased:<id>``) and needs nothing.

Procedure (docs/SECURITY.md, "Erasure and key rotation"): deploy every process with the new
key in ``HOTLINE_PHONE_HMAC_KEY``, run ``flask keys rehash`` with the old one in
``HOTLINE_PHONE_HMAC_KEY_OLD`` (only this command reads it), then destroy the old key. A row is
rewritten only if its hash is the old key's hash of its own number: a value of any other kind
is left as it is, and a row already under the new key is done (the command is idempotent and
resumable).

Between the deployment and the end of the run, a returning caller whose row is not rehashed yet
is not found under the new hash and gets a new caller row. The run merges the two: the old row's
cases move to the new row (every foreign key to ``caller.id``), and the old row is erased (its
number and hash gone). Two handlers with one number (one added meanwhile) are reported, not
merged.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, case, func, select, update
from sqlalchemy.orm import Session

from dataprotection import DataProtector, DecryptionError, Sealed, erased_hash
from db import Base
from inquiries.message_models import Conversation
from inquiries.models import Caller
from keyrotation.sealed import BATCH, Progress
from routing.models import Handler

_caller: Table = Caller.__table__  # type: ignore[assignment]
_handler: Table = Handler.__table__  # type: ignore[assignment]
_conversation: Table = Conversation.__table__  # type: ignore[assignment]


def hasher(hmac_key: bytes) -> DataProtector:
    """A ``DataProtector`` for ``lookup_hash`` under ``hmac_key`` only (it seals nothing)."""
    return DataProtector(hmac_key, {"unused": bytes(32)})


@dataclass
class RehashOutcome:
    """Rows rehashed, already under the new key, left (a hash not made from their number with
    either key), merged into a newer row of the same number, and ids that need a person:
    ``failed`` (the number does not open), ``conflicts`` (another row has the new hash)."""

    rehashed: int = 0
    current: int = 0
    left: int = 0
    merged: int = 0
    failed: list[int] = field(default_factory=list)
    conflicts: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class _Hashed:
    name: str
    table: Table
    hash: str
    ciphertext: str
    key_id: str


_TARGETS = (
    _Hashed("caller_numbers", _caller, "number_hash", "number_ciphertext", "number_key_id"),
    _Hashed("handler_phones", _handler, "phone_hash", "phone_ciphertext", "phone_key_id"),
)


def rehash(
    conn: Session,
    protector: DataProtector,
    old_key: bytes,
    *,
    batch: int = BATCH,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> dict[str, RehashOutcome]:
    """Recompute callers' and handlers' number hashes with ``protector``'s (new) HMAC key."""
    old = hasher(old_key)
    if old.lookup_hash("probe", "keyrotation") == protector.lookup_hash("probe", "keyrotation"):
        raise ValueError("the old HMAC key is the current one: nothing to rotate")
    return {
        target.name: _rehash(conn, protector, old, target, batch, dry_run, progress)
        for target in _TARGETS
    }


def _rehash(
    conn: Session,
    protector: DataProtector,
    old: DataProtector,
    target: _Hashed,
    batch: int,
    dry_run: bool,
    progress: Progress | None,
) -> RehashOutcome:
    table = target.table
    hash_col, ct_col, kid_col = (table.c[target.hash], table.c[target.ciphertext],
                                 table.c[target.key_id])  # fmt: skip
    sealed_rows = (ct_col.is_not(None), kid_col.is_not(None), hash_col.is_not(None))
    total = conn.execute(select(func.count()).select_from(table).where(*sealed_rows)).scalar_one()
    outcome, last_id, seen = RehashOutcome(), 0, 0
    while True:
        rows = conn.execute(
            select(table.c.id, hash_col.label("h"), ct_col.label("ct"), kid_col.label("kid"))
            .where(*sealed_rows, table.c.id > last_id)
            .order_by(table.c.id)
            .limit(batch)
        ).all()
        if not rows:
            break
        for row in rows:
            try:
                number = protector.open_text(Sealed(row.kid, row.ct), associated=row.h.encode())
            except DecryptionError:
                outcome.failed.append(row.id)
                continue
            new_hash = protector.lookup_hash(number)
            if hmac.compare_digest(row.h, new_hash):
                outcome.current += 1
                continue
            if not hmac.compare_digest(row.h, old.lookup_hash(number)):
                outcome.left += 1
                continue
            holder = conn.execute(select(table.c.id).where(hash_col == new_hash)).scalar()
            if holder is not None:
                if table is not _caller:
                    outcome.conflicts.append(row.id)
                    continue
                if not dry_run:
                    _move_threads(conn, row.h, new_hash)
                    _merge_caller(conn, row.id, holder)
                outcome.merged += 1
                continue
            if not dry_run:
                again = protector.seal_text(number, associated=new_hash.encode())
                conn.execute(
                    update(table)
                    .where(table.c.id == row.id, hash_col == row.h, ct_col == row.ct)
                    .values({target.hash: new_hash, target.ciphertext: again.ciphertext,
                             target.key_id: again.key_id})
                )  # fmt: skip
                if table is _caller:
                    _move_threads(conn, row.h, new_hash)
            outcome.rehashed += 1
        conn.commit()
        last_id, seen = rows[-1].id, seen + len(rows)
        if progress:
            progress(target.name, seen, max(total, seen))
    return outcome


def _move_threads(conn: Session, old_hash: str, new_hash: str) -> None:
    """A person's message threads follow their caller's hash (``conversation.contact_hash``,
    and ``open_key``, which finds the open thread). A thread whose channel already has an open
    thread under the new hash (opened meanwhile) is ended: the newer one goes on."""
    taken = select(_conversation.c.channel).where(
        _conversation.c.contact_hash == new_hash, _conversation.c.open_key.is_not(None)
    )
    conn.execute(
        update(_conversation)
        .where(_conversation.c.contact_hash == old_hash, _conversation.c.channel.in_(taken))
        .values(open_key=None)
    )
    conn.execute(
        update(_conversation)
        .where(_conversation.c.contact_hash == old_hash)
        .values(
            contact_hash=new_hash,
            open_key=case(
                (_conversation.c.open_key.is_(None), None),
                else_=_conversation.c.channel + ":" + new_hash,
            ),
        )
    )


def _merge_caller(conn: Session, old_id: int, new_id: int) -> None:
    """The old row's cases (and anything else that refers to it) to the row made since the new
    key came into use; the old row erased."""
    for table in Base.metadata.tables.values():
        for fk in table.foreign_keys:
            if fk.column is _caller.c.id:
                conn.execute(
                    update(table).where(fk.parent == old_id).values({fk.parent.name: new_id})
                )
    conn.execute(
        update(_caller)
        .where(_caller.c.id == old_id)
        .values(number_hash=erased_hash(old_id), number_ciphertext=None, number_key_id=None)
    )


def key_status(conn: Session, protector: DataProtector, old_key: bytes | None) -> dict[str, Any]:
    """Counts of callers' and handlers' hashes under the current key, the old one, neither (a
    dry run of ``rehash``), for ``flask keys usage``."""
    if old_key is None:
        return {}
    found = rehash(conn, protector, old_key, dry_run=True)
    return {
        name: {"current": o.current, "old": o.rehashed + o.merged + len(o.conflicts),
               "other": o.left, "failed": len(o.failed)}
        for name, o in found.items()
    }  # fmt: skip
