"""What the messaging webhooks do with a message, whatever its channel: keep it once, in the
person's thread, on their case; walk the text menu; queue the automatic replies.

Each function makes its writes and commits, then enqueues the replies' ids (the jobs re-read
the rows): commit, then enqueue. A repeated update (the same carrier key) changes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from flask import current_app

from db import db_session
from inquiries.conversations import Conversations, Thread
from inquiries.service import CallLog
from jobs import enqueue
from messaging.menu import LANGUAGE, MAX_ATTEMPTS, TOPIC, Answer, TextMenu
from services import services

log = logging.getLogger(__name__)
SEND_JOB = "messaging.jobs.send_message"
DELETE_JOB = "messaging.jobs.delete_message_at_carrier"
MEDIA_JOB = "messaging.jobs.process_media"
ANSWER_CALLBACK_JOB = "messaging.jobs.answer_callback"


def menu() -> TextMenu:
    return current_app.extensions["messaging_menu"]  # type: ignore[no-any-return]


def conversations() -> Conversations:
    return Conversations(CallLog(db_session(), services().protector))


@dataclass
class Media:
    content_type: str
    source: str  # Twilio's MediaUrl, Telegram's file_id (sealed when stored)


@dataclass
class Inbound:
    """One message as a channel delivered it (nothing here is logged)."""

    channel: str
    carrier_key: str
    #: The hash input of the sender (``+…``, ``telegram:<id>``); None: no usable address.
    identity: str | None
    #: Where replies go (``+…``, ``whatsapp:+…``, a chat id); None: nowhere.
    address: str | None
    text: str
    name: str | None = None
    media: list[Media] = field(default_factory=list)
    chat_message_id: int | None = None


def enqueue_sends(message_ids: list[int]) -> None:
    for message_id in message_ids:
        enqueue(SEND_JOB, message_id, job_id=f"message-send-{message_id}")


def receive(inbound: Inbound) -> bool:
    """Keep an inbound message and answer the menu; False for a repeat (nothing written)."""
    threads = conversations()
    if threads.message_exists(inbound.carrier_key):
        db_session().rollback()
        return False
    thread = threads.open_thread(
        inbound.channel,
        inbound.identity,
        inbound.address,
        name=inbound.name,
        withheld_key=inbound.carrier_key,
        menu_node=LANGUAGE,
    )
    message_id = threads.add_inbound(
        thread,
        inbound.carrier_key,
        inbound.text,
        num_media=len(inbound.media),
        chat_message_id=inbound.chat_message_id,
    )
    if message_id is None:  # the same update, in a parallel request: that one keeps it
        db_session().rollback()
        return False
    media_ids = [
        threads.add_media(message_id, position, item.content_type, item.source)
        for position, item in enumerate(inbound.media)
    ]
    if not thread.created:
        threads.seen(thread)
    threads.calls.add_event(
        thread.call_state(),
        "MESSAGE_IN",
        {"channel": inbound.channel, "message": message_id, "media": len(inbound.media),
         "new_thread": thread.created},
        dedupe_key=f"message:{inbound.carrier_key}",
    )  # fmt: skip
    replies: list[int] = []
    if thread.created and not thread.withheld:
        replies.append(_ask(threads, thread, LANGUAGE))
    elif thread.menu_node in (LANGUAGE, TOPIC) and inbound.text:  # a photo alone answers nothing
        answer = menu().understand(thread.menu_node, inbound.text)
        replies += _step(threads, thread, answer, inbound.carrier_key)
    db_session().commit()
    enqueue_sends(replies)
    if media_ids:  # fetched, stored, then the message deleted at Twilio
        for media_id in media_ids:
            enqueue(MEDIA_JOB, media_id, job_id=f"message-media-{media_id}")
    elif inbound.channel != "telegram":  # kept here: Twilio's copy may go
        enqueue(DELETE_JOB, message_id, job_id=f"message-delete-{message_id}")
    return True


def press(channel: str, identity: str, update_key: str, data: str) -> bool:
    """A Telegram button: the answer to the thread's open question, once per update. A button
    of a question already answered (an old message) changes nothing."""
    threads = conversations()
    thread = threads.find_open(channel, services().protector.lookup_hash(identity))
    if thread is None:
        db_session().rollback()
        return False
    answer = menu().pressed(data)
    fresh = threads.calls.add_event(
        thread.call_state(), "MENU_BUTTON", {"node": answer.node if answer else None},
        dedupe_key=f"button:{update_key}",
    )  # fmt: skip
    replies: list[int] = []
    if fresh and answer is not None and answer.node == thread.menu_node:
        replies = _step(threads, thread, answer, update_key)
    db_session().commit()
    enqueue_sends(replies)
    return fresh


def membership(channel: str, identity: str, update_key: str, *, blocked: bool) -> None:
    """The person blocked or unblocked the bot: noted on their open thread, once per update."""
    threads = conversations()
    thread = threads.find_open(channel, services().protector.lookup_hash(identity))
    if thread is not None and threads.calls.add_event(
        thread.call_state(), "BOT_BLOCKED" if blocked else "BOT_UNBLOCKED", {},
        dedupe_key=f"member:{update_key}",
    ):  # fmt: skip
        threads.set_blocked(thread, blocked)
    db_session().commit()


def _ask(threads: Conversations, thread: Thread, node: str, *, invalid: bool = False) -> int:
    text = menu().question(node, thread.language, invalid=invalid)
    return threads.add_outbound(thread, text, menu_node=node)


def _step(threads: Conversations, thread: Thread, answer: Answer | None, key: str) -> list[int]:
    """Record the answer to the open question (as the IVR does: node, answer, choice), set
    what it sets, and ask the next question (or close the menu). Not understood: ask again,
    and after ``MAX_ATTEMPTS`` take the default."""
    node = thread.menu_node or LANGUAGE
    state = thread.call_state()
    calls = threads.calls
    if answer is None:
        calls.record_ivr_step(
            state, node, None, dedupe_key=f"menu:{key}", problem="invalid",
            attempt=thread.menu_attempt, channel=thread.channel,
        )  # fmt: skip
        if thread.menu_attempt < MAX_ATTEMPTS:
            threads.set_menu(thread, node, thread.menu_attempt + 1)
            return [_ask(threads, thread, node, invalid=True)]
        answer = menu().fallback(node)
    else:
        calls.record_ivr_step(
            state, node, answer.given, dedupe_key=f"menu:{key}", choice=answer.key,
            channel=thread.channel,
        )  # fmt: skip
    if node == LANGUAGE:
        calls.set_language(state, answer.value)
        thread.language = answer.value
        threads.set_menu(thread, TOPIC)
        return [_ask(threads, thread, TOPIC)]
    calls.set_kind(state, answer.value, menu().kind_priority[answer.value])
    threads.set_menu(thread, None)
    calls.add_event(state, "MENU_DONE", {"channel": thread.channel},
                    dedupe_key=f"menu-done:{thread.interaction_id}")  # fmt: skip
    return [threads.add_outbound(thread, menu().closing(thread.language))]
