"""Offers and their outcomes: the database rows and events, the offer calls (REST), the core.

Shared by the dispatch jobs and the routing webhooks. Every function takes the Core connection
of the current app context, commits its rows before it touches the carrier or enqueues a job,
and is safe to run twice (conditional UPDATEs claim each transition; events carry dedupe keys).
Only ids appear in URLs, job arguments, Redis keys and log lines.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode

import redis
from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from twilio.base.exceptions import TwilioException

from db import dialect_name
from inquiries.models import FINAL_CALL_STATUSES, CallEvent, Interaction, utcnow
from jobs import enqueue, enqueue_at, enqueue_in
from recordings import carrier_calls
from routing.core import RoutingCore
from routing.handover import dispatch_job_id
from routing.models import Handler, Offer, QueueEntry
from routing.service import handler_phone, routing_core
from routing.strategies import Offer as CoreOffer
from services import services

log = logging.getLogger(__name__)

PENDING = ("placing", "ringing")
#: A handler leg's final status → (offer state, event, counts as a miss)
OFFER_ENDINGS = {
    "no-answer": ("missed", "RINGNOANSWER", True),
    "failed": ("missed", "RINGNOANSWER", True),
    "completed": ("missed", "RINGNOANSWER", True),  # answered, but 1 was never pressed
    "busy": ("rejected", "REJECT", False),
}
_entry = QueueEntry.__table__
_offer = Offer.__table__
_handler = Handler.__table__
_event = CallEvent.__table__
_interaction = Interaction.__table__


def core() -> RoutingCore:
    svc = services()
    return routing_core(svc.settings, svc.redis)


def expiry_s() -> float:
    """Seconds after which a pending offer counts as missed even without its no-answer callback
    (the offer's ring time plus ``ROUTING_OFFER_GRACE_S``)."""
    settings = services().settings
    return float(settings.routing_offer_timeout_s + settings.routing_offer_grace_s)


def url(path: str, **query: object) -> str:
    base = services().settings.public_base_url
    return f"{base}{path}" + (f"?{urlencode(query)}" if query else "")


def add_event(
    conn: Session, interaction_id: int | None, event: str, data: dict[str, Any], key: str
) -> bool:
    """Append a CallEvent once per ``key`` (INSERT … ON CONFLICT DO NOTHING)."""
    dialect = sqlite if dialect_name(conn) == "sqlite" else postgresql
    statement = dialect.insert(_event).on_conflict_do_nothing(index_elements=["dedupe_key"])
    values = {
        "interaction_id": interaction_id, "event": event, "data": data, "dedupe_key": key,
        "time": utcnow(),
    }  # fmt: skip
    return bool(conn.execute(statement.returning(_event.c.id), values).scalar())


def enqueue_dispatch(trigger: str) -> None:
    try:
        enqueue("routing.jobs.dispatch", job_id=dispatch_job_id(trigger), urgent=True)
    except redis.RedisError:
        log.warning("could not enqueue a dispatch (%s)", trigger)


def offer_row(conn: Session, offer_id: int) -> Any:
    return conn.execute(select(_offer).where(_offer.c.id == offer_id)).first()


def entry_row(conn: Session, interaction_id: int) -> Any:
    return conn.execute(select(_entry).where(_entry.c.interaction_id == interaction_id)).first()


def caller_sid(conn: Session, interaction_id: int) -> str | None:
    return conn.execute(
        select(_interaction.c.provider_sid).where(_interaction.c.id == interaction_id)
    ).scalar()


def caller_call_ended(conn: Session, interaction_id: int) -> bool:
    """The caller's leg is known to have ended. Never for a call-back: the caller is then on
    another call (the conference and the call-back leg's Dial action tell when it ends)."""
    row = conn.execute(
        select(_interaction.c.status, _entry.c.callback_requested_at)
        .outerjoin(_entry, _entry.c.interaction_id == _interaction.c.id)
        .where(_interaction.c.id == interaction_id)
    ).first()
    return (
        row is not None
        and row.callback_requested_at is None
        and (row.status in FINAL_CALL_STATUSES)
    )


def connect_event(
    conn: Session,
    interaction_id: int,
    entry: Any,
    offer: Any,
    now: dt.datetime,
    **extra: Any,
) -> None:
    """CONNECT: the caller meets the handler (hold time since queued, ring time of the offer)."""
    hold = (now - aware(entry.enqueued_at)).total_seconds() if entry is not None else 0.0
    ring = (now - aware(offer.offered_at)).total_seconds()
    add_event(
        conn, interaction_id, "CONNECT",
        {"handler_id": offer.handler_id, "offer_id": offer.id, "holdtime_s": round(hold),
         "ringtime_s": round(ring), **extra},
        f"connect:{interaction_id}",
    )  # fmt: skip


def place_offers(conn: Session, offers: Iterable[CoreOffer]) -> None:
    """Place an offer call for every (caller, handler) pair the core chose; a call that cannot
    be placed counts as rejected and the core's next choice is placed in its turn.

    A conversation offer (``channel`` "chat") places no call: the handler's page reads it from
    the core (``RoutingCore.chat_load``) and answers with ``accept_chat``/``decline_chat``; an
    unanswered one expires in ``routing.jobs``. (Its database record comes with the messaging
    package's conversation rows.)"""
    todo = [offer for offer in offers if offer.channel == "voice"]
    while todo:
        offer = todo.pop(0)
        if offer.language_fallback:
            _language_fallback(conn, offer)
        for handler_id in offer.handler_ids:
            todo.extend(place_offer(conn, int(offer.caller_id), int(handler_id), offer.waited_s))


def _language_fallback(conn: Session, offer: CoreOffer) -> None:
    """LANGUAGE_FALLBACK, once per caller: offered to a handler of a fallback language."""
    iid = int(offer.caller_id)
    language = conn.execute(
        select(_entry.c.language).where(_entry.c.interaction_id == iid)
    ).scalar()
    add_event(
        conn, iid, "LANGUAGE_FALLBACK",
        {"language": language, "handler_ids": [int(h) for h in offer.handler_ids],
         "waited_s": round(offer.waited_s, 1)},
        f"language-fallback:{iid}",
    )  # fmt: skip
    conn.commit()


def place_offer(
    conn: Session, interaction_id: int, handler_id: int, waited_s: float
) -> tuple[CoreOffer, ...]:
    svc = services()
    handler = conn.execute(select(_handler).where(_handler.c.id == handler_id)).first()
    offer_id = conn.execute(
        _offer.insert().returning(_offer.c.id),
        {"interaction_id": interaction_id, "handler_id": handler_id, "state": "placing",
         "offered_at": utcnow()},
    ).scalar_one()  # fmt: skip
    conn.execute(
        update(_entry)
        .where(_entry.c.interaction_id == interaction_id, _entry.c.state == "waiting")
        .values(state="offered")
    )
    add_event(
        conn, interaction_id, "OFFER",
        {"handler_id": handler_id, "offer_id": offer_id, "waited_s": round(waited_s, 1)},
        f"offer:{offer_id}",
    )  # fmt: skip
    conn.commit()
    to = None
    if handler is not None:
        to = (
            f"client:{handler.client_identity}"
            if handler.client_identity
            else handler_phone(svc.protector, handler)  # type: ignore[arg-type]
        )
    try:
        if not to:
            raise TwilioException("the handler cannot be reached")
        call = svc.twilio.calls.create(
            to=to,
            from_=svc.settings.hotline_number,
            url=url("/routing/offer", offer=offer_id),
            method="POST",
            status_callback=url("/routing/offer-status", offer=offer_id),
            status_callback_method="POST",
            status_callback_event=["initiated", "ringing", "answered", "completed"],
            timeout=svc.settings.routing_offer_timeout_s,
        )
    except TwilioException as exc:
        log.warning("offer %s to handler %s could not be placed: %s", offer_id, handler_id,
                    type(exc).__name__)  # fmt: skip
        return end_offer(conn, offer_id, "busy", why="not placed")
    conn.execute(
        update(_offer)
        .where(_offer.c.id == offer_id, _offer.c.state == "placing")
        .values(state="ringing", call_sid=call.sid)
    )
    conn.execute(update(_offer).where(_offer.c.id == offer_id).values(call_sid=call.sid))
    carrier_calls.note_call(conn, call.sid, "offer", interaction_id)  # deleted once it ends
    conn.commit()
    return ()


def end_offer(
    conn: Session, offer_id: int, call_status: str, *, why: str | None = None
) -> tuple[CoreOffer, ...]:
    """A pending offer ended without an accept (no answer, busy, failed, answered without the
    key): the offer is withdrawn, logged, the handler released (to break after too many misses),
    the caller waits again. Returns the offers the core made at once (none: a job dispatches)."""
    ending = OFFER_ENDINGS.get(call_status)
    row = offer_row(conn, offer_id)
    if ending is None or row is None:
        return ()
    state, event, missed = ending
    claimed = conn.execute(
        update(_offer)
        .where(_offer.c.id == offer_id, _offer.c.state.in_(PENDING))
        .values(state=state, ended_at=utcnow())
    ).rowcount
    if not claimed:
        return ()
    ringtime = (utcnow() - aware(row.offered_at)).total_seconds()
    data: dict[str, Any] = {"handler_id": row.handler_id, "offer_id": offer_id,
                            "status": call_status, "ringtime_ms": int(ringtime * 1000)}  # fmt: skip
    if why:
        data["why"] = why
    add_event(conn, row.interaction_id, event, data, f"offer-end:{offer_id}")
    conn.commit()
    result = core().decline(
        str(row.interaction_id), str(row.handler_id), missed=missed, now=time.time()
    )
    if result.caller_state == "waiting":
        conn.execute(
            update(_entry)
            .where(_entry.c.interaction_id == row.interaction_id, _entry.c.state == "offered")
            .values(state="waiting")
        )
    if result.handler_presence == "break":
        pause_handler(conn, row.handler_id, "missed offers")
    conn.commit()
    enqueue_dispatch(f"offer-end:{offer_id}")
    return result.offers


def expire(conn: Session, pairs: Iterable[tuple[str, str]]) -> None:
    """Offers the core counted as missed (their no-answer callback never came): the rows
    follow, the legs are hung up."""
    for caller_id, handler_id in pairs:
        rows = conn.execute(
            select(_offer.c.id, _offer.c.call_sid).where(
                _offer.c.interaction_id == int(caller_id),
                _offer.c.handler_id == int(handler_id),
                _offer.c.state.in_(PENDING),
            )
        ).all()
        for offer_id, sid in rows:
            claimed = conn.execute(
                update(_offer)
                .where(_offer.c.id == offer_id, _offer.c.state.in_(PENDING))
                .values(state="missed", ended_at=utcnow())
            ).rowcount
            if claimed:
                add_event(
                    conn, int(caller_id), "RINGNOANSWER",
                    {"handler_id": int(handler_id), "offer_id": offer_id, "why": "expired"},
                    f"offer-end:{offer_id}",
                )  # fmt: skip
                conn.commit()
                if sid:
                    hang_up_leg(sid, offer_id)
        conn.execute(
            update(_entry)
            .where(_entry.c.interaction_id == int(caller_id), _entry.c.state == "offered")
            .values(state="waiting")
        )
    conn.commit()


def pause_handler(conn: Session, handler_id: int, reason: str) -> None:
    """The core put a handler on break (too many missed offers): the row follows."""
    previous = conn.execute(select(_handler.c.presence).where(_handler.c.id == handler_id)).scalar()
    conn.execute(
        update(_handler)
        .where(_handler.c.id == handler_id)
        .values(presence="break", presence_reason=reason, presence_changed_at=utcnow())
    )
    conn.execute(
        _event.insert(),
        {"interaction_id": None, "event": "HANDLER_PAUSED", "time": utcnow(),
         "data": {"handler_id": handler_id, "from": previous, "to": "break",
                  "reason": reason}},
    )  # fmt: skip


def cancel_offers(
    conn: Session, interaction_id: int, handler_ids: Iterable[str] | None = None
) -> int:
    """Withdraw the caller's pending offers (all, or those to ``handler_ids``): logged
    RINGCANCELED, and the handlers' phones stop ringing (REST). Returns how many."""
    query = select(_offer.c.id, _offer.c.handler_id, _offer.c.call_sid).where(
        _offer.c.interaction_id == interaction_id, _offer.c.state.in_(PENDING)
    )
    if handler_ids is not None:
        query = query.where(_offer.c.handler_id.in_([int(h) for h in handler_ids]))
    to_cancel = []
    for offer_id, handler_id, sid in conn.execute(query).all():
        claimed = conn.execute(
            update(_offer)
            .where(_offer.c.id == offer_id, _offer.c.state.in_(PENDING))
            .values(state="canceled", ended_at=utcnow())
        ).rowcount
        if claimed:
            add_event(
                conn, interaction_id, "RINGCANCELED",
                {"handler_id": handler_id, "offer_id": offer_id}, f"offer-end:{offer_id}",
            )  # fmt: skip
            to_cancel.append((offer_id, sid))
    conn.commit()
    for offer_id, sid in to_cancel:
        if sid:
            hang_up_leg(sid, offer_id)
    return len(to_cancel)


def hang_up_leg(sid: str, offer_id: int) -> None:
    """End a leg we placed, whether it still rings or was answered (a handler hearing the
    whisper). Twilio's Call resource: "Specifying ``canceled`` will attempt to hang up calls
    that are queued or ringing; however, it will not affect calls already in progress.
    Specifying ``completed`` will attempt to hang up a call even if it's already in progress."
    ``canceled`` on an answered leg answers success and leaves it up, so ``completed`` alone:
    it ends a leg in either state. An error means the leg had already ended."""
    try:
        services().twilio.calls(sid).update(status="completed")
    except TwilioException:
        log.info("offer %s: its call had already ended", offer_id)


def complete(conn: Session, interaction_id: int, event: str) -> None:
    """The connected call ended (``event`` COMPLETECALLER or COMPLETEAGENT: who hung up first):
    the handler counts it and goes to wrap-up; a job makes them available after it."""
    entry = entry_row(conn, interaction_id)
    if entry is None or entry.handler_id is None or entry.state not in ("connected", "done"):
        return  # not connected (yet): a call-back's handler waiting for the caller, say
    now = utcnow()
    talk_s = (now - aware(entry.connected_at)).total_seconds() if entry.connected_at else 0.0
    conn.execute(
        update(_entry)
        .where(_entry.c.id == entry.id, _entry.c.state == "connected")
        .values(state="done", ended_at=now)
    )
    hold_s = (
        (aware(entry.connected_at) - aware(entry.enqueued_at)).total_seconds()
        if entry.connected_at
        else None
    )
    wrap_up_s = (
        conn.execute(select(_handler.c.wrap_up_s).where(_handler.c.id == entry.handler_id)).scalar()
        or 0
    )
    add_event(
        conn, interaction_id, event,
        {"handler_id": entry.handler_id, "holdtime_s": hold_s, "calltime_s": round(talk_s),
         "wrapup_s": wrap_up_s},
        f"complete:{interaction_id}",
    )  # fmt: skip
    conn.commit()
    done = core().complete(
        str(interaction_id), str(entry.handler_id), talk_s=max(0.0, talk_s), now=time.time()
    )
    if done:
        job_id = f"routing-wrap-up-{interaction_id}"
        try:
            if wrap_up_s > 0:
                enqueue_in(
                    wrap_up_s,
                    "routing.jobs.end_wrap_up",
                    entry.handler_id,
                    job_id=job_id,
                    urgent=True,
                )
            else:
                enqueue("routing.jobs.end_wrap_up", entry.handler_id, job_id=job_id, urgent=True)
        except redis.RedisError:
            log.warning("handler %s: could not schedule the end of wrap-up", entry.handler_id)


def extend_wrap_up(handler_id: int, until: float) -> float | None:
    """The handler asked for more wrap-up: no offer until ``until`` (Unix seconds). The end of
    wrap-up is scheduled first, then the core told (so a failure leaves the old end standing,
    never a handler kept in wrap-up with nothing to end it); the earlier end-of-wrap-up job
    finds the new end and does nothing. The end now in force; None unless in wrap-up."""
    routing = core()
    if routing.presence(str(handler_id))[0] != "wrap_up":
        return None
    job_id = f"routing-wrap-up-more-{handler_id}-{int(until * 1000)}"
    enqueue_at(until, "routing.jobs.end_wrap_up", handler_id, job_id=job_id, urgent=True)
    return routing.extend_wrap_up(str(handler_id), until)


def aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
