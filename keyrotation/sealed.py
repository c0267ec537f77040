"""Every column sealed with a data key (``HOTLINE_DATA_KEYS``), which key seals how much, and
re-sealing with the active key so an older one can be removed.

A sealed value is AES-256-GCM ciphertext with the id of the key that sealed it in a column
beside it (``DataProtector.seal``). The first key of ``HOTLINE_DATA_KEYS`` seals new values,
the others still open old ones. ``reseal`` opens every value sealed with another key and seals
it again with the active one, ``batch`` rows per transaction, each row updated only if it is
still what was read (a value changed or erased meanwhile is left to its new state, and an
erased value is never brought back). It is idempotent and resumable: a second run finds
nothing, an interrupted one carries on where it stopped. ``usage`` counts the values per key
id: a key no column uses any more (and the fallback journal neither) can be removed.

Recordings: the audio is encrypted with a per-file key, and that key is sealed on the row.
Re-sealing the file key (``rewrap``, 60 bytes a recording) is all a routine retirement needs.
If the old key leaked with a dump of the rows, the file keys it opened are known:
``reencrypt=True`` writes every such recording again under a new file key (a new object in the
store; the old one deleted once the row points at the new one).

Any new sealed column must be added to ``SEALED_COLUMNS`` (``tests/test_keys.py`` finds every
``*key_id`` column of the schema and fails for one missing here).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Column, Table, func, select, update
from sqlalchemy.orm import Session

from dataprotection import DataProtector, DecryptionError, Sealed
from inquiries import message_models as msg
from inquiries.models import Caller, CaseNote
from inquiries.notes import associated_data as note_associated_data
from recordings import crypto
from recordings.models import DELETED, Recording
from recordings.store import MissingObject, RecordingStore, object_key
from routing.models import Handler
from staff.models import StaffUser

#: ``progress(what, done, total)`` after each batch.
Progress = Callable[[str, int, int], None]
BATCH = 500


def _by_hash(column: str) -> Callable[[Any], bytes]:
    return lambda row: getattr(row, column).encode()


def _totp_associated(row: Any) -> bytes:
    # The one definition of a TOTP secret's associated data is StaffUser's method.
    return StaffUser(id=row.id).totp_associated_data()


@dataclass(frozen=True)
class SealedColumn:
    """A sealed column: its table, ciphertext and key-id columns, and how a row's associated
    data (bound into the ciphertext) is made from the columns in ``needs``."""

    name: str
    table: Table
    ciphertext: str
    key_id: str
    associated: Callable[[Any], bytes]
    needs: tuple[str, ...] = ()

    def column(self, name: str) -> Column[Any]:
        return self.table.c[name]


_caller: Table = Caller.__table__  # type: ignore[assignment]
_handler: Table = Handler.__table__  # type: ignore[assignment]
_note: Table = CaseNote.__table__  # type: ignore[assignment]
_staff: Table = StaffUser.__table__  # type: ignore[assignment]
_recording: Table = Recording.__table__  # type: ignore[assignment]
_conversation: Table = msg.Conversation.__table__  # type: ignore[assignment]
_message: Table = msg.Message.__table__  # type: ignore[assignment]
_media: Table = msg.MessageMedia.__table__  # type: ignore[assignment]

SEALED_COLUMNS = (
    SealedColumn("caller_numbers", _caller, "number_ciphertext", "number_key_id",
                 _by_hash("number_hash"), ("number_hash",)),
    SealedColumn("handler_phones", _handler, "phone_ciphertext", "phone_key_id",
                 _by_hash("phone_hash"), ("phone_hash",)),
    SealedColumn("case_notes", _note, "text_ciphertext", "text_key_id",
                 lambda row: note_associated_data(row.inquiry_id), ("inquiry_id",)),
    SealedColumn("totp_secrets", _staff, "totp_ciphertext", "totp_key_id", _totp_associated),
    SealedColumn("conversation_addresses", _conversation, "address_ciphertext", "address_key_id",
                 lambda row: msg.address_associated_data(row.interaction_id), ("interaction_id",)),
    SealedColumn("conversation_names", _conversation, "name_ciphertext", "name_key_id",
                 lambda row: msg.name_associated_data(row.interaction_id), ("interaction_id",)),
    SealedColumn("message_texts", _message, "text_ciphertext", "text_key_id",
                 lambda row: msg.text_associated_data(row.interaction_id), ("interaction_id",)),
    SealedColumn("message_media_sources", _media, "source_ciphertext", "source_key_id",
                 lambda row: msg.media_source_associated_data(row.message_id), ("message_id",)),
    SealedColumn("message_media_keys", _media, "file_key_ciphertext", "file_key_id",
                 lambda row: msg.media_key_associated_data(row.id)),
)  # fmt: skip
#: The recordings' file keys: sealed with the recording id and file id as associated data
#: (``recordings.crypto``), re-sealed by ``crypto.rewrap_key``.
RECORDING_KEYS = "recording_keys"
#: (table, key-id column) of every sealed value ``reseal`` covers.
COVERED = {(c.table.name, c.key_id) for c in SEALED_COLUMNS} | {("recording", "key_id")}


@dataclass
class Outcome:
    """What one column's re-sealing did: values sealed again, skipped because they changed
    meanwhile, and ids of rows that did not open (with any configured key)."""

    resealed: int = 0
    changed: int = 0
    failed: list[int] = field(default_factory=list)


def usage(conn: Session, journal_path: Path | None = None) -> dict[str, Counter[str]]:
    """For each sealed column (and the recordings' file keys, and the fallback journal's
    entries), how many values each key id seals."""
    found: dict[str, Counter[str]] = {}
    for sealed in SEALED_COLUMNS:
        key_id = sealed.column(sealed.key_id)
        rows = conn.execute(
            select(key_id, func.count())
            .where(sealed.column(sealed.ciphertext).is_not(None), key_id.is_not(None))
            .group_by(key_id)
        ).all()
        found[sealed.name] = Counter({row[0]: row[1] for row in rows})
    rows = conn.execute(
        select(_recording.c.key_id, func.count())
        .where(_recording.c.wrapped_key.is_not(None), _recording.c.key_id.is_not(None))
        .group_by(_recording.c.key_id)
    ).all()
    found[RECORDING_KEYS] = Counter({row[0]: row[1] for row in rows})
    if journal_path is not None:
        found["fallback_journal"] = journal_key_ids(journal_path)
    return found


def journal_key_ids(path: Path) -> Counter[str]:
    """The key ids of the fallback journal's entries (``key_id:base64`` lines, ``ivr.journal``)
    and of those set aside as undecryptable (``<journal>.bad``). The journal is emptied by its
    replay (``flask ivr replay-journal``), not re-sealed."""
    counts: Counter[str] = Counter()
    for one in (path, path.with_name(path.name + ".bad")):
        try:
            lines = one.read_bytes().splitlines()
        except FileNotFoundError:
            continue
        for line in lines:
            key_id, sep, _ = line.partition(b":")
            if sep and line.strip():
                counts[key_id.decode("ascii", "replace")] += 1
    return counts


def reseal(
    conn: Session,
    protector: DataProtector,
    store: RecordingStore,
    *,
    batch: int = BATCH,
    reencrypt: bool = False,
    progress: Progress | None = None,
) -> dict[str, Outcome]:
    """Seal again with the active key every value sealed with another: each column in
    ``SEALED_COLUMNS``, then the recordings' file keys (``reencrypt``: the audio too)."""
    results = {}
    for sealed in SEALED_COLUMNS:
        results[sealed.name] = reseal_column(conn, protector, sealed, batch=batch,
                                             progress=progress)  # fmt: skip
    results[RECORDING_KEYS] = reseal_recordings(
        conn, protector, store, batch=batch, reencrypt=reencrypt, progress=progress
    )
    return results


def _pending(key_id: Column[Any], ciphertext: Column[Any], active: str) -> Any:
    """Sealed, with a key other than the active one."""
    return (key_id.is_not(None), key_id != active, ciphertext.is_not(None))


def reseal_column(
    conn: Session,
    protector: DataProtector,
    sealed: SealedColumn,
    *,
    batch: int = BATCH,
    progress: Progress | None = None,
) -> Outcome:
    table, active = sealed.table, protector.active_key_id
    ciphertext, key_id = sealed.column(sealed.ciphertext), sealed.column(sealed.key_id)
    pending = _pending(key_id, ciphertext, active)
    total = conn.execute(select(func.count()).select_from(table).where(*pending)).scalar_one()
    outcome, last_id, seen = Outcome(), 0, 0
    needs = [sealed.column(name) for name in sealed.needs]
    while True:
        rows = conn.execute(
            select(table.c.id, ciphertext.label("ct"), key_id.label("kid"), *needs)
            .where(*pending, table.c.id > last_id)
            .order_by(table.c.id)
            .limit(batch)
        ).all()
        if not rows:
            break
        for row in rows:
            associated = sealed.associated(row)
            try:
                plaintext = protector.open(Sealed(row.kid, row.ct), associated)
            except DecryptionError:
                outcome.failed.append(row.id)
                continue
            again = protector.seal(plaintext, associated)
            done = conn.execute(
                update(table)
                .where(table.c.id == row.id, key_id == row.kid, ciphertext == row.ct)
                .values({sealed.ciphertext: again.ciphertext, sealed.key_id: again.key_id})
            ).rowcount
            outcome.resealed += done
            outcome.changed += 1 - done
        conn.commit()
        last_id, seen = rows[-1].id, seen + len(rows)
        if progress:
            progress(sealed.name, seen, max(total, seen))
    conn.commit()
    return outcome


def reseal_recordings(
    conn: Session,
    protector: DataProtector,
    store: RecordingStore,
    *,
    batch: int = BATCH,
    reencrypt: bool = False,
    progress: Progress | None = None,
) -> Outcome:
    """Seal every recording's file key again with the active key; ``reencrypt``: encrypt the
    audio again under a new file key instead (for a key that may have leaked)."""
    active = protector.active_key_id
    pending = (*_pending(_recording.c.key_id, _recording.c.wrapped_key, active),
               _recording.c.state != DELETED)  # fmt: skip
    total = conn.execute(select(func.count()).select_from(_recording).where(*pending)).scalar_one()
    outcome, last_id, seen = Outcome(), 0, 0
    while True:
        rows = conn.execute(
            select(_recording).where(*pending, _recording.c.id > last_id)
            .order_by(_recording.c.id).limit(batch)
        ).all()  # fmt: skip
        if not rows:
            break
        for row in rows:
            try:
                if reencrypt and row.storage_key is not None:
                    done = _reencrypt(conn, protector, store, row)
                else:
                    done = _rewrap(conn, protector, row)
            except (crypto.TamperedRecording, MissingObject, OSError):  # before any write
                outcome.failed.append(row.id)
                continue
            outcome.resealed += done
            outcome.changed += 1 - done
        conn.commit()
        last_id, seen = rows[-1].id, seen + len(rows)
        if progress:
            progress(RECORDING_KEYS, seen, max(total, seen))
    return outcome


def _rewrap(conn: Session, protector: DataProtector, row: Any) -> int:
    sealed = crypto.rewrap_key(
        protector, row.id, bytes.fromhex(row.file_id), row.key_id, row.wrapped_key
    )
    done = conn.execute(
        update(_recording)
        .where(_recording.c.id == row.id, _recording.c.key_id == row.key_id,
               _recording.c.wrapped_key == row.wrapped_key)
        .values(key_id=sealed.key_id, wrapped_key=sealed.ciphertext)
    ).rowcount  # fmt: skip
    return int(done)


def _reencrypt(conn: Session, protector: DataProtector, store: RecordingStore, row: Any) -> int:
    """The audio decrypted and encrypted again under a new file key, written as a new object
    and read back; the row then points at it (if it still points at the old one: retention or
    the pipeline may have changed it meanwhile), and only then is the old object deleted."""
    size = store.size(row.storage_key)
    if row.stored_size is not None and size != row.stored_size:
        raise crypto.TamperedRecording("the stored file's size is not the one recorded")
    blob = store.read(row.storage_key, 0, size)
    header = crypto.Header.parse(blob)
    data_key = crypto.open_key(protector, row.id, header.file_id, row.key_id, row.wrapped_key)
    audio = crypto.decrypt(blob, data_key)
    del blob
    if row.sha256 and hashlib.sha256(audio).hexdigest() != row.sha256:
        raise crypto.TamperedRecording("the stored audio is not the audio recorded")
    key = crypto.FileKey.generate()
    sealed = crypto.seal_key(protector, row.id, key)
    fresh = crypto.encrypt(audio, key)
    new_key = object_key(row.id, key.file_id)
    store.put(new_key, fresh)
    try:
        check = store.read(new_key, 0, len(fresh))
        if crypto.decrypt(check, key.data_key) != audio:
            raise crypto.TamperedRecording("the re-encrypted file does not read back")
        moved = conn.execute(
            update(_recording)
            .where(_recording.c.id == row.id, _recording.c.storage_key == row.storage_key,
                   _recording.c.key_id == row.key_id)
            .values(storage_key=new_key, file_id=key.file_id.hex(), stored_size=len(fresh),
                    key_id=sealed.key_id, wrapped_key=sealed.ciphertext)
        ).rowcount  # fmt: skip
        conn.commit()
    except BaseException:
        store.delete(new_key)
        raise
    if not moved:
        store.delete(new_key)
        return 0
    store.delete(row.storage_key)
    return 1
