"""SECURITY.md promise 2: a caller's number is nowhere in plain text: no row, file, log or key.

Complete calls (and fallback requests) are made from a known number with every log record
captured; then every byte the run left behind is searched: the database (its files on SQLite,
its rows on PostgreSQL), the instance folder (the fallback journal included), the log, every
Redis key and value, and every answer the app gave. The number is also shown to be stored: its
ciphertext opens back to it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import MetaData, Table, inspect, select
from sqlalchemy.engine import make_url

from db import db_session
from inquiries.models import Caller, Interaction
from inquiries.service import caller_number
from logs import RedactPhoneNumbers, configure_logging
from services import services
from tests.conftest import PUBLIC_BASE_URL, call_params, new_call_sid, path_of
from tests.support import handles, run_jobs

NUMBER = "+79161234567"
FORMS = ("+79161234567", "79161234567", "9161234567")
NEEDLES = [form.encode(enc) for form in FORMS for enc in ("utf-8", "utf-16-le", "utf-16-be")]


def hits(blob: bytes) -> list[bytes]:
    """The needles found in ``blob`` (or in it inflated, as RQ stores job data)."""
    found = [needle for needle in NEEDLES if needle in blob]
    with contextlib.suppress(zlib.error):
        found += hits(zlib.decompress(blob)) if blob[:1] == b"\x78" else []
    return found


def as_bytes(value: object) -> bytes:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    return text.encode() + b"\0" + text.encode("utf-16-le") + b"\0" + repr(value).encode()


def file_blobs(root: Path) -> Iterator[tuple[str, bytes]]:
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_socket():
            yield str(path), path.read_bytes()


def database_blobs(engine) -> Iterator[tuple[str, bytes]]:
    """Every value of every row of every table, and on SQLite the database files themselves."""
    with engine.connect() as conn:
        for name in inspect(conn).get_table_names():
            table = Table(name, MetaData(), autoload_with=conn)
            for row in conn.execute(select(table)):
                for column, value in zip(table.columns, row, strict=True):
                    if value is not None:
                        yield f"{name}.{column.name}", as_bytes(value)
    url = make_url(str(engine.url))
    if url.get_backend_name() == "sqlite" and url.database:
        for suffix in ("", "-wal", "-shm", "-journal"):
            path = Path(url.database + suffix)
            if path.exists():
                yield str(path), path.read_bytes()


def redis_blobs(redis) -> Iterator[tuple[str, bytes]]:
    """Every key, its DUMP, and its value read by type (DUMP may compress strings)."""
    for key in redis.scan_iter(count=1000):
        name = key.decode("latin-1")
        yield f"redis key {name}", key
        yield f"redis dump {name}", redis.dump(key) or b""
        kind = redis.type(key)
        if kind == b"string":
            parts = [redis.get(key)]
        elif kind == b"hash":
            parts = [part for item in redis.hgetall(key).items() for part in item]
        elif kind == b"list":
            parts = redis.lrange(key, 0, -1)
        elif kind == b"set":
            parts = list(redis.smembers(key))
        elif kind == b"zset":
            parts = redis.zrange(key, 0, -1)
        else:
            parts = [repr(redis.xrange(key)).encode()] if kind == b"stream" else []
        for part in parts:
            yield f"redis value {name}", part or b""


def leaks(blobs: Iterator[tuple[str, bytes]]) -> dict[str, list[bytes]]:
    found: dict[str, list[bytes]] = {}
    for where, blob in blobs:
        if needles := hits(blob):
            found.setdefault(where, []).extend(needles)
    return found


@pytest.fixture
def log_file(tmp_path: Path) -> Iterator[Path]:
    """Every record at every level, as the code emitted it: the code must not log the number.

    The handler goes first on the root logger, so it sees each record before the app's
    ``RedactPhoneNumbers`` filter (on the other handlers) rewrites it; caplog sees what the app's
    configured handlers see.
    """
    path = tmp_path / "run.log"
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers.insert(0, handler)
    yield path
    root.removeHandler(handler)
    handler.close()


class Recorder:
    """The carrier, keeping every answer (TwiML URLs must not carry the number either)."""

    def __init__(self, carrier):
        self.carrier = carrier
        self.answers: list[bytes] = []

    def twiml(self, path: str, **params: str) -> ET.Element:
        response = self.carrier.post(path, call_params(**params))
        assert response.status_code == 200, response.data
        self.answers.append(response.data)
        return ET.fromstring(response.data)


def only(root: ET.Element, tag: str) -> ET.Element:
    found = root.findall(f".//{tag}")
    assert len(found) == 1, [element.tag for element in root]
    return found[0]


def complete_call(recorder: Recorder, sid: str, answers: list[dict[str, str]]) -> None:
    """Incoming → language → main menu → hand-over → message → recording → call status."""
    root = recorder.twiml("/voice/incoming", call_sid=sid, from_=NUMBER)
    for answer in answers:
        action = path_of(only(root, "Gather").attrib["action"])
        root = recorder.twiml(action, call_sid=sid, from_=NUMBER, **answer)
    record = only(root, "Record")  # the hand-over ended in the message box
    recording = {"RecordingSid": "RE" + sid[2:], "RecordingDuration": "14"}
    media = f"https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/{recording['RecordingSid']}"
    root = recorder.twiml(
        path_of(record.attrib["action"]), call_sid=sid, from_=NUMBER, Digits="hangup",
        RecordingUrl=media, **recording,
    )  # fmt: skip
    assert [verb.tag for verb in root][-1] == "Hangup"  # thanks, goodbye
    recorder.twiml(
        path_of(record.attrib["recordingStatusCallback"]), call_sid=sid, from_=NUMBER,
        RecordingStatus="completed", RecordingUrl=media, **recording,
    )  # fmt: skip
    recorder.twiml("/voice/status", call_sid=sid, from_=NUMBER, CallStatus="completed",
                   CallDuration="95")  # fmt: skip


def fallback_call(recorder: Recorder, sid: str) -> None:
    """What the carrier sends to the fallback URL while the app is down."""
    error = {"ErrorCode": "11205", "ErrorUrl": PUBLIC_BASE_URL + "/voice/incoming"}
    recorder.twiml("/voice/fallback", call_sid=sid, from_=NUMBER, **error)
    recording = {
        "RecordingSid": "RE" + sid[2:],
        "RecordingDuration": "9",
        "RecordingUrl": "https://api.twilio.com/2010-04-01/Recordings/RE" + sid[2:],
    }
    recorder.twiml("/voice/fallback?step=recorded", call_sid=sid, from_=NUMBER, **recording)
    recorder.twiml("/voice/fallback?step=recording", call_sid=sid, from_=NUMBER,
                   RecordingStatus="completed", **recording)  # fmt: skip


BY_KEYS = [{"Digits": "1"}, {"Digits": "0"}]
BY_SPEECH = [
    {"SpeechResult": "по-русски пожалуйста", "Confidence": "0.91"},
    {"SpeechResult": "оператор пожалуйста, мой номер 89161234567", "Confidence": "0.87"},
]


def test_the_number_is_nowhere_in_plain_text(app, carrier, caplog, log_file, tmp_path) -> None:
    caplog.set_level(logging.DEBUG)  # RQ, the app, every library: everything
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")  # SQL with its parameters
    recorder = Recorder(carrier)
    settings = handles(app).settings
    calls = [new_call_sid() for _ in range(4)]
    for sid, answers in zip(calls, [BY_KEYS, BY_SPEECH, BY_KEYS, BY_SPEECH], strict=True):
        complete_call(recorder, sid, answers)

    fallback_sid = new_call_sid()
    fallback_call(recorder, fallback_sid)
    assert settings.journal_path.stat().st_size > 0
    assert leaks(file_blobs(settings.instance_path)) == {}  # the journal is sealed

    # Healthy again: the next call enqueues the journal's replay; a worker runs it.
    replay_sid = new_call_sid()
    complete_call(recorder, replay_sid, BY_KEYS)
    svc = handles(app)
    assert svc.redis.dbsize() > 0
    # The messages' recording jobs run too; their carrier is a closed local port, not Twilio.
    svc.settings = svc.settings.replace(twilio_api_base_url="http://127.0.0.1:9")
    with app.app_context():
        assert run_jobs(app)
    assert not settings.journal_path.read_bytes()  # replayed into the database

    found = leaks(database_blobs(svc.engine))
    found |= leaks(file_blobs(tmp_path))  # instance folder, journal, log file
    found |= leaks(redis_blobs(svc.redis))
    found |= leaks((f"answer {i}", answer) for i, answer in enumerate(recorder.answers))
    records = [(r.getMessage() + "\n" + (r.exc_text or "")).encode() for r in caplog.records]
    found |= leaks([("caplog", caplog.text.encode()), *(("caplog record", r) for r in records)])
    assert found == {}
    assert log_file.stat().st_size > 0
    assert "sqlalchemy" in log_file.read_text(encoding="utf-8")  # the log really was captured

    # Stored all the same: one pseudonymous caller whose ciphertext opens to the number.
    with app.app_context():
        session = db_session()
        callers = session.scalars(select(Caller)).all()
        assert len(callers) == 1
        assert caller_number(services().protector, callers[0]) == NUMBER
        assert hits(callers[0].number_ciphertext or b"") == []
        sids = set(session.scalars(select(Interaction.provider_sid)))
        assert sids == {*calls, fallback_sid, replay_sid}
        inquiries = {i.inquiry.caller_id for i in session.scalars(select(Interaction))}
        assert inquiries == {callers[0].id}


def redacted_output(tmp_path: Path, emit) -> str:
    """What a handler set up by the app's ``configure_logging`` writes for ``emit(logger)``."""
    path = tmp_path / "redacted.log"
    handler = logging.FileHandler(path, encoding="utf-8")
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        configure_logging("INFO")  # adds the filter to every handler of the root logger
        assert any(isinstance(f, RedactPhoneNumbers) for f in handler.filters)
        emit(logging.getLogger("hotline.test"))
    finally:
        root.removeHandler(handler)
        handler.close()
    return path.read_text(encoding="utf-8")


@pytest.mark.parametrize("number", [NUMBER, "79161234567", "+7 (916) 123-45-67", "8 916 123 45 67"])
def test_redaction_filter_redacts_a_number_in_a_message(tmp_path, number) -> None:
    output = redacted_output(tmp_path, lambda log: log.warning("caller %s asked for %s", number, 2))
    assert output.strip() == "caller [number] asked for 2"


def test_redaction_filter_redacts_a_number_in_a_traceback(tmp_path) -> None:
    def emit(log: logging.Logger) -> None:
        try:
            try:
                raise KeyError(f"no route for {NUMBER}")
            except KeyError as exc:
                raise RuntimeError("dispatch of 79161234567 failed") from exc
        except RuntimeError:
            log.exception("hand-over failed")

    output = redacted_output(tmp_path, emit)
    assert "hand-over failed" in output
    assert "Traceback (most recent call last)" in output
    assert "KeyError: 'no route for [number]'" in output
    assert "RuntimeError: dispatch of [number] failed" in output
    assert hits(output.encode()) == []
