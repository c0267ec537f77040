"""Object-level access: who may see which inquiry."""

from __future__ import annotations

import pytest
from sqlalchemy import insert

from console.access import can_view_inquiry, can_view_interaction
from db import db_session
from inquiries.models import Caller, Inquiry, Interaction
from routing.models import Offer, QueueEntry
from routing.service import create_handler
from services import services
from staff.authz import roles_required
from staff.models import StaffUser
from tests.staff.support import make_user


def add_case(db, n: int) -> tuple[int, int]:
    caller = db.execute(
        insert(Caller).values(number_hash=f"{n:064x}").returning(Caller.id)
    ).scalar()
    inquiry = db.execute(insert(Inquiry).values(caller_id=caller).returning(Inquiry.id)).scalar()
    call = db.execute(
        insert(Interaction)
        .values(inquiry_id=inquiry, provider_sid=f"CA{n:032x}")
        .returning(Interaction.id)
    ).scalar()
    return inquiry, call


#: The states of an offer that was not (yet) taken.
NOT_TAKEN = ("placing", "ringing", "missed", "rejected", "canceled", "lost")


@pytest.fixture
def world(app):
    """Two handlers (with staff accounts) and cases: Anna connected to one, accepted an offer
    for one, was offered others without taking them (ringing now, missed, lost to another
    handler under ring-all, …); Borys connected to one."""
    with app.app_context():
        db = db_session()
        protector = services().protector
        ids = {}
        for name in ("anna", "borys"):
            ids[name] = create_handler(
                db, protector, display_name=name, languages=["uk"], skills=["other"], client=name
            )
        cases = {
            key: add_case(db, n)
            for n, key in enumerate(["connected", "accepted", "other", *NOT_TAKEN])
        }
        db.add(QueueEntry(interaction_id=cases["connected"][1], language="uk", kind="other",
                          handler_id=ids["anna"], state="done"))  # fmt: skip
        db.add(Offer(interaction_id=cases["accepted"][1], handler_id=ids["anna"], state="accepted"))
        for state in NOT_TAKEN:  # offered, never taken: the call waits, or went elsewhere
            db.add(Offer(interaction_id=cases[state][1], handler_id=ids["anna"], state=state))
            db.add(QueueEntry(interaction_id=cases[state][1], language="uk", kind="other",
                              state="offered" if state in ("placing", "ringing") else "waiting"))  # fmt: skip
        db.add(QueueEntry(interaction_id=cases["other"][1], language="uk", kind="other",
                          handler_id=ids["borys"], state="done"))  # fmt: skip
        db.commit()
    users = {
        "anna": make_user(app, "handler", "anna", handler_id=ids["anna"])[0],
        "unlinked": make_user(app, "handler", "unlinked")[0],
        **{role: make_user(app, role)[0] for role in ("supervisor", "auditor", "admin")},
    }
    return cases, users


def test_a_handler_sees_only_the_inquiries_they_took_part_in(app, world) -> None:
    cases, users = world
    with app.app_context():
        anna = db_session().get(StaffUser, users["anna"])
        seen = {key for key, (inquiry, _) in cases.items() if can_view_inquiry(anna, inquiry)}
        assert seen == {"connected", "accepted"}
        calls = {key for key, (_, call) in cases.items() if can_view_interaction(anna, call)}
        assert calls == {"connected", "accepted"}
        unlinked = db_session().get(StaffUser, users["unlinked"])
        assert not any(can_view_inquiry(unlinked, inquiry) for inquiry, _ in cases.values())
        assert not can_view_interaction(anna, 10**9)


@pytest.mark.parametrize("role", ["supervisor", "auditor", "admin"])
def test_supervisors_auditors_and_admins_see_every_inquiry(app, world, role) -> None:
    cases, users = world
    with app.app_context():
        user = db_session().get(StaffUser, users[role])
        assert all(can_view_inquiry(user, inquiry) for inquiry, _ in cases.values())
        user.active = False  # a disabled account sees nothing
        assert not any(can_view_inquiry(user, inquiry) for inquiry, _ in cases.values())
        assert not can_view_inquiry(None, cases["other"][0])


def test_roles_required_checks_its_roles() -> None:
    with pytest.raises(ValueError):
        roles_required()
    with pytest.raises(ValueError):
        roles_required("superuser")
