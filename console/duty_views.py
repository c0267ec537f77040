"""The handler's page (``/console/handler``): their presence, the call offered (its language,
topic and wait, nothing else) or in progress with its case (menu answers, earlier calls, notes),
notes and an outcome during and after the call, and the wrap-up countdown.

Need to know: a ringing offer is not yet the handler's case. With ring-all every handler on duty
is offered every caller, so an offer shows only what the whisper says (language, topic, wait):
no case number, no earlier calls, no notes, no number, and no ``inquiry.view`` audit row (nothing
of the case was seen; the OFFER event records the offer). Once the handler takes the call, the
page shows the case and audits the view; ``console.access`` lets them open it from then on.

The presence and "current" panels refresh themselves (``static/live.js`` fetching
``/console/handler/live/presence`` and ``/console/handler/live``); without script, a link
reloads the page. An offer is unmissable: the panel says what to do (answer the phone, or the
softphone for a handler reached in the browser, and press 1: what the whisper asks) and carries
``data-ring``, on which live.js rings (once the ring sound is turned on) and changes the title;
a missed offer is told afterwards. The presence in force is pressed; during a call the
presence buttons are disabled. In wrap-up, "More time" extends it in the routing core.

Presence changes go the CLI's way (``flask handlers presence``): the database first, then the
routing core, a ringing offer that was withdrawn cancelled, a dispatch for whoever waits. Notes
and the outcome need the handler to have taken part in the case
(``console.access.require_inquiry``: 404 otherwise); notes written here are tied to the call
they were written during.
"""

from __future__ import annotations

import datetime as dt
import re
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
from console.labels import mmss, presence_name
from console.story import menu_answers
from db import db_session
from inquiries.calllog import InquiryDetail, inquiry_detail
from inquiries.models import QUEUE_EVENT_TERM, CallEvent, Interaction
from inquiries.notes import Note, NoteError, add_note, notes_of, set_outcome
from ivr.views import flow
from routing import offers
from routing.models import Handler, Offer, QueueEntry
from routing.service import HandlerNotFound, routing_core, set_presence
from services import services
from staff import audit
from staff.authz import current_staff, roles_required
from staff.models import StaffUser

nav.add_link("console.duty", lazy_gettext("My calls"), "handler", order=50)

CHOSEN = ("available", "break", "offline")
#: How far back the last completed call is looked for (a wrap-up is seconds to minutes).
WRAP_UP_LOOKBACK = dt.timedelta(hours=1)
#: "More time" during wrap-up: a minute each press, at most five minutes past the handler's own
#: wrap-up time (the caller waiting meanwhile is offered to someone else).
WRAP_UP_MORE_S = 60
WRAP_UP_MORE_MAX_S = 300
#: A missed offer is told on the page for this long after it ended.
MISSED_SHOWN_FOR = dt.timedelta(minutes=15)
#: The break routing sets after missed offers, as the core words it ("missed 2 offers in a
#: row"); the database keeps "missed offers", which ``reason_name`` translates.
_MISSED_BREAK = re.compile(r"missed \d+ offers in a row")
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
    #: Notes' authors (staff user id → display name).
    authors: dict[int, str] = field(default_factory=dict)
    #: An offer of a call-back request (1 calls the caller back) rather than of a waiting caller.
    callback: bool = False

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
        callback = entry is not None and entry.callback_requested_at is not None
        return Current(what, waited_s=waited, language=language, kind=kind, callback=callback)
    inquiry_id = conn.execute(
        select(Interaction.inquiry_id).where(Interaction.id == interaction_id)
    ).scalar_one()
    protector = services().protector
    detail = inquiry_detail(conn, protector, inquiry_id)
    notes = notes_of(conn, protector, inquiry_id)
    return Current(what, interaction_id, detail, notes, waited, language, kind,
                   note_authors(conn, notes))  # fmt: skip


def note_authors(conn: Session, notes: list[Note]) -> dict[int, str]:
    """Display names of the notes' authors (staff users)."""
    ids = {n.author_id for n in notes if n.author_id is not None}
    if not ids:
        return {}
    rows = conn.execute(select(StaffUser.id, StaffUser.display_name).where(StaffUser.id.in_(ids)))
    return {row.id: row.display_name for row in rows}


def missed_offer(conn: Session, handler_id: int) -> str | None:
    """How this handler's last offer was missed, if it was and lately: "answered" (the phone
    was answered but 1 never pressed: the carrier says ``completed``) or "not_answered"."""
    last = conn.execute(
        select(_offer.c.id, _offer.c.state, _offer.c.ended_at, _offer.c.interaction_id)
        .where(_offer.c.handler_id == handler_id)
        .order_by(_offer.c.id.desc())
        .limit(1)
    ).first()
    if last is None or last.state != "missed" or last.ended_at is None:
        return None
    if offers.aware(last.ended_at) < dt.datetime.now(dt.UTC) - MISSED_SHOWN_FOR:
        return None
    status = conn.execute(
        select(_event.c.data["status"].as_string())
        .where(_event.c.interaction_id == last.interaction_id, _event.c.event == "RINGNOANSWER",
               _event.c.data["offer_id"].as_integer() == last.id)
        .limit(1)
    ).scalar()  # fmt: skip
    return "answered" if status == "completed" else "not_answered"


@dataclass
class WrapUp:
    left_s: int  # seconds left
    more: bool  # "More time" may still be asked for


def _last_completed(conn: Session, handler_id: int) -> Any:
    now = dt.datetime.now(dt.UTC)
    return conn.execute(
        select(_event.c.time, _event.c.data)
        .where(_event.c.event.in_(("COMPLETECALLER", "COMPLETEAGENT")),
               _event.c.time >= now - WRAP_UP_LOOKBACK,
               _event.c.data["handler_id"].as_integer() == handler_id,
               QUEUE_EVENT_TERM)
        .order_by(_event.c.time.desc(), _event.c.id.desc())
        .limit(1)
    ).first()  # fmt: skip


def _base_end(conn: Session, handler_id: int) -> float | None:
    """When the handler's own wrap-up ends (Unix seconds): the last COMPLETECALLER/COMPLETEAGENT
    of this handler, its time plus its ``wrapup_s``; None without one."""
    row = _last_completed(conn, handler_id)
    if row is None:
        return None
    wrapup = row.data.get("wrapup_s") if isinstance(row.data, dict) else None
    return offers.aware(row.time).timestamp() + int(wrapup or 0)


def wrap_up_left(conn: Session, handler_id: int, presence: str) -> int | None:
    """Seconds of the handler's own wrap-up left (None unless in wrap-up), "More time" aside."""
    if presence != "wrap_up":
        return None
    end = _base_end(conn, handler_id)
    return 0 if end is None else max(0, round(end - time.time()))


def wrap_up_state(conn: Session, handler_id: int, presence: str) -> WrapUp | None:
    """The wrap-up's time left (None unless in wrap-up): the handler's own, or more if they
    asked for it (the routing core keeps the extended end)."""
    if presence != "wrap_up":
        return None
    now = time.time()
    base_end = _base_end(conn, handler_id)
    try:
        extended = _core().wrap_up_until(str(handler_id))
    except redis.RedisError:
        extended = None
    end = max(base_end or now, extended or 0.0)
    more = base_end is not None and end + WRAP_UP_MORE_S <= base_end + WRAP_UP_MORE_MAX_S + 1
    return WrapUp(max(0, round(end - now)), more)


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
    wrap_up = wrap_up_state(conn, me.handler_id, presence)
    if current.detail is not None:
        _audit_view(current.detail.inquiry.id, live=live)
    handler = conn.get(Handler, me.handler_id)
    the_flow = flow()
    busy = current.what in ("offer", "call", "calling_back")
    missed = None if busy else missed_offer(conn, me.handler_id)
    return {
        "handler_id": me.handler_id, "presence": presence, "reason": _reason(reason),
        "current": current, "wrap_up": wrap_up,
        "outcomes": settings.case_outcomes, "chosen": CHOSEN,
        "idle_s": settings.staff_idle_timeout_s,
        "softphone": handler is not None and handler.client_identity is not None,
        "missed": missed,
        "answers_of": lambda path: menu_answers(the_flow, path),
        "locked": locked_presences(presence),
    }  # fmt: skip


def _reason(reason: str | None) -> str | None:
    """The core's words for a break after missed offers become the code ``reason_name`` knows."""
    return "missed offers" if reason and _MISSED_BREAK.fullmatch(reason) else reason


def locked_presences(presence: str) -> tuple[str, ...]:
    """The presence buttons that are disabled now. On a call (or calling back) all three: the
    call goes on whatever is pressed, and "go offline" mid-call only looked as if it would end it
    (routing defers such a change to the end of the wrap-up, where the buttons work again). While
    an offer rings, "available" changes nothing (a break or going offline gives the call to
    someone else, which is what those buttons say then)."""
    if presence == "on_call":
        return CHOSEN
    if presence == "offered":
        return ("available",)
    return ()


@bp.get("/handler")
@roles_required("handler")
def duty() -> Any:
    return render_template("console/duty.html", **_page_data(live=False))


@bp.get("/handler/live")
@roles_required("handler")
def duty_live() -> Any:
    return render_template("console/duty_current.html", **_page_data(live=True))


@bp.get("/handler/live/presence")
@roles_required("handler")
def duty_live_presence() -> Any:
    """The presence panel alone (its own refresh: a half-typed break reason pauses only it)."""
    me = current_staff()
    if me.handler_id is None:
        return render_template("console/duty_presence.html", handler_id=None)
    presence, reason = presence_of(me.handler_id)
    return render_template(
        "console/duty_presence.html", handler_id=me.handler_id, presence=presence,
        reason=_reason(reason), chosen=CHOSEN, locked=locked_presences(presence),
    )  # fmt: skip


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


@bp.post("/handler/wrap-up/more")
@roles_required("handler")
def duty_wrap_up_more() -> Any:
    """The "More time" button: the wrap-up lasts a minute longer (at most ``WRAP_UP_MORE_MAX_S``
    past the handler's own wrap-up); no call is offered to them until it ends."""
    me = current_staff()
    if me.handler_id is None:
        flash(gettext("Your account is not linked to a handler."), "error")
        return redirect(url_for("console.duty"))
    conn = db_session()
    presence, _ = presence_of(me.handler_id)
    state = wrap_up_state(conn, me.handler_id, presence)
    if state is None or not state.more:
        flash(gettext("No more wrap-up time can be added now."), "error")
        return redirect(url_for("console.duty"))
    until = time.time() + state.left_s + WRAP_UP_MORE_S
    try:
        new_end = offers.extend_wrap_up(me.handler_id, until)
    except redis.RedisError:
        new_end = None
    if new_end is None:
        flash(gettext("No more wrap-up time can be added now."), "error")
        return redirect(url_for("console.duty"))
    left = max(0, round(new_end - time.time()))
    audit.record("handler.wrap_up_more", "handler", me.handler_id, added_s=WRAP_UP_MORE_S,
                 left_s=left, via="handler_page")  # fmt: skip
    flash(gettext("Wrap-up extended: %(left)s left.", left=mmss(left)), "ok")
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
