"""Routing jobs (RQ): dispatch waiting callers to handlers, end a handler's wrap-up.

Event-driven: a dispatch is enqueued when a caller joins, an offer ends without an accept, or a
handler becomes available. Each job re-reads Redis and the database; running one twice places
no second offer (the core hands each pair out once).
"""

from __future__ import annotations

import time

from extensions import db_connection, job_context, services
from routing import offers


def dispatch() -> int:
    """Pair waiting callers with free handlers and place the offer calls; how many pairs."""
    with job_context():
        conn = db_connection()
        core = offers.core()
        now = time.time()
        timeout = services().settings.routing_offer_timeout_s
        # A lost no-answer callback must not leave a handler "offered" for ever.
        expired, _ = core.expire_offers(now, older_than_s=timeout + 60)
        offers.expire(conn, expired)
        made = core.dispatch(now)
        offers.place_offers(conn, made)
        conn.commit()
        return len(made) + len(expired)


def end_wrap_up(handler_id: int) -> str | None:
    """The handler's wrap-up time is over: available again (or what they asked for meanwhile),
    then a dispatch for whoever waits."""
    with job_context():
        change = offers.core().end_wrap_up(str(handler_id), time.time())
        offers.enqueue_dispatch(f"wrap-up:{handler_id}:{int(time.time())}")
        return change.current
