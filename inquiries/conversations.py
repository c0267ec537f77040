"""Message threads' write side: find or open a person's thread, keep each message once, move an
outbound message's status forward.

A sender is found by the keyed hash of their channel identity, through the same ``caller`` rows
as calls: SMS and WhatsApp by the phone number with the calls' HMAC (so a person who called and
then writes from that number joins their open case), Telegram by its user id under the input
``telegram:<id>`` (never equal to a number). One thread is open per person and channel
(``conversation.open_key``). Like ``CallLog`` (whose connection and helpers this uses), every
method is safe under carrier retries: unique keys with ``INSERT … ON CONFLICT DO NOTHING``, and
conditional UPDATEs that only move a status forward.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, bindparam, delete, or_, select, update

from dataprotection import Sealed
from inquiries import message_models as m
from inquiries.models import CallEvent, Inquiry, Interaction, utcnow
from inquiries.service import CallLog, CallState

_inquiry: Table = Inquiry.__table__  # type: ignore[assignment]
_interaction: Table = Interaction.__table__  # type: ignore[assignment]
_conversation: Table = m.Conversation.__table__  # type: ignore[assignment]
_message: Table = m.Message.__table__  # type: ignore[assignment]
_media: Table = m.MessageMedia.__table__  # type: ignore[assignment]
_event: Table = CallEvent.__table__  # type: ignore[assignment]

#: The hash input of a Telegram user: never an E.164 number, so never a caller's hash.
TELEGRAM_IDENTITY = "telegram:{}"
#: An interaction's status while its thread is open, and after.
THREAD_OPEN, THREAD_ENDED = "open", "ended"

_FIND_THREAD = (
    select(
        _conversation.c.id,
        _conversation.c.interaction_id,
        _conversation.c.channel,
        _conversation.c.contact_hash,
        _conversation.c.menu_node,
        _conversation.c.menu_attempt,
        _interaction.c.inquiry_id,
        _interaction.c.provider_sid,
        _interaction.c.ivr_path,
        _inquiry.c.language,
        _inquiry.c.kind,
        _inquiry.c.status.label("inquiry_status"),
    )
    .select_from(_conversation.join(_interaction).join(_inquiry))
    .where(_conversation.c.open_key == bindparam("key"))
)
_REOPEN_INQUIRY = (
    update(_inquiry)
    .where(_inquiry.c.id == bindparam("inquiry"), _inquiry.c.status == "new")
    .values(status="open", updated_at=bindparam("now"))
)
_DROP_INTERACTION = delete(_interaction).where(_interaction.c.id == bindparam("interaction"))
_SEEN = update(_conversation).where(_conversation.c.id == bindparam("conversation"))
_SET_MENU = (
    update(_conversation)
    .where(_conversation.c.id == bindparam("conversation"))
    .values(menu_node=bindparam("node"), menu_attempt=bindparam("attempt"))
)
_MESSAGE_EXISTS = select(_message.c.id).where(_message.c.carrier_key == bindparam("key"))
_MARK_SENT = (
    update(_message)
    .where(_message.c.id == bindparam("message"), _message.c.carrier_key.is_(None))
    .values(
        carrier_key=bindparam("key"),
        chat_message_id=bindparam("chat_message"),
        sent_at=bindparam("now"),
        status_at=bindparam("now"),
        status=bindparam("new_status"),
    )
)
_MARK_FAILED = (
    update(_message)
    .where(_message.c.id == bindparam("message"), _message.c.status == "pending")
    .values(status="failed", error_code=bindparam("code"), status_at=bindparam("now"))
)
_COUNT_ATTEMPT = (
    update(_message)
    .where(_message.c.id == bindparam("message"))
    .values(send_attempts=_message.c.send_attempts + 1)
)


def _status_update(status: str):
    """``UPDATE message SET status … WHERE carrier_key = :key AND status IN (<lower>)``."""
    rank = m.MESSAGE_STATUS_RANK[status]
    lower = [s for s, r in m.MESSAGE_STATUS_RANK.items() if r < rank]
    values: dict[str, Any] = {"status": status, "status_at": bindparam("now")}
    if status in ("failed", "undelivered"):
        values["error_code"] = bindparam("code")
    return (
        update(_message)
        .where(
            _message.c.carrier_key == bindparam("key"),
            _message.c.direction == m.OUTBOUND,
            or_(*(_message.c.status == s for s in lower)),
        )
        .values(**values)
    )


_STATUS_UPDATES = {
    status: _status_update(status)
    for status, rank in m.MESSAGE_STATUS_RANK.items()
    if rank > 0  # nothing moves back to "pending"
}


@dataclass
class Thread:
    """What the messaging webhooks need to know about one open thread."""

    conversation_id: int
    interaction_id: int
    inquiry_id: int
    provider_sid: str
    channel: str
    contact_hash: str
    menu_node: str | None
    menu_attempt: int = 1
    language: str | None = None
    kind: str = "other"
    inquiry_status: str = "new"
    ivr_path: list[dict[str, Any]] = field(default_factory=list)
    created: bool = False
    #: No address to answer to (an SMS sender id that is not a number): never replied to.
    withheld: bool = False

    def call_state(self) -> CallState:
        """The thread as ``CallLog``'s methods take it (events, menu steps, language, kind)."""
        return CallState(
            interaction_id=self.interaction_id,
            inquiry_id=self.inquiry_id,
            provider_sid=self.provider_sid,
            status=THREAD_OPEN,
            direction="inbound",
            ivr_path=list(self.ivr_path),
            language=self.language,
            kind=self.kind,
            inquiry_status=self.inquiry_status,
            withheld=self.withheld,
        )


class Conversations:
    """Message threads over a ``CallLog``'s connection (one webhook's or job's transaction)."""

    def __init__(self, calls: CallLog):
        self.calls = calls
        self.protector = calls.protector

    # -- who writes ------------------------------------------------------------------------
    def caller_for(self, identity: str) -> tuple[int, bool, str]:
        """The caller for ``identity`` (``CallLog.caller_by_identity``): (id, created, hash)."""
        return self.calls.caller_by_identity(identity)

    # -- threads ---------------------------------------------------------------------------
    def find_open(self, channel: str, contact_hash: str) -> Thread | None:
        row = self.calls.run(_FIND_THREAD, {"key": f"{channel}:{contact_hash}"}).first()
        if row is None:
            return None
        return Thread(
            conversation_id=row.id,
            interaction_id=row.interaction_id,
            inquiry_id=row.inquiry_id,
            provider_sid=row.provider_sid,
            channel=row.channel,
            contact_hash=row.contact_hash,
            menu_node=row.menu_node,
            menu_attempt=row.menu_attempt,
            language=row.language,
            kind=row.kind,
            inquiry_status=row.inquiry_status,
            ivr_path=list(row.ivr_path or []),
        )

    def open_thread(
        self,
        channel: str,
        identity: str | None,
        address: str | None,
        *,
        name: str | None = None,
        withheld_key: str = "",
        menu_node: str | None = None,
    ) -> Thread:
        """The person's open thread on ``channel``, or a new one (its interaction on their
        open case, or a new case). ``identity`` None: a sender without a usable address, a
        caller and a case of their own keyed on ``withheld_key`` (the carrier's message id)."""
        if identity is None:
            caller_id, new_caller = self.calls.withheld_caller(withheld_key)
            contact_hash, open_key = f"withheld:{caller_id}", None
        else:
            caller_id, new_caller, contact_hash = self.caller_for(identity)
            open_key = f"{channel}:{contact_hash}"
            found = self.find_open(channel, contact_hash)
            if found is not None:
                return found
        inquiry_id, new_case = self.calls.open_inquiry_for(caller_id, new_caller=new_caller)
        now = utcnow()
        interaction_id = self.calls.run(
            _interaction.insert().returning(_interaction.c.id),
            {
                "inquiry_id": inquiry_id,
                "provider_sid": f"{channel}:{secrets.token_hex(16)}",
                "channel": channel,
                "direction": "inbound",
                "status": THREAD_OPEN,
                "started_at": now,
                "ivr_path": [],
            },
        ).scalar_one()
        values: dict[str, Any] = {
            "interaction_id": interaction_id,
            "channel": channel,
            "open_key": open_key,
            "contact_hash": contact_hash,
            "menu_node": menu_node if address else None,
            "menu_attempt": 1,
            "last_inbound_at": now,
            "created_at": now,
        }
        values.update(self._sealed("address", address, m.address_associated_data(interaction_id)))
        values.update(self._sealed("name", name, m.name_associated_data(interaction_id)))
        conversation_id = self.calls.insert_ignoring_duplicates(_conversation, values, "open_key")
        if conversation_id is None:
            # another request opened this person's thread first: theirs is the thread
            self.calls.run(_DROP_INTERACTION, {"interaction": interaction_id})
            found = self.find_open(channel, contact_hash)
            if found is None:  # pragma: no cover - the conflicting row was just there
                raise RuntimeError("thread vanished after a conflict")
            return found
        if not new_case:  # a person known to the line: their case is being worked on
            self.calls.run(_REOPEN_INQUIRY, {"inquiry": inquiry_id, "now": now})
        thread = self.find_open(channel, contact_hash) if open_key else None
        if thread is None:  # withheld: not findable by key
            thread = Thread(
                conversation_id=conversation_id,
                interaction_id=interaction_id,
                inquiry_id=inquiry_id,
                provider_sid="",
                channel=channel,
                contact_hash=contact_hash,
                menu_node=None,
                withheld=True,
            )
        thread.created = True
        return thread

    def _sealed(self, column: str, value: str | None, associated: bytes) -> dict[str, Any]:
        if not value:
            return {}
        sealed = self.protector.seal_text(value, associated=associated)
        return {f"{column}_ciphertext": sealed.ciphertext, f"{column}_key_id": sealed.key_id}

    def seen(self, thread: Thread) -> None:
        """The person wrote just now (WhatsApp's 24-hour window runs from here)."""
        params = {"conversation": thread.conversation_id, "last": utcnow()}
        self.calls.run(_SEEN.values(last_inbound_at=bindparam("last")), params)

    def set_menu(self, thread: Thread, node: str | None, attempt: int = 1) -> None:
        self.calls.run(
            _SET_MENU, {"conversation": thread.conversation_id, "node": node, "attempt": attempt}
        )
        thread.menu_node, thread.menu_attempt = node, attempt

    def set_blocked(self, thread: Thread, blocked: bool) -> None:
        when = utcnow() if blocked else None
        params = {"conversation": thread.conversation_id, "when": when}
        self.calls.run(_SEEN.values(blocked_at=bindparam("when")), params)

    def address(self, conversation: Any) -> str | None:
        """The reply address of a conversation row (sealed), for the send job only."""
        if conversation.address_ciphertext is None or conversation.address_key_id is None:
            return None
        sealed = Sealed(conversation.address_key_id, conversation.address_ciphertext)
        associated = m.address_associated_data(conversation.interaction_id)
        return self.protector.open_text(sealed, associated=associated)

    # -- messages --------------------------------------------------------------------------
    def message_exists(self, carrier_key: str) -> bool:
        return self.calls.run(_MESSAGE_EXISTS, {"key": carrier_key}).first() is not None

    def add_inbound(
        self,
        thread: Thread,
        carrier_key: str,
        text: str,
        *,
        num_media: int = 0,
        chat_message_id: int | None = None,
    ) -> int | None:
        """Keep an inbound message once per carrier key: its id, or None if already kept."""
        values = self._message_values(thread, m.INBOUND, text, m.RECEIVED)
        values.update(carrier_key=carrier_key, num_media=num_media, chat_message_id=chat_message_id)
        return self.calls.insert_ignoring_duplicates(_message, values, "carrier_key")

    def add_outbound(
        self,
        thread: Thread,
        text: str,
        *,
        menu_node: str | None = None,
        staff_id: int | None = None,
    ) -> int:
        """A message to send (``pending``): commit, then enqueue its id."""
        values = self._message_values(thread, m.OUTBOUND, text, "pending")
        values.update(menu_node=menu_node, staff_id=staff_id)
        return self.calls.run(_message.insert().returning(_message.c.id), values).scalar_one()

    def _message_values(
        self, thread: Thread, direction: str, text: str, status: str
    ) -> dict[str, Any]:
        now = utcnow()
        values: dict[str, Any] = {
            "interaction_id": thread.interaction_id,
            "channel": thread.channel,
            "direction": direction,
            "status": status,
            "num_media": 0,
            "send_attempts": 0,
            "created_at": now,
            "status_at": now,
        }
        values.update(self._sealed("text", text, m.text_associated_data(thread.interaction_id)))
        return values

    def add_media(
        self, message_id: int, position: int, content_type: str, source: str
    ) -> int | None:
        sealed = self.protector.seal_text(
            source, associated=m.media_source_associated_data(message_id)
        )
        values = {
            "message_id": message_id,
            "position": position,
            "content_type": content_type[:128] or "application/octet-stream",
            "source_ciphertext": sealed.ciphertext,
            "source_key_id": sealed.key_id,
            "state": "pending",
            "attempts": 0,
            "created_at": utcnow(),
        }
        return self.calls.run(_media.insert().returning(_media.c.id), values).scalar_one()

    def apply_status(self, carrier_key: str, status: str, error_code: str | None = None) -> bool:
        """Move an outbound message's status forward; a late or repeated one changes nothing."""
        statement = _STATUS_UPDATES.get(status)
        if statement is None:
            return False
        params = {"key": carrier_key, "now": utcnow(), "code": error_code or None}
        return self.calls.run(statement, params).rowcount > 0

    def mark_sent(
        self, message_id: int, carrier_key: str, status: str, chat_message_id: int | None = None
    ) -> bool:
        """The carrier accepted the message: its key, once (a second run changes nothing)."""
        if m.MESSAGE_STATUS_RANK.get(status, 0) < 1:
            status = "queued"
        params = {
            "message": message_id,
            "key": carrier_key,
            "chat_message": chat_message_id,
            "now": utcnow(),
            "new_status": status,
        }
        return self.calls.run(_MARK_SENT, params).rowcount > 0

    def mark_failed(self, message_id: int, code: str) -> bool:
        params = {"message": message_id, "code": code[:16], "now": utcnow()}
        return self.calls.run(_MARK_FAILED, params).rowcount > 0

    def status_events(self, prefix: str) -> list[dict[str, Any]]:
        """The data of the events whose dedupe key starts with ``prefix`` (early statuses)."""
        query = select(_event.c.data).where(_event.c.dedupe_key.startswith(prefix, autoescape=True))
        return [dict(row.data or {}) for row in self.calls.run(query)]

    def count_attempt(self, message_id: int) -> None:
        self.calls.run(_COUNT_ATTEMPT, {"message": message_id})
