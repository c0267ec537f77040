"""Attachments: fetched from the carrier, encrypted into the media store, then deleted there.

``process(media_id)`` (job ``messaging.jobs.process_media``, idempotent): a ``pending`` row's
bytes are fetched — Twilio's media URL with the account's credentials (HTTP basic auth, as for
recordings), Telegram's file by ``getFile`` + download — at most ``MEDIA_MAX_BYTES``; encrypted
in the recordings' format (``recordings.crypto``: 64 KiB AES-GCM segments, a per-file key sealed
with the data key on the row), written to ``instance/message-media/`` (the recordings' store
class, a root of its own so ids never meet), read back and compared; the row is ``stored`` by a
conditional UPDATE (a loser deletes its object). Then ``delete_at_carrier(message)``: once every
attachment of a Twilio message is stored, the message (and with it its media) is deleted at
Twilio (404 counts; 20009, not finished yet, raises: RQ retries). Telegram: a bot can delete
nothing on Telegram's servers (``deleteMessage`` would remove the message from the person's
chat too), so its media rows stay ``stored``.
"""

from __future__ import annotations

import hashlib
import logging

import requests
from sqlalchemy import func, select, update
from twilio.base.exceptions import TwilioRestException

from dataprotection import Sealed
from db import db_session
from inquiries import message_models as m
from jobs import enqueue
from messaging.outbound import telegram_client
from recordings import crypto
from recordings.store import LocalRecordingStore, object_key
from services import services

log = logging.getLogger(__name__)
MEDIA_MAX_BYTES = 25 * 1024 * 1024  # Twilio: 5 MB images, 16 MB WhatsApp media; Telegram 20 MB
TIMEOUT_S = (5, 60)
_media = m.MessageMedia.__table__
_message = m.Message.__table__
MEDIA_JOB = "messaging.jobs.process_media"
DELETE_JOB = "messaging.jobs.delete_message_at_carrier"


class MediaUnavailable(RuntimeError):
    """The carrier did not hand the bytes over (a status, a size over the cap)."""


def media_store() -> LocalRecordingStore:
    return LocalRecordingStore(services().settings.instance_path / "message-media")


def enqueue_media(media_ids: list[int]) -> None:
    for media_id in media_ids:
        enqueue(MEDIA_JOB, media_id, job_id=f"message-media-{media_id}")


def enqueue_deletion(carrier_key: str) -> None:
    """After commit: delete the message of ``carrier_key`` at the carrier (a job)."""
    found = (
        db_session()
        .execute(select(_message.c.id).where(_message.c.carrier_key == carrier_key))
        .scalar()
    )
    db_session().rollback()
    if found is not None:
        enqueue(DELETE_JOB, found, job_id=f"message-delete-{found}")


def _row(media_id: int):
    query = (
        select(_media, _message.c.channel, _message.c.carrier_key)
        .select_from(_media.join(_message, _message.c.id == _media.c.message_id))
        .where(_media.c.id == media_id)
    )
    return db_session().execute(query).first()


def process(media_id: int) -> str:
    session = db_session()
    row = _row(media_id)
    if row is None or row.state != "pending":
        session.rollback()
        if row is not None and row.state == "stored" and row.channel != "telegram":
            enqueue(DELETE_JOB, row.message_id, job_id=f"message-delete-{row.message_id}")
        return "skipped"
    protector = services().protector
    source = protector.open_text(
        Sealed(row.source_key_id, row.source_ciphertext),
        associated=m.media_source_associated_data(row.message_id),
    )
    session.execute(
        update(_media).where(_media.c.id == media_id).values(attempts=_media.c.attempts + 1)
    )
    session.commit()  # nothing open while the carrier is asked
    data = _fetch_telegram(source) if row.channel == "telegram" else _fetch_twilio(source)
    key = crypto.FileKey.generate()
    blob = crypto.encrypt(data, key)
    storage_key = object_key(media_id, key.file_id)
    store = media_store()
    store.put(storage_key, blob)
    if (
        hashlib.sha256(store.read(storage_key, 0, len(blob) + 1)).digest()
        != hashlib.sha256(blob).digest()
    ):
        store.delete(storage_key)
        raise MediaUnavailable("the stored media does not read back as written")
    sealed = protector.seal(key.data_key, associated=m.media_key_associated_data(media_id))
    won = session.execute(
        update(_media)
        .where(_media.c.id == media_id, _media.c.state == "pending")
        .values(
            state="stored", storage_key=storage_key, size=len(data),
            file_key_ciphertext=sealed.ciphertext, file_key_id=sealed.key_id,
        )
    ).rowcount  # fmt: skip
    session.commit()
    if not won:
        store.delete(storage_key)
        return "skipped"
    if row.channel != "telegram":
        enqueue(DELETE_JOB, row.message_id, job_id=f"message-delete-{row.message_id}")
    return "stored"


def _fetch_twilio(url: str) -> bytes:
    settings = services().settings
    auth = (settings.twilio_account_sid, settings.twilio_auth_token)
    try:
        with requests.get(url, auth=auth, timeout=TIMEOUT_S, stream=True) as response:
            if response.status_code != 200:
                raise MediaUnavailable(f"the carrier answered {response.status_code}")
            return _read_capped(response)
    except requests.RequestException as exc:
        raise MediaUnavailable(type(exc).__name__) from None


def _fetch_telegram(file_id: str) -> bytes:
    client = telegram_client()
    return client.download(client.get_file(file_id), MEDIA_MAX_BYTES)


def _read_capped(response: requests.Response) -> bytes:
    chunks, size = [], 0
    for chunk in response.iter_content(64 * 1024):
        size += len(chunk)
        if size > MEDIA_MAX_BYTES:
            raise MediaUnavailable("larger than MEDIA_MAX_BYTES")
        chunks.append(chunk)
    return b"".join(chunks)


def open_media(media_id: int) -> bytes:
    """The stored attachment's bytes (for the console; its caller audits the view)."""
    row = _row(media_id)
    if row is None or row.storage_key is None:
        raise MediaUnavailable("not stored")
    data_key = services().protector.open(
        Sealed(row.file_key_id, row.file_key_ciphertext),
        associated=m.media_key_associated_data(media_id),
    )
    store = media_store()
    blob = store.read(row.storage_key, 0, store.size(row.storage_key))
    return crypto.decrypt(blob, data_key)


def delete_at_carrier(message_id: int) -> str:
    """Delete a Twilio message (its media with it) once all its attachments are stored."""
    session = db_session()
    message = session.execute(
        select(_message.c.channel, _message.c.carrier_key).where(_message.c.id == message_id)
    ).first()
    waiting = session.execute(
        select(func.count())
        .select_from(_media)
        .where(_media.c.message_id == message_id, _media.c.state.in_(("pending", "failed")))
    ).scalar_one()
    session.rollback()
    if message is None or message.channel == "telegram" or not message.carrier_key:
        return "skipped"
    if waiting:
        return "waiting"
    sid = message.carrier_key.removeprefix("twilio:")
    try:
        services().twilio.messages(sid).delete()
    except TwilioRestException as exc:
        if exc.status != 404:
            raise  # 20009 (not finished) and the rest: RQ retries
    session.execute(
        update(_media)
        .where(_media.c.message_id == message_id, _media.c.state == "stored")
        .values(state="carrier_deleted")
    )
    session.commit()
    return "deleted"
