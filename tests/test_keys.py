"""Key rotation (``flask keys …``): every sealed value moves to the new data key, after which the
old key can be removed and everything still opens; phone hashes move to a new HMAC key.

Each test seals real data through the app's own code (a call's caller, a handler, a case note,
a staff member's TOTP secret, a stored recording) under one set of keys, then runs the command
the operator runs (Flask's CLI runner), then opens everything with the keys left.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from dataclasses import dataclass

import pytest
from sqlalchemy import LargeBinary, String, select, update

from dataprotection import Sealed as DataSealed
from dataprotection import erased_hash, normalise_number
from db import Base, db_session
from inquiries.conversations import Conversations
from inquiries.message_models import Message, text_associated_data
from inquiries.models import Caller, CaseNote, Inquiry
from inquiries.notes import add_note, notes_of
from inquiries.service import CallLog, caller_number
from ivr import journal
from keyrotation import sealed
from recordings import crypto, playback
from recordings.models import CARRIER_DELETED, Recording
from recordings.store import object_key, recording_store
from routing.models import Handler
from routing.service import create_handler, handler_phone
from settings import SettingsError, load_settings
from staff import totp
from staff.accounts import create_user
from staff.models import AuditEvent, StaffUser
from tests.conftest import call_params, new_call_sid
from tests.support import handles

A, B = os.urandom(32), os.urandom(32)
NUMBER = "+79161234567"
HANDLER_PHONE = "+380501234567"
NOTE = "прийшла з сином, чекає на дзвінок"
MESSAGE = "пишу з підвалу, зв'язок поганий"


@pytest.fixture
def with_keys(app, app_factory, settings):
    """``with_keys(b=B, a=A)``: an app (same database, Redis, instance folder) whose data keys
    are these, the first one active."""
    return lambda **keys: app_factory(settings.replace(data_keys=dict(keys)))


@dataclass
class Sealed:
    """What was sealed, to be opened again."""

    caller_id: int
    inquiry_id: int
    handler_id: int
    user_id: int
    totp_secret: str
    recording_id: int
    audio: bytes


def a_call(flask_app, number: str = NUMBER) -> tuple[int, int, int]:
    """(caller id, case id, call id) of a new call from ``number``, as the voice webhook makes
    them."""
    with flask_app.app_context():
        calls = CallLog(db_session(), handles(flask_app).protector)
        state, _ = calls.find_or_open(new_call_sid(), number)
        db_session().commit()
        caller_id = db_session().scalar(
            select(Inquiry.caller_id).where(Inquiry.id == state.inquiry_id)
        )
        return caller_id, state.inquiry_id, state.interaction_id


def a_stored_recording(flask_app, interaction_id: int, audio: bytes) -> int:
    """A recording encrypted and stored as the pipeline does it (``recordings.pipeline``)."""
    svc = handles(flask_app)
    store = recording_store(svc.settings)
    with flask_app.app_context():
        db = db_session()
        row = Recording(recording_sid="RE" + secrets.token_hex(16), interaction_id=interaction_id,
                        kind="message", state=CARRIER_DELETED)  # fmt: skip
        db.add(row)
        db.flush()
        key = crypto.FileKey.generate()
        wrapped = crypto.seal_key(svc.protector, row.id, key)
        blob = crypto.encrypt(audio, key)
        row.storage_key = object_key(row.id, key.file_id)
        store.put(row.storage_key, blob)
        row.file_id, row.stored_size = key.file_id.hex(), len(blob)
        row.key_id, row.wrapped_key = wrapped.key_id, wrapped.ciphertext
        row.content_type, row.size_bytes = "audio/ogg", len(audio)
        row.sha256 = hashlib.sha256(audio).hexdigest()
        db.commit()
        return row.id


def seal_everything(flask_app) -> Sealed:
    svc = handles(flask_app)
    caller_id, inquiry_id, interaction_id = a_call(flask_app)
    with flask_app.app_context():
        db = db_session()
        add_note(db, svc.protector, inquiry_id, NOTE, author_id=None)
        handler_id = create_handler(db, svc.protector, display_name="Olena", languages=["uk"],
                                    skills=["surrender"], phone=HANDLER_PHONE)  # fmt: skip
        enrolment = create_user(db, svc.protector, username="ada", display_name="Ada",
                                role="admin")  # fmt: skip
        secret = totp.new_secret()  # as her first login's enrolment leaves it
        totp.seal_secret(svc.protector, db.get(StaffUser, enrolment.user_id), secret)
        threads = Conversations(CallLog(db, svc.protector))  # the same person, on WhatsApp
        thread = threads.open_thread("whatsapp", NUMBER, "whatsapp:" + NUMBER, name="Olha")
        written = threads.add_inbound(thread, "twilio:SM" + "1" * 32, MESSAGE)
        threads.add_media(written, 0, "image/png", "https://media.example/ME1")
        db.commit()
    audio = os.urandom(3 * crypto.SEGMENT_SIZE + 123)
    recording_id = a_stored_recording(flask_app, interaction_id, audio)
    return Sealed(caller_id, inquiry_id, handler_id, enrolment.user_id, secret,
                  recording_id, audio)  # fmt: skip


def everything_opens(flask_app, data: Sealed) -> None:
    svc = handles(flask_app)
    with flask_app.app_context():
        db = db_session()
        assert caller_number(svc.protector, db.get(Caller, data.caller_id)) == NUMBER
        assert handler_phone(svc.protector, db.get(Handler, data.handler_id)) == HANDLER_PHONE
        assert [n.text for n in notes_of(db, svc.protector, data.inquiry_id)] == [NOTE]
        assert totp.open_secret(svc.protector, db.get(StaffUser, data.user_id)) == data.totp_secret
        (message,) = db.scalars(select(Message))
        opened = svc.protector.open_text(
            DataSealed(message.text_key_id, message.text_ciphertext),
            associated=text_associated_data(message.interaction_id),
        )
        assert opened == MESSAGE
        recording = db.get(Recording, data.recording_id)
        store = recording_store(svc.settings)
        assert playback.read_all(recording, store=store, protector=svc.protector) == data.audio
        assert store.keys(f"{data.recording_id}/") == [recording.storage_key]


def key_ids(flask_app) -> dict[str, dict[str, int]]:
    with flask_app.app_context():
        found = sealed.usage(db_session())
    return {what: dict(counts) for what, counts in found.items()}


def cli(flask_app, *args: str):
    return flask_app.test_cli_runner().invoke(args=["keys", *args])


def test_seal_with_a_rotate_to_b_reseal_remove_a_and_everything_still_opens(with_keys):
    data = seal_everything(with_keys(a=A))
    rotated = with_keys(b=B, a=A)  # B seals new data; A still opens the old
    before = cli(rotated, "usage")
    assert before.exit_code == 0, before.output
    assert "key 'a': still seals 9 value(s)" in before.output

    result = cli(rotated, "reseal")
    assert result.exit_code == 0, result.output
    for what in ("caller_numbers", "handler_phones", "case_notes", "totp_secrets",
                 "recording_keys"):  # fmt: skip
        assert f"{what}: 1 re-sealed" in result.output
    assert "key 'a': not in use: it may be removed from HOTLINE_DATA_KEYS" in result.output
    assert key_ids(rotated) == {
        "caller_numbers": {"b": 1}, "handler_phones": {"b": 1}, "case_notes": {"b": 1},
        "totp_secrets": {"b": 1}, "recording_keys": {"b": 1},
        "conversation_addresses": {"b": 1}, "conversation_names": {"b": 1},
        "message_texts": {"b": 1}, "message_media_sources": {"b": 1},
        "message_media_keys": {},  # no media stored: tests/messaging/test_media_e2e.py has
    }  # fmt: skip

    again = cli(rotated, "reseal")  # idempotent: nothing left to do
    assert again.exit_code == 0 and again.output.count(": 0 re-sealed") == 10, again.output

    everything_opens(with_keys(b=B), data)  # A removed
    with rotated.app_context():
        rows = db_session().scalars(
            select(AuditEvent).where(AuditEvent.action == "keys.reseal").order_by(AuditEvent.id)
        )
        assert [(r.details["caller_numbers_resealed"], r.staff_user_id) for r in rows] == [
            (1, None), (0, None),
        ]  # fmt: skip


def test_reencrypting_recordings_replaces_the_audio_files_and_their_keys(with_keys):
    """For a data key that may have leaked with a copy of the rows (and so the file keys it
    sealed): each recording is encrypted again under a new file key, the old file deleted."""
    old = with_keys(a=A)
    data = seal_everything(old)
    with old.app_context():
        before = db_session().get(Recording, data.recording_id)
        old_object, old_file_key = before.storage_key, crypto.open_key(
            handles(old).protector, before.id, bytes.fromhex(before.file_id), before.key_id,
            before.wrapped_key,
        )  # fmt: skip
    rotated = with_keys(b=B, a=A)
    result = cli(rotated, "reseal", "--reencrypt-recordings", "--batch", "1")
    assert result.exit_code == 0, result.output
    assert "recording_keys: 1 re-sealed" in result.output
    everything_opens(with_keys(b=B), data)
    store = recording_store(handles(rotated).settings)
    with rotated.app_context():
        after = db_session().get(Recording, data.recording_id)
        assert after.storage_key != old_object and after.file_id != before.file_id
        blob = store.read(after.storage_key, 0, after.stored_size)
    assert store.keys(f"{data.recording_id}/") == [after.storage_key]  # the old file is gone
    with pytest.raises(crypto.TamperedRecording):  # the leaked file key opens nothing now
        crypto.decrypt(blob, old_file_key)


def test_an_interrupted_reseal_carries_on_where_it_stopped(with_keys):
    old = with_keys(a=A)
    _, inquiry_id, _ = a_call(old)
    with old.app_context():
        for n in range(5):
            add_note(db_session(), handles(old).protector, inquiry_id, f"note {n}", author_id=None)
        db_session().commit()
    rotated = with_keys(b=B, a=A)
    notes = next(c for c in sealed.SEALED_COLUMNS if c.name == "case_notes")

    def stop_after_two(_what: str, done: int, _total: int) -> None:
        if done >= 2:
            raise KeyboardInterrupt  # the operator's Ctrl-C, after a committed batch

    with rotated.app_context(), pytest.raises(KeyboardInterrupt):
        sealed.reseal_column(db_session(), handles(rotated).protector, notes, batch=2,
                             progress=stop_after_two)  # fmt: skip
    assert key_ids(rotated)["case_notes"] == {"a": 3, "b": 2}
    result = cli(rotated, "reseal", "--batch", "2")
    assert result.exit_code == 0 and "case_notes: 3 re-sealed" in result.output, result.output
    with with_keys(b=B).app_context() as ctx:
        texts = [n.text for n in notes_of(db_session(), handles(ctx.app).protector, inquiry_id)]
    assert texts == [f"note {n}" for n in range(5)]


def test_a_value_that_does_not_open_is_reported_and_keeps_its_key(with_keys):
    old = with_keys(a=A)
    data = seal_everything(old)
    with handles(old).engine.begin() as conn:  # one note damaged
        damaged = conn.execute(select(CaseNote.id, CaseNote.text_ciphertext)).one()
        flipped = bytes([damaged.text_ciphertext[0] ^ 1]) + damaged.text_ciphertext[1:]
        conn.execute(update(CaseNote).values(text_ciphertext=flipped))
    result = cli(with_keys(b=B, a=A), "reseal")
    assert result.exit_code == 1
    assert f"case_notes: 1 do not open with any configured key (ids {damaged.id})" in result.output
    assert "caller_numbers: 1 re-sealed" in result.output
    assert key_ids(old)["case_notes"] == {"a": 1}
    assert data.caller_id


def test_the_fallback_journal_keeps_a_key_in_use_until_it_is_replayed(with_keys):
    old = with_keys(a=A)
    settings = handles(old).settings
    journal.append(settings.journal_path, handles(old).protector, "entered",
                   call_params(new_call_sid()))  # fmt: skip
    rotated = with_keys(b=B, a=A)
    result = cli(rotated, "reseal")
    assert result.exit_code == 0, result.output
    assert "fallback_journal" in result.output
    assert "key 'a': still seals 1 value(s)" in result.output
    replay = rotated.test_cli_runner().invoke(args=["ivr", "replay-journal"])
    assert replay.exit_code == 0, replay.output
    assert "key 'a': not in use" in cli(rotated, "usage").output


def test_every_sealed_column_of_the_schema_is_resealed():
    """A new sealed column (a ``…key_id`` beside a binary column) must be added to
    ``keyrotation.sealed.SEALED_COLUMNS``, or an old key could never be retired."""
    found = set()
    for table in Base.metadata.tables.values():
        binary = [c for c in table.columns if isinstance(c.type, LargeBinary)]
        for column in table.columns:
            if column.name.endswith("key_id") and isinstance(column.type, String) and binary:
                found.add((table.name, column.name))
    assert found and found <= sealed.COVERED, found - sealed.COVERED


# -- the HMAC key ------------------------------------------------------------------------


def b64(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).decode()


H1, H2 = os.urandom(32), os.urandom(32)


@pytest.fixture
def with_hmac(app, app_factory, settings):
    """``with_hmac(H2, old=H1)``: an app whose phone HMAC key is the first, the old one set."""

    def make(key: bytes, old: bytes | None = None):
        return app_factory(settings.replace(phone_hmac_key=key, phone_hmac_key_old=old))

    return make


def hash_under(key: bytes, number: str) -> str:
    from keyrotation.rehash import hasher

    return hasher(key).lookup_hash(normalise_number(number))


def caller_row(flask_app, caller_id: int) -> Caller:
    with flask_app.app_context():
        row = db_session().get(Caller, caller_id)
        db_session().expunge(row)
        return row


def test_rehash_moves_every_hash_to_the_new_key_and_merges_who_called_meanwhile(with_hmac):
    before = with_hmac(H1)
    x_id, x_case, _ = a_call(before, "+79160000001")
    y_id, y_case, _ = a_call(before, "+79160000002")
    with before.app_context():
        protector = handles(before).protector
        handler_id = create_handler(
            db_session(),
            protector,
            display_name="Olena",
            languages=["uk"],
            skills=["surrender"],
            phone=HANDLER_PHONE,
        )
        token = "withheld:" + secrets.token_hex(20)  # a row not hashed from its number
        other = protector.seal_text("anonymous", associated=token.encode())
        db_session().add(
            Caller(
                number_hash=token, number_ciphertext=other.ciphertext, number_key_id=other.key_id
            )
        )
        db_session().commit()  # fmt: skip
    erased_id, _, _ = a_call(before, "+79160000003")
    with handles(before).engine.begin() as conn:
        conn.execute(update(Caller).where(Caller.id == erased_id).values(
            number_hash=erased_hash(erased_id), number_ciphertext=None, number_key_id=None))  # fmt: skip

    during = with_hmac(H2, old=H1)  # every process now hashes with H2
    y_new, y_new_case, _ = a_call(during, "+79160000002")  # Y calls before the rehash ran
    assert y_new != y_id

    dry = cli(during, "rehash", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "caller_numbers: 1 would be rehashed, 1 merged" in dry.output
    assert caller_row(during, x_id).number_hash == hash_under(H1, "+79160000001")

    result = cli(during, "rehash", "--batch", "1")
    assert result.exit_code == 0, result.output
    assert "caller_numbers: 1 rehashed, 1 merged into a newer row, 1 already under the new " \
           "key, 1 not hashed from their number (left)" in result.output  # fmt: skip
    assert "handler_phones: 1 rehashed" in result.output

    protector = handles(during).protector
    x = caller_row(during, x_id)
    assert x.number_hash == hash_under(H2, "+79160000001")
    assert caller_number(protector, x) == "+79160000001"
    old_y = caller_row(during, y_id)
    assert old_y.number_hash == erased_hash(y_id) and old_y.number_ciphertext is None
    with during.app_context():
        cases = set(db_session().scalars(select(Inquiry.id).where(Inquiry.caller_id == y_new)))
        handler = db_session().get(Handler, handler_id)
        assert handler.phone_hash == hash_under(H2, HANDLER_PHONE)
        assert handler_phone(protector, handler) == HANDLER_PHONE
        assert db_session().scalar(select(Caller.number_hash).where(Caller.number_hash == token))
    assert cases == {y_case, y_new_case}  # Y's old case follows them
    assert caller_row(during, erased_id).number_hash == erased_hash(erased_id)

    again = cli(during, "rehash")
    assert again.exit_code == 0 and "caller_numbers: 0 rehashed" in again.output, again.output

    after = with_hmac(H2)  # the old key destroyed: X calling again finds their case
    assert a_call(after, "+79160000001")[:2] == (x_id, x_case)


def test_rehash_moves_a_persons_open_thread_with_them(with_hmac):
    """A WhatsApp thread opened under the old key is found again under the new one: the
    conversation's hash and open key move with the caller's."""
    from inquiries.message_models import Conversation, Message
    from tests.conftest import Carrier
    from tests.messaging.support import Texter

    writer = "whatsapp:+380671112233"
    before = with_hmac(H1)
    Texter(Carrier(before.test_client()), writer).send("перше")
    result = cli(with_hmac(H2, old=H1), "rehash")
    assert result.exit_code == 0, result.output
    after = with_hmac(H2)
    Texter(Carrier(after.test_client()), writer).send("друге")
    with handles(after).session_factory() as session:
        (conversation,) = session.scalars(select(Conversation))
        assert conversation.contact_hash == hash_under(H2, "+380671112233")
        assert conversation.open_key == f"whatsapp:{conversation.contact_hash}"
        inbound = session.scalars(select(Message).where(Message.direction == "in")).all()
        assert {m.interaction_id for m in inbound} == {conversation.interaction_id}
        assert len(inbound) == 2


def test_rehash_needs_the_old_key_and_says_so(with_hmac):
    result = cli(with_hmac(H2), "rehash")
    assert result.exit_code == 1
    assert "set HOTLINE_PHONE_HMAC_KEY_OLD" in result.output


def test_the_old_hmac_key_setting_is_checked(tmp_path):
    environ = {"HOTLINE_ENV": "test", "HOTLINE_INSTANCE_PATH": str(tmp_path),
               "HOTLINE_PHONE_HMAC_KEY": b64(H1)}  # fmt: skip
    assert load_settings(environ).phone_hmac_key_old is None
    assert load_settings({**environ, "HOTLINE_PHONE_HMAC_KEY_OLD": b64(H2)}).phone_hmac_key_old \
        == H2  # fmt: skip
    for value, message in ((b64(H1), "is HOTLINE_PHONE_HMAC_KEY"), (b64(b"short"), "32 bytes"),
                           ("not base64!", "not base64")):  # fmt: skip
        with pytest.raises(SettingsError, match=message):
            load_settings({**environ, "HOTLINE_PHONE_HMAC_KEY_OLD": value})
