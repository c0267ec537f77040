"""The handler's page (``/console/handler``): their presence, the call offered (its language,
topic and wait, nothing else) or in progress with its case (menu answers, earlier calls, notes),
notes and an outcome during and after the call, and the wrap-up countdown.

Need to know: a ringing offer is not yet the handler's case. With ring-all every handler on duty
is offered every caller, so an offer shows only what the whisper says (language, topic, wait):
no case number, no earlier calls, no notes, no number, and no ``inquiry.view`` audit row (nothing
of the case was seen; the OFFER event records the offer). Once the handler takes the call, the
page shows the case and audits the view; ``console.access`` lets them open it from then on.

The "current" panel refreshes itself (``static/live.js`` fetching ``/console/handler/live``);
without script, a link reloads the page. Presence changes go the CLI's way
(``flask handlers presence``): the database first, then the routing core, a ringing offer that
was withdrawn cancelled, a dispatch for whoever waits. Notes and the outcome need the handler to
have taken part in the case (``console.access.require_inquiry``: 404 otherwise); notes written
here are tied to the call they were written during.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Any

import redis
from flask import flash, redirect, render_template, request, url_for
from flask import session as browser_session
from flask_babel import gettext, lazy_gettext
from sqlalchemy import select
from sqlalchemy.orm import Session

from console import nav
from console.access import require_inquiry
from console.blueprint import bp
from console.labels import presence_name
from db import db_session
from inquiries.calllog import InquiryDetail, inquiry_detail
from inquiries.models import QUEUE_EVENT_TERM, CallEvent, Interaction
from inquiries.notes import Note, NoteError, add_note, notes_of, set_outcome
from routing import offers
from routing.models import Offer, QueueEntry
from routing.service import HandlerNotFound, routing_core, set_presence
from services import services
from staff import audit
from staff.authz import current_staff, roles_required

nav.add_link("console.duty", lazy_gettext("My calls"), "handler", order=50)

CHOSEN = ("available", "break", "offline")
#: How far back the last completed call is looked for (a wrap-up is seconds to minutes).
WRAP_UP_LOOKBACK = dt.timedelta(hours=1)
_offer = Offer.__table__
_entry = QueueEntry.__table__
_event = CallEvent.__table__


@dataclass
class Current:
    #: "offer", "call", "calling_back", "last" (the call before: notes after it), "" (none)
    what: str
    #: The call and its case: for a taken call only (an offer carries none of them).
    interaction_id: int | None = None
    detail: InquiryDetail | None = None
    notes: list[Note] = field(default_factory=list)
    waited_s: int | None = None
    #: What the queue entry says of the caller (all an offer shows, with ``waited_s``).
    language: str | None = None
    kind: str | None = None

    @property
    def writable(self) -> bool:
        """Notes and outcome: once the call is taken (an offer is not the handler's case yet)."""
        return self.what in ("call", "calling_back", "last")


def _core():
    svc = services()
    return routing_core(svc.settings, svc.redis)


def presence_of(handler_id: int) -> tuple[str, str | None]:
    try:
        return _core().presence(str(handler_id))
    except redis.RedisError:
        return ("unknown", None)


def _pick(conn: Session, handler_id: int) -> tuple[str, Any, int | None]:
    """(what, queue entry row or None, interaction id) of the handler's current or last call."""
    entry = conn.execute(
        select(_entry)
        .where(_entry.c.handler_id == handler_id,
               _entry.c.state.in_(("connected", "calling_back")))
        .order_by(_entry.c.id.desc())
    ).first()  # fmt: skip
    if entry is not None:
        what = "call" if entry.state == "connected" else "calling_back"
        return what, entry, entry.interaction_id
    pending = conn.execute(
        select(_offer.c.interaction_id)
        .where(_offer.c.handler_id == handler_id, _offer.c.state.in_(offers.PENDING))
        .order_by(_offer.c.id.desc())
    ).first()
    if pending is not None:
        return "offer", offers.entry_row(conn, pending.interaction_id), pending.interaction_id
    last = conn.execute(
        select(_entry)
        .where(_entry.c.handler_id == handler_id, _entry.c.connected_at.is_not(None))
        .order_by(_entry.c.connected_at.desc(), _entry.c.id.desc())
        .limit(1)
    ).first()
    if last is not None:
        return "last", last, last.interaction_id
    return "", None, None


def current_for(conn: Session, handler_id: int) -> Current:
    """The call offered to this handler now (its language, topic and wait only) or taken by
    them (else their last one), with its case."""
    what, entry, interaction_id = _pick(conn, handler_id)
    if interaction_id is None:
        return Current("")
    waited = None
    if entry is not None:
        until = offers.aware(entry.connected_at) if entry.connected_at else dt.datetime.now(dt.UTC)
        waited = max(0, int((until - offers.aware(entry.enqueued_at)).total_seconds()))
    language = entry.language if entry is not None else None
    kind = entry.kind if entry is not None else None
    if what == "offer":  # not theirs yet: the case is not read at all
        return Current(what, waited_s=waited, language=language, kind=kind)
    inquiry_id = conn.execute(
        select(Interaction.inquiry_id).where(Interaction.id == interaction_id)
    ).scalar_one()
    protector = services().protector
    detail = inquiry_detail(conn, protector, inquiry_id)
    notes = notes_of(conn, protector, inquiry_id)
    return Current(what, interaction_id, detail, notes, waited, language, kind)


def wrap_up_left(conn: Session, handler_id: int, presence: str) -> int | None:
    """Seconds of wrap-up left (None unless in wrap-up): the last COMPLETECALLER/COMPLETEAGENT
    of this handler, its time plus its ``wrapup_s``."""
    if presence != "wrap_up":
        return None
    now = dt.datetime.now(dt.UTC)
    row = conn.execute(
        select(_event.c.time, _event.c.data)
        .where(_event.c.event.in_(("COMPLETECALLER", "COMPLETEAGENT")),
               _event.c.time >= now - WRAP_UP_LOOKBACK,
               _event.c.data["handler_id"].as_integer() == handler_id,
               QUEUE_EVENT_TERM)
        .order_by(_event.c.time.desc(), _event.c.id.desc())
        .limit(1)
    ).first()  # fmt: skip
    if row is None:
        return 0
    wrapup = row.data.get("wrapup_s") if isinstance(row.data, dict) else None
    end = offers.aware(row.time) + dt.timedelta(seconds=int(wrapup or 0))
    return max(0, int((end - now).total_seconds()))


def _audit_view(inquiry_id: int, *, live: bool) -> None:
    """Every page view is audited; the panel's refreshes only when they show another case."""
    if live and browser_session.get("duty_seen") == inquiry_id:
        return
    audit.record("inquiry.view", "inquiry", inquiry_id, via="handler_page")
    browser_session["duty_seen"] = inquiry_id


def _page_data(*, live: bool) -> dict[str, Any]:
    me = current_staff()
    settings = services().settings
    if me.handler_id is None:
        return {"handler_id": None}
    conn = db_session()
    presence, reason = presence_of(me.handler_id)
    current = current_for(conn, me.handler_id)
    left = wrap_up_left(conn, me.handler_id, presence)
    if current.detail is not None:
        _audit_view(current.detail.inquiry.id, live=live)
    return {
        "handler_id": me.handler_id, "presence": presence, "reason": reason, "current": current,
        "wrap_up_left": left, "outcomes": settings.case_outcomes, "chosen": CHOSEN,
        "idle_s": settings.staff_idle_timeout_s,
    }  # fmt: skip


@bp.get("/handler")
@roles_required("handler")
def duty() -> Any:
    return render_template("console/duty.html", **_page_data(live=False))


@bp.get("/handler/live")
@roles_required("handler")
def duty_live() -> Any:
    return render_template("console/duty_current.html", **_page_data(live=True))


@dataclass
class PresenceNote:
    saved: bool  # the database holds the new presence
    message: str
    error: bool
    previous: str | None = None


def change_presence(handler_id: int, presence: str, reason: str | None) -> PresenceNote:
    """The CLI's path: database, then core; a withdrawn offer cancelled; a dispatch."""
    try:
        result = set_presence(db_session(), _core(), handler_id, presence, reason)
    except HandlerNotFound:
        return PresenceNote(False, gettext("No such handler."), True)
    except ValueError:
        return PresenceNote(False, gettext("That presence cannot be chosen."), True)
    except redis.RedisError:
        message = gettext("Saved, but routing did not hear of it yet; it will catch up.")
        return PresenceNote(True, message, True)
    if result.core.withdrawn:  # their ringing offer goes to someone else: stop the ringing
        offers.cancel_offers(db_session(), int(result.core.withdrawn), [str(handler_id)])
    if presence == "available" or result.core.withdrawn:
        offers.enqueue_dispatch(f"presence:{handler_id}:{int(time.time() * 1000)}")
    name = presence_name(presence)
    if result.core.deferred:
        message = gettext("%(presence)s once the current call and its wrap-up end.",
                          presence=name)  # fmt: skip
    elif result.core.withdrawn:
        message = gettext("Presence: %(presence)s. The call that was ringing goes to someone else.",
                          presence=name)  # fmt: skip
    else:
        message = gettext("Presence: %(presence)s", presence=name)
    return PresenceNote(True, message, False, result.previous)


@bp.post("/handler/presence")
@roles_required("handler")
def duty_presence() -> Any:
    me = current_staff()
    presence = request.form.get("presence", "")
    reason = request.form.get("reason", "").strip()[:200] or None
    if me.handler_id is None or presence not in CHOSEN:
        flash(gettext("That presence cannot be chosen."), "error")
        return redirect(url_for("console.duty"))
    note = change_presence(me.handler_id, presence, reason if presence == "break" else None)
    if note.saved:
        audit.record("handler.presence", "handler", me.handler_id, presence=presence,
                     previous=note.previous, via="handler_page")  # fmt: skip
    flash(note.message, "error" if note.error else "ok")
    return redirect(url_for("console.duty"))


def _call_of(conn: Session, inquiry_id: int) -> int | None:
    """The form's call id, if it is a call of this case."""
    raw = request.form.get("interaction_id", "")
    if not raw.isdigit() or len(raw) > 9:
        return None
    call = Interaction.__table__
    return conn.execute(
        select(call.c.id).where(call.c.id == int(raw), call.c.inquiry_id == inquiry_id)
    ).scalar()


@bp.post("/handler/inquiries/<int:inquiry_id>/notes")
@roles_required("handler")
def duty_note(inquiry_id: int) -> Any:
    require_inquiry(inquiry_id)  # took part in it, else 404
    conn = db_session()
    call_id = _call_of(conn, inquiry_id)
    try:
        note_id = add_note(conn, services().protector, inquiry_id,
                           request.form.get("text", "")[:10_000],
                           author_id=current_staff().id, interaction_id=call_id)  # fmt: skip
    except NoteError as exc:
        conn.rollback()
        flash(gettext("The note was not saved: %(why)s", why=str(exc)), "error")
        return redirect(url_for("console.duty"))
    audit.record("inquiry.note", "inquiry", inquiry_id, using=conn, note=note_id,
                 interaction=call_id)  # fmt: skip
    conn.commit()
    flash(gettext("Note saved."), "ok")
    return redirect(url_for("console.duty"))


@bp.post("/handler/inquiries/<int:inquiry_id>/outcome")
@roles_required("handler")
def duty_outcome(inquiry_id: int) -> Any:
    require_inquiry(inquiry_id)
    conn = db_session()
    outcome = request.form.get("outcome", "")[:32]
    try:
        previous = set_outcome(conn, inquiry_id, outcome, services().settings.case_outcomes)
    except NoteError as exc:
        conn.rollback()
        flash(gettext("The outcome was not saved: %(why)s", why=str(exc)), "error")
        return redirect(url_for("console.duty"))
    audit.record("inquiry.outcome", "inquiry", inquiry_id, using=conn, outcome=outcome or None,
                 previous=previous or None)  # fmt: skip
    conn.commit()
    flash(gettext("Outcome saved."), "ok")
    return redirect(url_for("console.duty"))
