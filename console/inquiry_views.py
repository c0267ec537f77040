"""One case: its calls, every event in order, notes and outcome, and each recording in a player
that streams the audio decrypted on the fly (HTTP range requests, so seeking works; nothing
decrypted touches the disk).

Who may see it: ``console.access.require_inquiry`` (handlers: the cases they took part in; 404
otherwise). Every view, full-number view, note, outcome change, playback and retry is audited.
"""

from __future__ import annotations

from typing import Any

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from sqlalchemy import select

from console.access import require_inquiry, require_interaction
from console.blueprint import bp
from console.calls_views import FULL_NUMBER_ROLES
from console.story import stories
from db import db_session
from inquiries.calllog import inquiry_detail
from inquiries.models import Interaction
from inquiries.notes import NoteError, add_note, notes_of, set_outcome
from ivr.views import flow as ivr_flow
from recordings.models import Recording
from recordings.playback import NotPlayable, RangeNotSatisfiable, parse_range, read_range
from services import services
from staff import audit
from staff.authz import current_staff, roles_required
from staff.models import StaffUser

VIEW_ROLES = ("handler", "supervisor", "auditor", "admin")
WRITE_ROLES = ("handler", "supervisor", "admin")  # auditors only read
RETRY_ROLES = ("supervisor", "admin")
#: Who sees each event as stored, behind its sentence's details toggle.
RAW_EVENT_ROLES = ("supervisor", "auditor", "admin")
_recording = Recording.__table__


def _recordings_of(interaction_ids: list[int]) -> list[Any]:
    if not interaction_ids:
        return []
    return list(
        db_session().execute(
            select(_recording)
            .where(_recording.c.interaction_id.in_(interaction_ids))
            .order_by(_recording.c.created_at, _recording.c.id)
        )
    )


def waveform_bars(waveform: bytes | None, width: int = 300, height: int = 40) -> list[dict]:
    """The stored peak summary as SVG bar geometry (x, y, w, h)."""
    if not waveform:
        return []
    step = width / len(waveform)
    return [
        {"x": round(i * step, 2), "w": max(0.5, round(step * 0.8, 2)),
         "h": max(1, round(peak / 255 * height, 1)),
         "y": round((height - max(1, peak / 255 * height)) / 2, 1)}
        for i, peak in enumerate(waveform)
    ]  # fmt: skip


@bp.get("/inquiries/<int:inquiry_id>")
@roles_required(*VIEW_ROLES)
def inquiry(inquiry_id: int) -> Any:
    require_inquiry(inquiry_id)
    me = current_staff()
    full = me.role in FULL_NUMBER_ROLES and request.args.get("number") == "full"
    conn = db_session()
    protector = services().protector
    detail = inquiry_detail(conn, protector, inquiry_id, full_number=full)
    if detail is None:
        abort(404)
    notes = notes_of(conn, protector, inquiry_id)
    authors = {
        row.id: row.display_name
        for row in conn.execute(
            select(StaffUser.id, StaffUser.display_name).where(
                StaffUser.id.in_({n.author_id for n in notes if n.author_id})
            )
        )
    }
    recordings = _recordings_of([row.id for row in detail.interactions])
    calls = stories(conn, ivr_flow(), detail.interactions, detail.timeline)
    conn.commit()
    audit.record("inquiry.view", "inquiry", inquiry_id, full_number=int(full))
    return render_template(
        "console/inquiry.html", d=detail, notes=notes, authors=authors, recordings=recordings,
        calls=calls, may_see_raw=me.role in RAW_EVENT_ROLES,
        bars={r.id: waveform_bars(r.waveform) for r in recordings}, full=full,
        may_see_number=me.role in FULL_NUMBER_ROLES, may_write=me.role in WRITE_ROLES,
        may_retry=me.role in RETRY_ROLES,
        outcomes=tuple(getattr(services().settings, "case_outcomes", ())),
    )  # fmt: skip


@bp.post("/inquiries/<int:inquiry_id>/notes")
@roles_required(*WRITE_ROLES)
def inquiry_note(inquiry_id: int) -> Any:
    require_inquiry(inquiry_id)
    conn = db_session()
    try:
        text = request.form.get("text", "")[:10_000]
        note_id = add_note(conn, services().protector, inquiry_id, text,
                           author_id=current_staff().id)  # fmt: skip
    except NoteError as exc:
        conn.rollback()
        flash(gettext("The note was not saved: %(why)s", why=str(exc)), "error")
        return _back(inquiry_id)
    audit.record("inquiry.note", "inquiry", inquiry_id, using=conn, note=note_id)
    conn.commit()
    flash(gettext("Note saved."), "ok")
    return _back(inquiry_id)


@bp.post("/inquiries/<int:inquiry_id>/outcome")
@roles_required(*WRITE_ROLES)
def inquiry_outcome(inquiry_id: int) -> Any:
    require_inquiry(inquiry_id)
    conn = db_session()
    outcome = request.form.get("outcome", "")[:32]
    allowed = tuple(getattr(services().settings, "case_outcomes", ()))
    try:
        previous = set_outcome(conn, inquiry_id, outcome, allowed)
    except NoteError as exc:
        conn.rollback()
        flash(gettext("The outcome was not saved: %(why)s", why=str(exc)), "error")
        return _back(inquiry_id)
    audit.record("inquiry.outcome", "inquiry", inquiry_id, using=conn, outcome=outcome or None,
                 previous=previous or None)  # fmt: skip
    conn.commit()
    flash(gettext("Outcome saved."), "ok")
    return _back(inquiry_id)


def _back(inquiry_id: int) -> Any:
    """Back to the case page (the handler's page posts to its own endpoints)."""
    return redirect(url_for("console.inquiry", inquiry_id=inquiry_id))


def _recording_row(recording_id: int) -> Any:
    row = db_session().execute(select(_recording).where(_recording.c.id == recording_id)).first()
    if row is None:
        abort(404)
    require_interaction(row.interaction_id)
    return row


@bp.get("/recordings/<int:recording_id>/audio")
@roles_required(*VIEW_ROLES)
def recording_audio(recording_id: int) -> Any:
    """The audio, decrypted as it streams; ``Range`` requests answered with 206."""
    row = _recording_row(recording_id)
    if row.storage_key is None or row.size_bytes is None:
        abort(404)  # not stored (yet, or any more): nothing to play, whatever the range
    try:
        wanted = parse_range(request.headers.get("Range"), row.size_bytes)
        size, content_type, chunks = read_range(row, *(wanted or (None, None)))
    except NotPlayable:
        abort(404)
    except RangeNotSatisfiable as exc:  # a bad or unsatisfiable range: 416, never a 500
        return Response(status=416, headers={"Content-Range": f"bytes */{exc.total_size}",
                                             "Accept-Ranges": "bytes"})  # fmt: skip
    start, end = wanted if wanted else (0, size - 1)
    end = min(end, size - 1)
    audit.record("recording.play", "recording", recording_id, start=start, end=end,
                 download=int(request.args.get("download") == "1"))  # fmt: skip
    headers = {"Accept-Ranges": "bytes", "Content-Length": str(end - start + 1)}
    if request.args.get("download") == "1":
        extension = "ogg" if "ogg" in content_type else "mp3"
        name = f"recording-{recording_id}.{extension}"
        headers["Content-Disposition"] = f'attachment; filename="{name}"'
    if wanted:
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    return Response(chunks, status=206 if wanted else 200, mimetype=content_type,
                    headers=headers, direct_passthrough=True)  # fmt: skip


@bp.post("/recordings/<int:recording_id>/retry")
@roles_required(*RETRY_ROLES)
def recording_retry(recording_id: int) -> Any:
    from recordings.service import retry

    row = _recording_row(recording_id)
    result = retry(recording_id)
    audit.record("recording.retry", "recording", recording_id, result=result)
    flash(gettext("Recording %(id)s: %(result)s", id=recording_id, result=result), "ok")
    inquiry_id = (
        db_session()
        .execute(select(Interaction.inquiry_id).where(Interaction.id == row.interaction_id))
        .scalar()
    )
    return redirect(url_for("console.inquiry", inquiry_id=inquiry_id))
