"""Admin pages: list staff accounts, create one, change a role, disable or enable (audited)."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from sqlalchemy import select

from console.blueprint import bp
from db import db_session
from routing.models import Handler
from services import services
from staff import accounts
from staff.authz import current_staff, roles_required
from staff.models import ROLES, STAFF_LANGUAGES, StaffUser


def _form_context(**extra: Any) -> dict[str, Any]:
    handlers = db_session().scalars(select(Handler).order_by(Handler.display_name)).all()
    return {"roles": ROLES, "languages": STAFF_LANGUAGES, "handlers": handlers, **extra}


def _target(user_id: int) -> StaffUser:
    user = db_session().get(StaffUser, user_id)
    if user is None:
        abort(404)
    me = current_staff()
    if me is not None and me.id == user.id:
        abort(409)  # one's own role or access is changed by another admin
    return user


@bp.get("/admin/users")
@roles_required("admin")
def admin_users() -> Any:
    db = db_session()
    users = db.scalars(select(StaffUser).order_by(StaffUser.username)).all()
    linked = {u.handler_id for u in users if u.handler_id is not None}
    handler_names = dict(
        db.execute(select(Handler.id, Handler.display_name).where(Handler.id.in_(linked))).all()
    ) if linked else {}  # fmt: skip
    return render_template(
        "console/admin/users.html", users=users, roles=ROLES, handler_names=handler_names
    )


@bp.get("/admin/users/new")
@roles_required("admin")
def admin_user_new() -> Any:
    return render_template("console/admin/user_new.html", form={}, **_form_context())


@bp.post("/admin/users")
@roles_required("admin")
def admin_user_create() -> Any:
    db = db_session()
    form = request.form
    handler = form.get("handler_id", "").strip()
    me = current_staff()
    try:
        enrolment = accounts.create_user(
            db, services().protector, username=form.get("username", "")[:64],
            display_name=form.get("display_name", "")[:80], role=form.get("role", ""),
            language=form.get("language", "uk"),
            handler_id=int(handler) if handler.isdigit() else None,
            actor=me.id if me else None,
        )  # fmt: skip
    except ValueError as exc:
        db.rollback()
        context = _form_context(form=form, error=str(exc))
        return render_template("console/admin/user_new.html", **context), 400
    db.commit()
    user = db.get(StaffUser, enrolment.user_id)
    return render_template(
        "console/admin/user_created.html", user=user, password=enrolment.password
    )


@bp.post("/admin/users/<int:user_id>/role")
@roles_required("admin")
def admin_user_role(user_id: int) -> Any:
    db = db_session()
    user = _target(user_id)
    me = current_staff()
    try:
        accounts.set_role(db, user, request.form.get("role", ""), actor=me.id if me else None)
    except ValueError as exc:
        db.rollback()
        flash(str(exc), "error")
        return redirect(url_for("console.admin_users"))
    db.commit()
    flash(gettext("Role changed."), "info")
    return redirect(url_for("console.admin_users"))


@bp.post("/admin/users/<int:user_id>/active")
@roles_required("admin")
def admin_user_active(user_id: int) -> Any:
    db = db_session()
    user = _target(user_id)
    me = current_staff()
    active = request.form.get("active") == "1"
    try:
        accounts.set_active(db, user, active, actor=me.id if me else None)
    except ValueError as exc:
        db.rollback()
        flash(str(exc), "error")
        return redirect(url_for("console.admin_users"))
    db.commit()
    flash(gettext("Account enabled.") if active else gettext("Account disabled."), "info")
    return redirect(url_for("console.admin_users"))
