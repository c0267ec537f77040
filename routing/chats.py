"""Conversations (SMS, WhatsApp, Telegram) in the routing: what the database must tell the
reconciler, and the settings the messaging side routes with.

The routing core (``RoutingCore.enqueue_chat``, ``accept_chat``, ``decline_chat``,
``end_chat``, ``requeue_chat``, ``remove_chat``, ``chat_load``; see docs/ARCHITECTURE.md,
"Routing") holds the live state. As for calls, the database is the truth: the messaging side
commits a conversation's row first, then tells the core; after Redis lost its state the
reconciler (``routing.reconcile.rebuild_chats``) asks ``open_conversations`` what to rebuild.

The conversation tables belong to the messaging package, built beside this one: until its rows
exist, ``open_conversations`` returns none. Whoever adds them implements it here with a query
on ``inquiries``' models (``messaging`` sits above ``routing`` in the import order, so routing
may not import it).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from settings import Settings


@dataclass(frozen=True)
class OpenConversation:
    """A conversation waiting for a handler (``handler_id`` None) or held by one.

    ``enqueued_at`` is when it first waited (its place in the queue, kept across a rebuild);
    ``priority`` in seconds of wait, as for calls; ``kind`` one of the inquiry kinds.
    """

    conversation_id: int
    language: str
    kind: str
    priority: float
    enqueued_at: dt.datetime
    handler_id: int | None = None


def open_conversations(session: Session) -> Sequence[OpenConversation]:
    """Every conversation the database says waits for a handler, is offered to one, or is
    held by one (not yet closed), oldest first. Offered ones count as waiting (``handler_id``
    None): a lost offer is made again.

    Today: none. The conversation rows come with the messaging package (issue 18); the query
    goes here then."""
    del session
    return ()


def offer_timeout_s(settings: Settings) -> float:
    """Seconds a conversation offer waits for the handler's accept before it counts as missed
    and goes to someone else (``RoutingCore.expire_chat_offers``, run by ``routing.jobs``)."""
    return float(settings.routing_chat_offer_timeout_s)
