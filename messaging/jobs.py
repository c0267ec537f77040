"""RQ jobs of messaging: sending one message, answering a pressed Telegram button. Ids only in
their arguments (a message's row id, Telegram's callback query id): never an address or text."""

from __future__ import annotations

from messaging import media, outbound


def send_message(message_id: int) -> str:
    """Send one pending message through its carrier (safe to run twice)."""
    return outbound.send(int(message_id))


def answer_callback(query_id: str) -> None:
    """``answerCallbackQuery`` for a pressed button."""
    outbound.answer_callback(str(query_id))


def process_media(media_id: int) -> str:
    """Fetch one attachment, store it encrypted (safe to run twice)."""
    return media.process(int(media_id))


def delete_message_at_carrier(message_id: int) -> str:
    """Delete a Twilio message and its media once everything of it is stored here."""
    return media.delete_at_carrier(int(message_id))
