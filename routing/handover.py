"""The hand-over point: where a caller who asked for a person leaves the IVR.

If a handler who could take the caller is on duty (available, offered, on a call or in wrap-up,
for the caller's language and inquiry kind), the caller is queued: the ``queue_entry`` row is
committed first, then the Redis routing core hears of it and a dispatch job is enqueued; the IVR
renders ``<Enqueue>`` with our waitUrl and action. Otherwise — nobody on duty, the queue full,
or Redis down — the message box with a callback request on the case, as before routing. A
caller who withheld their number cannot be called back: their message box says so, and no
call-back is requested on the case.

One place in the queue per number (``ROUTING_MAX_WAITING_PER_NUMBER``): a caller whose number
already holds that many places (waiting, being offered, being called back) hears
``already_waiting`` and gets the message box with a callback request, so a flood from one
number takes one place, not every place. Not a hang-up: the caller may be a genuine one whose
earlier call the carrier has not yet reported as ended. Places are counted by the caller row
(unique on the number's keyed hash), under a lock on that row, so two calls from one number
at the same moment cannot both take a place. Withheld callers are exempt (each call is a caller
of its own: there is no number to count by).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import redis
from sqlalchemy import Row, func, select, update
from sqlalchemy.orm import Session

from inquiries.models import Caller, Inquiry, Interaction, utcnow
from inquiries.service import CallLog, CallState
from jobs import enqueue
from routing.models import Handler, QueueEntry
from routing.service import routing_core
from routing.speech import voice_language
from routing.strategies import QueueFull
from services import services

logger = logging.getLogger(__name__)

MESSAGE_BOX = "message_box"
QUEUE = "queue"
#: The carrier queue every waiting caller sits in (the order is the routing core's, not its).
QUEUE_NAME = "hotline"
ON_DUTY = ("available", "offered", "on_call", "wrap_up")
#: The queue entry states that hold a caller's place (see ``ROUTING_MAX_WAITING_PER_NUMBER``).
HOLDING_A_PLACE = ("waiting", "offered", "calling_back")

_entry = QueueEntry.__table__
_handler = Handler.__table__
_inquiry = Inquiry.__table__
_caller = Caller.__table__
_interaction = Interaction.__table__


@dataclass(frozen=True)
class Handover:
    """What the IVR should do with the caller: ``action`` and whether a callback was requested.

    For ``queue``: ``<Enqueue>`` into ``queue_name`` with ``wait_url`` and ``action_url``.
    """

    action: str
    callback_requested: bool
    prompt: str  # the catalog key to say before the action
    queue_name: str = ""
    wait_url: str = ""
    action_url: str = ""


def dispatch_job_id(trigger: str) -> str:
    return "routing-dispatch-" + trigger.replace(":", "-")


_ON_DUTY = select(
    _handler.c.id, _handler.c.languages, _handler.c.fallback_languages, _handler.c.skills,
    _handler.c.wrap_up_s,
).where(_handler.c.active.is_(True), _handler.c.presence.in_(ON_DUTY))  # fmt: skip


def handlers_on_duty(conn: Session, language: str, kind: str) -> list[Row[Any]]:
    """Active handlers on duty who take ``language`` (own or fallback) and ``kind``: their id,
    languages, skills and ``wrap_up_s``."""
    return [
        row
        for row in conn.execute(_ON_DUTY).all()
        if kind in (row.skills or ())
        and language in (*(row.languages or ()), *(row.fallback_languages or ()))
    ]


def someone_on_duty(log: CallLog, language: str, kind: str) -> bool:
    """An active handler on duty who takes ``language`` (own or fallback) and ``kind``."""
    return bool(handlers_on_duty(log.conn, language, kind))


def message_box_prompt(call: CallState | None) -> str:
    """What the message box says first: "… we will call you back", unless nobody can."""
    return "operators_busy_no_callback" if call is not None and call.withheld else "operators_busy"


def _to_message_box(
    log: CallLog, call: CallState, reason: str, prompt: str | None = None
) -> Handover:
    """The call-back request (unless withheld) and the message box."""
    requested = log.request_callback(call, reason)
    return Handover(action=MESSAGE_BOX, callback_requested=requested,
                    prompt=prompt or message_box_prompt(call))  # fmt: skip


def _message_box(
    log: CallLog, call: CallState, reason: str, why: str, prompt: str | None = None
) -> Handover:
    handover = _to_message_box(log, call, reason, prompt)
    log.add_event(
        call,
        "HANDOVER",
        {"reason": reason, "action": MESSAGE_BOX, "why": why},
        dedupe_key=f"handover:{call.provider_sid}",
    )
    return handover


def places_held_by_caller(log: CallLog, call: CallState) -> int:
    """Places in the queue the call's caller holds with their other calls. Locks the caller's
    row first (PostgreSQL; SQLite's transactions already take turns), so two hand-overs of one
    caller count one after the other."""
    caller_id = log.conn.execute(
        select(_inquiry.c.caller_id).where(_inquiry.c.id == call.inquiry_id)
    ).scalar_one()
    log.conn.execute(select(_caller.c.id).where(_caller.c.id == caller_id).with_for_update())
    held = (
        select(func.count())
        .select_from(
            _entry.join(_interaction, _interaction.c.id == _entry.c.interaction_id).join(
                _inquiry, _inquiry.c.id == _interaction.c.inquiry_id
            )
        )
        .where(
            _inquiry.c.caller_id == caller_id,
            _entry.c.state.in_(HOLDING_A_PLACE),
            _entry.c.interaction_id != call.interaction_id,
        )
    )
    return int(log.conn.execute(held).scalar_one())


def _has_entry(log: CallLog, call: CallState) -> bool:
    found = select(_entry.c.id).where(_entry.c.interaction_id == call.interaction_id)
    return log.conn.execute(found).first() is not None


def hand_over(log: CallLog, call: CallState, reason: str) -> Handover:
    """Decide where a caller who wants a person goes; record it on the case (see the module)."""
    language = voice_language(call.language)
    kind = call.kind or "other"
    if not someone_on_duty(log, language, kind):
        return _message_box(log, call, reason, "nobody on duty")

    svc = services()
    most = svc.settings.routing_max_waiting_per_number
    if (
        not call.withheld
        and most > 0
        and not _has_entry(log, call)  # a carrier retry keeps what was decided
        and places_held_by_caller(log, call) >= most
    ):
        return _message_box(log, call, reason, "already waiting", prompt="already_waiting")

    priority = log.conn.execute(
        select(_inquiry.c.priority).where(_inquiry.c.id == call.inquiry_id)
    ).scalar_one()
    now = time.time()
    values = {
        "interaction_id": call.interaction_id, "state": "waiting", "language": language,
        "kind": kind, "priority": int(priority or 0), "enqueued_at": utcnow(),
    }  # fmt: skip
    log.insert_ignoring_duplicates(_entry, values, "interaction_id")
    entry = log.conn.execute(
        select(_entry.c.id, _entry.c.state, _entry.c.enqueued_at, _entry.c.priority).where(
            _entry.c.interaction_id == call.interaction_id
        )
    ).one()
    if entry.state not in ("waiting", "offered", "connected"):
        return _message_box(log, call, reason, f"queue entry {entry.state}")
    log.add_event(
        call, "HANDOVER", {"reason": reason, "action": QUEUE},
        dedupe_key=f"handover:{call.provider_sid}",
    )  # fmt: skip
    log.conn.commit()  # the row is the truth: commit it before Redis and the job hear of it

    caller_id = str(call.interaction_id)
    try:
        core = routing_core(svc.settings, svc.redis)
        position = core.enqueue(
            caller_id, language=language, kind=kind, priority=float(entry.priority),
            enqueued_at=entry.enqueued_at.timestamp() if entry.enqueued_at else now,
        )  # fmt: skip
    except (QueueFull, redis.RedisError) as exc:
        logger.warning("interaction %s: not queued (%s); message box", call.interaction_id, exc)
        log.conn.execute(
            update(_entry)
            .where(_entry.c.id == entry.id, _entry.c.state == "waiting")
            .values(state="overflow", ended_at=utcnow())
        )
        log.add_event(
            call, "OVERFLOW", {"why": type(exc).__name__},
            dedupe_key=f"overflow:{call.provider_sid}",
        )  # fmt: skip
        handover = _to_message_box(log, call, reason)
        log.conn.commit()
        return handover

    log.add_event(
        call, "ENTERQUEUE",
        {"language": language, "kind": kind, "priority": int(entry.priority),
         "position": position},
        dedupe_key=f"enterqueue:{call.provider_sid}",
    )  # fmt: skip
    log.conn.commit()
    try:
        enqueue(
            "routing.jobs.dispatch",
            job_id=dispatch_job_id(f"enter:{call.interaction_id}"),
            urgent=True,
        )
    except redis.RedisError:
        logger.warning("interaction %s: could not enqueue the dispatch", call.interaction_id)
    base = svc.settings.public_base_url
    return Handover(
        action=QUEUE,
        callback_requested=False,
        prompt="queue_wait",
        queue_name=QUEUE_NAME,
        wait_url=f"{base}/routing/wait",
        action_url=f"{base}/routing/queue-action",
    )
