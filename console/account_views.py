"""A signed-in member's own account: changing their password.

The current password is asked for again and counted by the login throttle (``staff.login.
recheck_password``), so a session left open, or stolen, cannot be used to guess it. A change
ends every other session of the account and renews this one (a new token, a new CSRF token);
it is audited ``staff.password_change``, never with the password.
"""

from __future__ import annotations

from typing import Any

import redis
from flask import flash, redirect, render_template, request, session, url_for
from flask_babel import gettext

from console.auth_views import (
    PASSWORD_FIELD_MAX,
    busy,
    client_address,
    hashing_gate,
    login_limiter,
    set_staff_cookie,
    weak_password_message,
)
from console.blueprint import bp
from db import db_session
from staff.authz import current_session, current_staff, login_required
from staff.login import new_password_step, recheck_password
from staff.passwords import MAX_LENGTH, MIN_LENGTH, WeakPassword
from staff.ratelimit import HashingBusy, LoginThrottled
from staff.sessions import renew_session

TEMPLATE = "console/account_password.html"
_FIELD_MAX = PASSWORD_FIELD_MAX


def _page(error: str | None = None, status: int = 200) -> Any:
    context = {"error": error, "min_length": MIN_LENGTH, "max_length": MAX_LENGTH}
    return render_template(TEMPLATE, **context), status


@bp.get("/account/password")
@login_required
def account_password() -> Any:
    return _page()


@bp.post("/account/password")
@login_required
def account_password_post() -> Any:
    db = db_session()
    user, staff_session = current_staff(), current_session()
    assert user is not None and staff_session is not None  # login_required
    form = request.form
    current = form.get("current_password", "")[:256]
    new, repeated = form.get("new_password", "")[:_FIELD_MAX], form.get("new_password2", "")
    try:
        right = recheck_password(
            db, login_limiter(), hashing_gate(), user=user, password=current,
            address=client_address(),
        )  # fmt: skip
    except HashingBusy:
        return busy(TEMPLATE, min_length=MIN_LENGTH, max_length=MAX_LENGTH)
    except LoginThrottled as throttled:
        seconds = int(throttled.wait_s) + 1
        message = gettext("Too many attempts. Try again in %(seconds)s seconds.", seconds=seconds)
        return _page(message, 429)
    except redis.RedisError:
        return _page(gettext("Changing the password is not possible right now. Try again in a "
                             "minute."), 503)  # fmt: skip
    if not right:
        db.commit()  # the audit row
        return _page(gettext("Your current password is not right."), 400)
    if new != repeated[:_FIELD_MAX]:
        return _page(gettext("The two new passwords are not the same."), 400)
    try:
        new_password_step(
            db, hashing_gate(), user=user, new_password=new, keep_session=staff_session.id
        )
    except WeakPassword as weak:
        db.rollback()
        return _page(weak_password_message(weak), 400)
    except HashingBusy:
        db.rollback()
        return busy(TEMPLATE, min_length=MIN_LENGTH, max_length=MAX_LENGTH)
    except redis.RedisError:
        db.rollback()
        return _page(gettext("Changing the password is not possible right now. Try again in a "
                             "minute."), 503)  # fmt: skip
    token, _ = renew_session(db, staff_session)
    db.commit()
    session.clear()  # a new CSRF token with the new session token
    flash(gettext("Your password is changed. You were signed out everywhere else."), "info")
    response = redirect(url_for("console.home"))
    set_staff_cookie(response, token)
    return response
