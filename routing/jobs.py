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
from routing import callbacks, offers, reconcile
from routing.core import RoutingCore


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
    - Offers whose no-answer callback never came expire; then a dispatch runs here.
    """
    session = db_session()
    core = offers.core()
    counts: dict[str, int] = {"rebuilt": 0}
    if not reconcile.core_is_current(core):
        counts.update(reconcile.rebuild_handlers(session, core))
        counts["calls"] = reconcile.rebuild_calls(session, core)
        counts["rebuilt"] = 1
    counts.update(reconcile.rebuild_callers(session, core))
    reconcile.mark_current(core)
    expired, made = _expire_and_dispatch(session, core, time.time())
    counts.update(expired=expired, offers=made)
    return counts


def _expire_and_dispatch(conn: Session, core: RoutingCore, now: float) -> tuple[int, int]:
    """Offers pending past their ring time + grace count as missed (a lost no-answer callback
    must not leave a handler "offered" for ever); then pair and place. (expired, offers made)"""
    expired, _ = core.expire_offers(now, older_than_s=offers.expiry_s())
    offers.expire(conn, expired)
    made = core.dispatch(now)
    offers.place_offers(conn, made)
    conn.commit()
    return len(expired), len(made)
