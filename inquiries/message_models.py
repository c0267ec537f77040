"""Message threads: a conversation is an ``Interaction`` whose channel is sms, whatsapp or
telegram; its messages and their media are rows of their own.

- ``Conversation``: one per messaging interaction. ``open_key`` (``{channel}:{contact hash}``,
  unique, NULL once the thread ends) makes one open thread per person and channel; the address
  a reply needs (a phone number, a Telegram chat id) and the sender's name are sealed; the text
  menu's position (``menu_node``) lives here, its answers on the interaction's ``ivr_path``.
- ``Message``: one per message in either direction. ``carrier_key`` (unique) is the channel
  plus the carrier's id — ``sms:SM…``, ``whatsapp:SM…``, ``telegram:update:<update_id>`` for
  what comes in, ``telegram:out:<interaction>:<message_id>`` for what goes out — so a
  repeated update is one row. The text is sealed (data key, the interaction as associated
  data). ``status`` only moves forward (``MESSAGE_STATUS_RANK``).
- ``MessageMedia``: an attachment: its type and size, the carrier's reference (sealed: a
  Twilio media URL is readable by whoever holds it), where it lies in the encrypted store.

Nothing here is readable at rest: no number, chat id, name or text in a column.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from db import Base, UTCDateTime, utcnow

MESSAGE_CHANNELS = ("sms", "whatsapp", "telegram")
INBOUND, OUTBOUND = "in", "out"
#: Outbound statuses by progress: a callback moves a message forward only. ``pending``: ours,
#: not yet handed to the carrier. ``failed``/``undelivered`` are final (nothing moves them).
#: Inbound messages are ``received``.
MESSAGE_STATUS_RANK = {
    "pending": 0,
    "accepted": 1,
    "scheduled": 1,
    "queued": 1,
    "sending": 2,
    "sent": 2,
    "delivered": 3,
    "read": 4,
    "failed": 9,
    "undelivered": 9,
    "canceled": 9,
}
FINAL_MESSAGE_STATUSES = frozenset(s for s, rank in MESSAGE_STATUS_RANK.items() if rank == 9)
RECEIVED = "received"
#: Media states: fetched and stored encrypted, then deleted at the carrier.
MEDIA_STATES = ("pending", "stored", "carrier_deleted", "failed")


class Conversation(Base):
    """A message thread (the messaging side of one ``Interaction``)."""

    __tablename__ = "conversation"

    id: Mapped[int] = mapped_column(primary_key=True)
    interaction_id: Mapped[int] = mapped_column(ForeignKey("interaction.id"), unique=True)
    channel: Mapped[str] = mapped_column(String(16))
    #: ``{channel}:{contact_hash}`` while the thread is open (one per person and channel);
    #: NULL once it has ended.
    open_key: Mapped[str | None] = mapped_column(String(96), unique=True)
    #: The keyed hash of the channel identity (the caller's ``number_hash``).
    contact_hash: Mapped[str] = mapped_column(String(64), index=True)
    #: Where a reply goes: ``+…`` (sms), ``whatsapp:+…``, the Telegram chat id; sealed.
    address_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    address_key_id: Mapped[str | None] = mapped_column(String(32))
    #: The sender's name / username as the channel gives it (WhatsApp ProfileName, Telegram
    #: first name and @username); sealed.
    name_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    name_key_id: Mapped[str | None] = mapped_column(String(32))
    #: The text menu's open question (``language``, ``topic``); NULL once answered.
    menu_node: Mapped[str | None] = mapped_column(String(32))
    menu_attempt: Mapped[int] = mapped_column(Integer, default=1)
    #: The person's last message (WhatsApp allows free-form replies for 24 h after it).
    last_inbound_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    #: The person blocked the bot (Telegram ``my_chat_member``: kicked); cleared on unblock.
    blocked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class Message(Base):
    """One message of a thread, in either direction."""

    __tablename__ = "message"

    id: Mapped[int] = mapped_column(primary_key=True)
    interaction_id: Mapped[int] = mapped_column(ForeignKey("interaction.id"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    direction: Mapped[str] = mapped_column(String(4))
    #: ``{channel}:{the carrier's id}``; NULL for an outbound message not yet accepted.
    carrier_key: Mapped[str | None] = mapped_column(String(96), unique=True)
    #: Telegram's ``message_id`` in its chat (to delete it later); NULL for Twilio.
    chat_message_id: Mapped[int | None] = mapped_column(Integer)
    text_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    text_key_id: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    error_code: Mapped[str | None] = mapped_column(String(16))
    #: The staff member who wrote an outbound message; NULL for the menu's automatic ones.
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    #: The text menu's question this message asks (outbound, automatic); NULL otherwise.
    menu_node: Mapped[str | None] = mapped_column(String(32))
    num_media: Mapped[int] = mapped_column(Integer, default=0)
    send_attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    status_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    #: Retention dropped the text (the row stays).
    erased_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class MessageMedia(Base):
    """An attachment of an inbound message, fetched into the encrypted store."""

    __tablename__ = "message_media"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("message.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    content_type: Mapped[str] = mapped_column(String(128))
    size: Mapped[int | None] = mapped_column(Integer)
    #: The carrier's reference: Twilio's media URL, or Telegram's file_id; sealed.
    source_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    source_key_id: Mapped[str | None] = mapped_column(String(32))
    #: The object in the media store (the recordings' encrypted format), and its file key
    #: sealed with the data key (``media_key_associated_data``).
    storage_key: Mapped[str | None] = mapped_column(String(128))
    file_key_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    file_key_id: Mapped[str | None] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), default="pending")
    failure: Mapped[str | None] = mapped_column(String(32))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


def text_associated_data(interaction_id: int) -> bytes:
    """What a message's ciphertext is bound to: its thread (moved elsewhere, it does not open)."""
    return f"message:{interaction_id}".encode()


def address_associated_data(interaction_id: int) -> bytes:
    return f"conversation-address:{interaction_id}".encode()


def name_associated_data(interaction_id: int) -> bytes:
    return f"conversation-name:{interaction_id}".encode()


def media_source_associated_data(message_id: int) -> bytes:
    return f"message-media:{message_id}".encode()


def media_key_associated_data(media_id: int) -> bytes:
    return f"message-media-key:{media_id}".encode()
