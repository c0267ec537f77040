"""Erasure that erases: once retention has erased a caller, a copy of the database, even with
every key, cannot confirm that their number ever called.

A caller is known by a keyed hash of their number (``HOTLINE_PHONE_HMAC_KEY``) and the number
sealed beside it. Whoever holds a dump and the HMAC key can hash a number they suspect and look
for it: retention therefore erases the hash with the number (``erased:<id>``), and on SQLite
``secure_delete`` plus a checkpoint of the write-ahead log take the old values out of the
database's files too, not only out of its tables.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select, text, update

from dataprotection import erased_hash, normalise_number
from db import db_session, make_engine
from inquiries.models import Caller, CaseNote, Inquiry, Interaction
from inquiries.notes import add_note
from inquiries.service import caller_number
from recordings.jobs import apply_retention
from tests.conftest import PUBLIC_BASE_URL, call_params, new_call_sid
from tests.support import handles
from tests.test_confidentiality import database_blobs

NUMBER = "+79161234567"
LONG_AGO = dt.datetime.now(dt.UTC) - dt.timedelta(days=400)


def places_holding(engine, needles: list[bytes]) -> list[str]:
    """Where in the database (every value of every row; on SQLite, also its files) any of
    ``needles`` occurs."""
    return sorted(
        {where for where, blob in database_blobs(engine) if any(n in blob for n in needles)}
    )


def call_from(web, number: str) -> str:
    """A call from ``number``, as the carrier sends it: signed, through gunicorn."""
    sid = new_call_sid()
    answer = web.signed_post(PUBLIC_BASE_URL, "/voice/incoming", call_params(sid, from_=number))
    assert answer.status == 200, answer.text
    status = call_params(sid, from_=number, CallStatus="completed", CallDuration="42")
    assert web.signed_post(PUBLIC_BASE_URL, "/voice/status", status).status == 200
    return sid


@dataclass(frozen=True)
class Seen:
    """A caller row as the database holds it, and the ids of their cases."""

    id: int
    number_hash: str
    number_ciphertext: bytes | None
    number_key_id: str | None
    inquiries: frozenset[int]


def caller_of(app, call_sid: str) -> Seen:
    with app.app_context():
        caller = (
            db_session()
            .scalar(select(Interaction).where(Interaction.provider_sid == call_sid))
            .inquiry.caller
        )
        return Seen(caller.id, caller.number_hash, caller.number_ciphertext,
                    caller.number_key_id, frozenset(i.id for i in caller.inquiries))  # fmt: skip


def age(app, caller_id: int) -> None:
    """The caller, their cases and calls as if last heard of 400 days ago."""
    svc = handles(app)
    with svc.engine.begin() as conn:
        conn.execute(update(Caller).where(Caller.id == caller_id).values(created_at=LONG_AGO))
        cases = select(Inquiry.id).where(Inquiry.caller_id == caller_id).scalar_subquery()
        conn.execute(
            update(Interaction).where(Interaction.inquiry_id.in_(cases)).values(started_at=LONG_AGO)
        )
        conn.execute(
            update(CaseNote).where(CaseNote.inquiry_id.in_(cases)).values(created_at=LONG_AGO)
        )


def test_a_dump_and_the_hmac_key_cannot_confirm_that_an_erased_number_ever_called(app, served):
    """The attack: steal a database dump (on SQLite: the files) and the HMAC key, hash a number
    you suspect, search the dump for it. Before retention it is found (that is how a returning
    caller is recognised); after retention has erased the caller, it is found nowhere: not in
    any column of any table, not in the database file, not in its write-ahead log; nor is the
    sealed number. The same number calling again is a new caller, unlinked from the old."""
    svc = handles(app)
    web = served("web")
    first = call_from(web, NUMBER)
    caller = caller_of(app, first)
    number_hash = svc.protector.lookup_hash(normalise_number(NUMBER))
    assert caller.number_hash == number_hash  # what the attacker computes
    with app.app_context():
        add_note(db_session(), svc.protector, min(caller.inquiries), "she calls from a kiosk",
                 author_id=None)  # fmt: skip
        db_session().commit()
        note_ciphertext = db_session().scalar(select(CaseNote.text_ciphertext))
    needles = [number_hash.encode(), caller.number_ciphertext, note_ciphertext]
    assert places_holding(svc.engine, needles), "the search finds the hash before the erasure"

    age(app, caller.id)
    with app.app_context():
        counts = apply_retention()  # what the hourly job runs
    assert counts["callers"] == 1 and counts["notes"] == 1

    assert places_holding(svc.engine, needles) == []
    erased = caller_of(app, first)
    assert erased.number_hash == erased_hash(erased.id) and erased.number_ciphertext is None

    again = call_from(web, NUMBER)  # the same number calls again
    back = caller_of(app, again)
    assert back.id != erased.id and back.number_hash == number_hash
    assert caller_number(svc.protector, back) == NUMBER
    assert back.inquiries.isdisjoint(erased.inquiries)
    assert caller_of(app, first).number_hash == erased_hash(erased.id)  # not linked back


def test_a_caller_erased_while_their_hash_was_kept_is_not_linked_again(app, carrier):
    """Callers erased by the earlier retention kept their hash (migration 0014 erases it). Should
    one be left, their number calling again must not bring the old cases back: the old row's
    hash is erased then, and the call starts a new caller."""
    svc = handles(app)
    first = new_call_sid()
    carrier.twiml("/voice/incoming", call_params(first, from_=NUMBER))
    old = caller_of(app, first)
    with svc.engine.begin() as conn:  # erased the old way: the number gone, the hash kept
        conn.execute(
            update(Caller).where(Caller.id == old.id)
            .values(number_ciphertext=None, number_key_id=None)
        )  # fmt: skip
    again = new_call_sid()
    carrier.twiml("/voice/incoming", call_params(again, from_=NUMBER))
    back = caller_of(app, again)
    assert back.id != old.id and caller_number(svc.protector, back) == NUMBER
    assert caller_of(app, first).number_hash == erased_hash(old.id)
    assert caller_of(app, first).number_ciphertext is None


def test_a_withheld_caller_is_not_counted_as_an_erased_number(app, carrier):
    """A caller who withheld their number has none to erase (their hash is of the CallSid,
    which the call's row holds anyway): retention leaves them, and counts numbers only."""
    sid = new_call_sid()
    carrier.twiml("/voice/incoming", call_params(sid, from_="anonymous"))
    caller = caller_of(app, sid)
    age(app, caller.id)
    with app.app_context():
        assert apply_retention()["callers"] == 0
    assert caller_of(app, sid) == caller


def test_a_call_in_the_erasure_window_keeps_its_caller(app, carrier):
    """Retention picks callers not heard of since the cutoff, then erases each: a call that came
    in between (here: after the pick, simulated by a recent call) keeps the caller's number."""
    from recordings.retention import erase_caller_numbers

    svc = handles(app)
    sid = new_call_sid()
    carrier.twiml("/voice/incoming", call_params(sid, from_=NUMBER))
    caller = caller_of(app, sid)
    with svc.engine.begin() as conn:  # an old caller whose last call is today
        conn.execute(update(Caller).where(Caller.id == caller.id).values(created_at=LONG_AGO))
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    with svc.engine.connect() as conn:
        assert erase_caller_numbers(conn, cutoff) == 0
    assert caller_of(app, sid).number_ciphertext is not None


def test_secure_delete_is_on_for_every_pooled_sqlite_connection(tmp_path):
    """Deleted or overwritten content is zeroed in the SQLite file (``PRAGMA secure_delete``) on
    every connection the pool hands out, the first and a reused one alike."""
    engine = make_engine(f"sqlite:///{tmp_path / 'secure.sqlite3'}")
    try:
        with engine.connect() as first, engine.connect() as second:  # two DB-API connections
            assert first.exec_driver_sql("PRAGMA secure_delete").scalar() == 1
            first.rollback()  # (every transaction takes the write lock)
            assert second.exec_driver_sql("PRAGMA secure_delete").scalar() == 1
            second.rollback()
        with engine.connect() as reused:  # back from the pool
            assert reused.exec_driver_sql("PRAGMA secure_delete").scalar() == 1
    finally:
        engine.dispose()


def deleted_value_left_in_files(path, secure_delete: bool | None) -> list[str]:
    """Write rows holding a secret into a new SQLite database made by ``make_engine``, delete
    them, truncate the log; the files that still hold the secret. ``secure_delete``: None keeps
    the engine's setting, False turns it off on the connection that deletes."""
    from db import truncate_wal

    engine = make_engine(f"sqlite:///{path}")
    secret = b"erase-me-" + bytes(range(32, 96))
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)"))
            for n in range(50):
                conn.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": secret + bytes([n])})
        assert truncate_wal(engine) is True
        assert secret in path.read_bytes()  # the search finds it while it is there
        with engine.begin() as conn:
            if secure_delete is False:
                conn.exec_driver_sql("PRAGMA secure_delete=0")
            conn.execute(text("DELETE FROM t"))
        assert truncate_wal(engine) is True
        files = [path, path.with_name(path.name + "-wal")]
        return [p.name for p in files if p.exists() and secret in p.read_bytes()]
    finally:
        engine.dispose()


def test_a_deleted_row_leaves_no_trace_in_the_sqlite_files(tmp_path):
    """``secure_delete`` and ``truncate_wal`` together: a value deleted from a table is gone from
    the database file and its write-ahead log. Without ``secure_delete`` (which some builds of
    SQLite turn on by default, others not) it stays in a free page of the file."""
    assert deleted_value_left_in_files(tmp_path / "wiped.sqlite3", None) == []
    assert deleted_value_left_in_files(tmp_path / "kept.sqlite3", False) == ["kept.sqlite3"]


def test_callers_erased_before_lose_their_hash_at_the_upgrade(tmp_path):
    """Callers erased by the earlier retention kept their hash: migration 0014 erases it, and
    leaves every caller whose number is still kept as it was (and withheld callers, who never
    had a number)."""
    from app import run_migrations

    url = f"sqlite:///{tmp_path / 'upgrade.sqlite3'}"
    run_migrations(url, "c0f1c0de0014-1")  # the schema just before the migration
    engine = make_engine(url)
    kept, erased_before, withheld = "a" * 64, "b" * 64, "c" * 64
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO caller (id, number_hash, number_ciphertext, number_key_id, "
                    "withheld, created_at) VALUES (1, :kept, x'00', 'k', 0, '2025-01-01'), "
                    "(2, :erased, NULL, NULL, 0, '2025-01-01'), "
                    "(3, :withheld, NULL, NULL, 1, '2025-01-01')"
                ),
                {"kept": kept, "erased": erased_before, "withheld": withheld},
            )
        run_migrations(url, "c0f1c0de0014")
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT id, number_hash FROM caller ORDER BY id")).all()
    finally:
        engine.dispose()
    assert [tuple(r) for r in rows] == [(1, kept), (2, erased_hash(2)), (3, withheld)]
