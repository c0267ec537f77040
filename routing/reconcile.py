"""The reconciler: make the Redis routing core match the database after Redis lost its state
(a flush, a restart without persistence, a failover) or missed a change.

This is its first part: handlers. Waiting callers, offers and calls in progress come with the
rest of routing (the queue and dispatch), and their rebuild with them.
"""

from __future__ import annotations

import time

from sqlalchemy import select
from sqlalchemy.orm import Session

from routing.core import RoutingCore
from routing.models import Handler
from routing.service import profile
from routing.strategies import UnknownHandler

#: Presences the database may hold that a person did not choose. Without the calls themselves
#: (not rebuilt yet) a handler caught offered, on a call or in wrap-up is restored as available.
SYSTEM_PRESENCES = ("offered", "on_call", "wrap_up")


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
