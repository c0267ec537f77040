"""The reconciler: make the Redis routing core match the database after Redis lost its state
(a flush, a restart without persistence, a failover) or missed a change.

Handlers first, then the calls in progress (their handler is on that call again), then the
callers still waiting (``queue_entry`` rows): each is queued again in its original place (its
enqueue time and priority); one whose call has ended meanwhile is closed as abandoned, unless
it asked to be called back. Conversations the same way (``rebuild_chats``, from
``routing.chats.open_conversations``): those held by a handler count towards their load again,
those waiting are queued again in their place. ``routing.jobs.tick`` runs it on a schedule;
``flask routing reconcile`` by hand.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from inquiries.models import FINAL_CALL_STATUSES, Interaction, utcnow
from routing.chats import OpenConversation
from routing.core import RoutingCore
from routing.models import Handler, QueueEntry
from routing.offers import aware
from routing.service import profile
from routing.strategies import UnknownHandler

#: Presences the database may hold that a person did not choose. Without the calls themselves
#: (not rebuilt yet) a handler caught offered, on a call or in wrap-up is restored as available.
SYSTEM_PRESENCES = ("offered", "on_call", "wrap_up")


#: Set once the core was rebuilt; gone after a flush or a restart without persistence.
_MARK = "rebuilt"


def core_is_current(core: RoutingCore) -> bool:
    """False if Redis lost the routing state since the last rebuild."""
    return bool(core.redis.exists(core.prefix + _MARK))


def mark_current(core: RoutingCore) -> None:
    core.redis.set(core.prefix + _MARK, str(int(time.time())))


def rebuild_handlers(
    session: Session, core: RoutingCore, *, now: float | None = None
) -> dict[str, int]:
    """Upsert every active handler's profile into the core and set its presence from the row
    (offline / available / break exactly; offered / on_call / wrap_up as available); inactive
    handlers the core still knows go offline. Touches no other routing key. Idempotent.

    Returns counts: ``handlers`` (active ones restored), one per presence set, ``restored``
    (system presences restored as available) and ``inactive`` (set offline in the core).
    """
    now = time.time() if now is None else now
    counts = {"handlers": 0, "available": 0, "break": 0, "offline": 0, "restored": 0}
    counts["inactive"] = 0
    for handler in session.scalars(select(Handler).order_by(Handler.id)):
        if not handler.active:
            try:
                core.set_presence(str(handler.id), "offline", now=now)
            except UnknownHandler:
                continue
            counts["inactive"] += 1
            continue
        presence = handler.presence
        if presence in SYSTEM_PRESENCES:
            presence = "available"
            counts["restored"] += 1
        core.upsert_handler(profile(handler), now=now)
        core.set_presence(str(handler.id), presence, reason=handler.presence_reason, now=now)
        counts["handlers"] += 1
        counts[presence] += 1
    return counts


def rebuild_calls(session: Session, core: RoutingCore, *, now: float | None = None) -> int:
    """After ``rebuild_handlers``: every call the database says is connected (or a call-back
    being placed) is the handler's current call again in the core. Returns how many."""
    now = time.time() if now is None else now
    entry = QueueEntry.__table__
    rows = session.execute(
        select(entry).where(
            entry.c.state.in_(("connected", "calling_back")), entry.c.handler_id.is_not(None)
        )
    ).all()
    restored = 0
    for row in rows:
        restored += core.restore_call(
            str(row.interaction_id), str(row.handler_id), language=row.language, kind=row.kind,
            priority=float(row.priority), enqueued_at=aware(row.enqueued_at).timestamp(), now=now,
        )  # fmt: skip
    return restored


def rebuild_callers(session: Session, core: RoutingCore) -> dict[str, int]:
    """Queue again every caller the database says waits (or was being offered); close the ones
    whose call already ended (unless they asked to be called back; a call-back between two
    attempts waits until it is due). Idempotent (the core keeps a caller it knows as it is). The
    caller commits nothing: this commits its own updates."""
    counts = {"requeued": 0, "closed": 0, "callbacks_later": 0}
    entry = QueueEntry.__table__
    rows = session.execute(
        select(entry, Interaction.status.label("call_status"))
        .join(Interaction, Interaction.id == entry.c.interaction_id)
        .where(entry.c.state.in_(("waiting", "offered")))
        .order_by(entry.c.enqueued_at, entry.c.id)
    ).all()
    now = utcnow()
    for row in rows:
        if row.callback_requested_at is not None:  # the caller hung up on purpose: keep it
            if row.callback_due_at is not None and aware(row.callback_due_at) > now:
                counts["callbacks_later"] += 1
                continue  # between two attempts: back when due
        elif row.call_status in FINAL_CALL_STATUSES:
            session.execute(
                update(entry)
                .where(entry.c.id == row.id, entry.c.state.in_(("waiting", "offered")))
                .values(state="abandoned", ended_at=utcnow())
            )
            counts["closed"] += 1
            continue
        if core.caller_state(str(row.interaction_id)) is None:
            session.execute(
                update(entry)
                .where(entry.c.id == row.id)
                .values(state="waiting", callback_due_at=None)
            )
        core.enqueue(
            str(row.interaction_id), language=row.language, kind=row.kind,
            priority=float(row.priority), enqueued_at=aware(row.enqueued_at).timestamp(),
        )  # fmt: skip
        counts["requeued"] += 1
    session.commit()
    return counts


def rebuild_chats(
    core: RoutingCore,
    conversations: Iterable[OpenConversation],
    *,
    held: bool,
    now: float | None = None,
) -> dict[str, int]:
    """Conversations (``routing.chats.open_conversations``) back into the core: with ``held``
    (after ``rebuild_handlers``, once Redis lost its state) each held by a handler is theirs
    again; always, each waiting one the core does not know is queued again in its original
    place, and so is one held by a handler the core does not know. Idempotent (the core keeps
    a conversation it knows as it is). Returns counts: ``chats_restored``,
    ``chats_requeued``."""
    now = time.time() if now is None else now
    counts = {"chats_restored": 0, "chats_requeued": 0}
    for chat in conversations:
        attrs = {
            "language": chat.language, "kind": chat.kind, "priority": float(chat.priority),
            "enqueued_at": aware(chat.enqueued_at).timestamp(),
        }  # fmt: skip
        if chat.handler_id is not None:
            if not held:
                continue
            if core.restore_chat(str(chat.conversation_id), str(chat.handler_id), now=now, **attrs):
                counts["chats_restored"] += 1
                continue
        if core.chat_state(str(chat.conversation_id)) is None:
            core.enqueue_chat(str(chat.conversation_id), **attrs)
            counts["chats_requeued"] += 1
    return counts
