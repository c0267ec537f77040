"""What the hotline writes to its disk is readable by its own user only: the SQLite database and
its WAL, shared memory and journal files, the instance folder and its generated secrets, the
fallback journal (and its set-aside lines), the recording store. Another local account (a
shared host, a backup agent, a compromised service) must not read callers' data off the disk.

Each test runs with the usual umask (022), under which a file created without care is 0644.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from app import run_migrations
from db import db_session, make_engine
from ivr import journal
from recordings.store import LocalRecordingStore, object_key
from services import services
from settings import load_settings


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def sqlite_files(path: Path) -> dict[str, int]:
    """The database's files that exist now, with their modes."""
    found = {}
    for suffix in ("", "-wal", "-shm", "-journal"):
        one = path.with_name(path.name + suffix)
        if one.exists():
            found[suffix or "db"] = mode(one)
    return found


def write_something(url: str) -> None:
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE IF NOT EXISTS probe (x INTEGER)"))
            conn.execute(text("INSERT INTO probe (x) VALUES (1)"))
    finally:
        engine.dispose()


def test_a_new_sqlite_database_and_its_wal_and_shm_are_0600(tmp_path):
    path = tmp_path / "hotline.sqlite3"
    url = f"sqlite:///{path}"
    run_migrations(url)  # the release step: Alembic's engine creates the file
    assert mode(path) == 0o600
    engine = make_engine(url)
    with engine.begin() as conn:  # the app's engine: WAL, a write
        conn.execute(text("CREATE TABLE probe (x INTEGER)"))
        conn.execute(text("INSERT INTO probe (x) VALUES (1)"))
        files = sqlite_files(path)  # the WAL and shared memory exist while a connection is open
    engine.dispose()
    assert files == {"db": 0o600, "-wal": 0o600, "-shm": 0o600}


def test_an_existing_database_readable_by_others_is_narrowed_to_0600(tmp_path):
    path = tmp_path / "old.sqlite3"
    url = f"sqlite:///{path}"
    write_something(url)
    for suffix in ("", "-wal", "-shm", "-journal"):  # as an older version left them
        one = path.with_name(path.name + suffix)
        one.touch()
        one.chmod(0o644)
    make_engine(url).dispose()  # what the app does first when it starts
    assert sqlite_files(path) == {"db": 0o600, "-wal": 0o600, "-shm": 0o600, "-journal": 0o600}
    write_something(url)  # and the database still works


def test_the_instance_folder_and_the_generated_secrets_are_private(tmp_path):
    instance = tmp_path / "fresh-instance"
    load_settings({"HOTLINE_ENV": "development", "HOTLINE_INSTANCE_PATH": str(instance)})
    assert mode(instance) == 0o700
    assert mode(instance / "secrets.json") == 0o600


def test_the_fallback_journal_and_its_set_aside_lines_are_0600(app, settings):
    path = settings.journal_path
    with app.app_context():
        journal.append(path, services().protector, "entered", {"CallSid": "CA" + "1" * 32})
        assert mode(path) == 0o600
        with path.open("ab") as fh:
            fh.write(b"k9:bm90IGEgc2VhbGVkIGxpbmU=\n")  # a line that does not decrypt
        journal.replay(path, services().protector, db_session())
    bad = path.with_name(path.name + ".bad")
    assert bad.read_bytes().startswith(b"k9:") and mode(bad) == 0o600


def test_the_recording_store_is_0700_folders_and_0600_files(app, settings):
    root = settings.instance_path / "recordings"
    store = LocalRecordingStore(root)
    key = object_key(7, os.urandom(16))
    store.put(key, b"HREC" + bytes(60))
    assert mode(settings.instance_path) == 0o700
    assert mode(root) == 0o700 and mode(root / "7") == 0o700
    assert mode(root / key) == 0o600
