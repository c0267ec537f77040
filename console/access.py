"""Object-level access for console views: which cases and calls a staff member may see.

Supervisors, auditors and admins see every inquiry; a handler sees an inquiry only if they took
part in one of its calls (connected to it, or accepted an offer for it). The ``require_*``
variants abort with 404, not 403: an id that is not yours looks like one that does not exist.
(Here rather than in ``staff``: these checks read the cases and the routing tables, which sit
above ``staff`` in DESIGN.md's import order.)
"""

from __future__ import annotations

from flask import abort
from sqlalchemy import exists, or_, select
from sqlalchemy.orm import Session

from db import db_session
from inquiries.models import Interaction
from routing.models import Offer, QueueEntry
from staff.authz import SEE_ALL_INQUIRIES, current_staff
from staff.models import StaffUser


def took_part(db: Session, handler_id: int, inquiry_id: int) -> bool:
    """Whether the handler was connected to (or accepted an offer for) a call of the inquiry."""
    in_inquiry = Interaction.inquiry_id == inquiry_id
    queued = (
        select(QueueEntry.id)
        .join(Interaction, Interaction.id == QueueEntry.interaction_id)
        .where(in_inquiry, QueueEntry.handler_id == handler_id)
    )
    accepted = (
        select(Offer.id)
        .join(Interaction, Interaction.id == Offer.interaction_id)
        .where(in_inquiry, Offer.handler_id == handler_id, Offer.state == "accepted")
    )
    return bool(db.scalar(select(or_(exists(queued), exists(accepted)))))


def can_view_inquiry(user: StaffUser | None, inquiry_id: int, db: Session | None = None) -> bool:
    if user is None or not user.active:
        return False
    if user.role in SEE_ALL_INQUIRIES:
        return True
    if user.role == "handler" and user.handler_id is not None:
        return took_part(db or db_session(), user.handler_id, inquiry_id)
    return False


def can_view_interaction(
    user: StaffUser | None, interaction_id: int, db: Session | None = None
) -> bool:
    """An interaction is visible to whoever may see its inquiry (the case is seen whole)."""
    db = db or db_session()
    inquiry_id = db.scalar(select(Interaction.inquiry_id).where(Interaction.id == interaction_id))
    return inquiry_id is not None and can_view_inquiry(user, inquiry_id, db)


def require_inquiry(inquiry_id: int) -> None:
    """Abort with 404 unless the current staff member may see the inquiry."""
    if not can_view_inquiry(current_staff(), inquiry_id):
        abort(404)


def require_interaction(interaction_id: int) -> None:
    if not can_view_interaction(current_staff(), interaction_id):
        abort(404)
