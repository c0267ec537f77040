"""Routing jobs (RQ): dispatch waiting callers to handlers, end a handler's wrap-up.

Event-driven: a dispatch is enqueued when a caller joins, an offer ends without an accept, or a
handler becomes available; ``tick`` runs periodically as the safety net (``app.py``). Each
job re-reads Redis and the database; running one twice places no second offer (the core hands
each pair out once).
"""

from __future__ import annotations

import time

from sqlalchemy.orm import Session

from db import db_session
from routing import callbacks, chats, offers, reconcile
from routing.core import RoutingCore
from services import services


def dispatch() -> int:
    """Pair waiting callers with free handlers and place the offer calls; how many pairs."""
    expired, made = _expire_and_dispatch(db_session(), offers.core(), time.time())
    return made + expired


def end_wrap_up(handler_id: int) -> str | None:
    """The handler's wrap-up time is over: available again (or what they asked for meanwhile),
    then a dispatch for whoever waits, here (not another job: the next caller is rung now)."""
    change = offers.core().end_wrap_up(str(handler_id), time.time(), dispatch=True)
    conn = db_session()
    offers.place_offers(conn, change.offers)  # the core paired them in the same step
    conn.commit()
    return change.current


def callback_due(interaction_id: int) -> bool:
    """A call-back's retry time has come: back in its old place, then a dispatch."""
    requeued = callbacks.requeue_due(db_session(), interaction_id)
    if requeued:
        offers.enqueue_dispatch(f"callback-due:{interaction_id}:{int(time.time())}")
    return requeued


def tick() -> dict[str, int]:
    """The safety net, every ROUTING_TICK_S (a periodic job, ``app.py``): whatever events were
    lost, a caller is delayed, never lost.

    - Redis lost the routing state (flushed, restarted without persistence, failed over: the
      reconciler's mark is gone): handlers and waiting callers are rebuilt from the database.
    - Otherwise callers the database says wait but the core does not know (a crash between the
      commit and Redis) are queued again; call-backs whose retry time has passed too.
    - Offers whose no-answer callback never came expire, and conversation offers not accepted
      within ROUTING_CHAT_OFFER_TIMEOUT_S; then a dispatch runs here.
    """
    session = db_session()
    core = offers.core()
    counts: dict[str, int] = {"rebuilt": 0}
    current = reconcile.core_is_current(core)
    if not current:
        counts.update(reconcile.rebuild_handlers(session, core))
        counts["calls"] = reconcile.rebuild_calls(session, core)
        counts["rebuilt"] = 1
    counts.update(reconcile.rebuild_callers(session, core))
    conversations = chats.open_conversations(session)
    counts.update(reconcile.rebuild_chats(core, conversations, held=not current))
    reconcile.mark_current(core)
    counts["chats_expired"] = expire_chat_offers(session, core, time.time())
    expired, made = _expire_and_dispatch(session, core, time.time())
    counts.update(expired=expired, offers=made)
    return counts


def expire_chat_offers(conn: Session, core: RoutingCore, now: float) -> int:
    """Conversation offers not accepted in time count as missed (the conversation goes to the
    next handler at the dispatch that follows); a handler these misses send to a break has
    their row follow. How many expired."""
    expired = core.expire_chat_offers(now, older_than_s=chats.offer_timeout_s(services().settings))
    for handler_id in expired.breaks:
        offers.pause_handler(conn, int(handler_id), "missed offers")
    conn.commit()
    return len(expired.expired)


def _expire_and_dispatch(conn: Session, core: RoutingCore, now: float) -> tuple[int, int]:
    """Offers pending past their ring time + grace count as missed (a lost no-answer callback
    must not leave a handler "offered" for ever); then pair and place. (expired, offers made)"""
    expired, _ = core.expire_offers(now, older_than_s=offers.expiry_s())
    offers.expire(conn, expired)
    made = core.dispatch(now)
    offers.place_offers(conn, made)
    conn.commit()
    return len(expired), len(made)
