"""Login (password, then the TOTP code or the TOTP enrolment), logout.

Between the two steps the browser's signed session holds only the user id, the stage and the
time the password was accepted (``PENDING_S`` to finish). A session (``staff.sessions``) is
made only when the login is complete: with the code when TOTP is required or enrolled.
"""

from __future__ import annotations

import time
from typing import Any

import redis
from flask import make_response, redirect, render_template, request, session, url_for
from flask_babel import gettext
from werkzeug.wrappers import Response

from console.blueprint import bp
from db import db_session
from services import services
from staff import audit, totp
from staff.authz import current_session, current_staff, public, safe_next
from staff.login import login_succeeded, password_step, totp_step
from staff.models import StaffUser
from staff.ratelimit import Attempt, LoginLimiter, LoginThrottled
from staff.sessions import cookie_name, end_session, start_session

PENDING_S = 300
_PENDING = "login"


def client_address() -> str:
    """The client's address (``TRUSTED_PROXIES`` decides whether a proxy's word counts)."""
    return audit.request_address() or "unknown"


def login_limiter() -> LoginLimiter:
    svc = services()
    return LoginLimiter(svc.redis, svc.protector)


def _throttled(template: str, wait_s: float, **context: Any) -> Any:
    seconds = int(wait_s) + 1
    message = gettext("Too many attempts. Try again in %(seconds)s seconds.", seconds=seconds)
    return render_template(template, error=message, **context), 429


def _unavailable(template: str, **context: Any) -> Any:
    message = gettext("Signing in is not possible right now. Try again in a minute.")
    return render_template(template, error=message, **context), 503


def _pending_user(stage: str) -> StaffUser | None:
    pending = session.get(_PENDING)
    if not isinstance(pending, dict) or pending.get("stage") != stage:
        return None
    if time.time() - float(pending.get("since", 0)) > PENDING_S:
        session.pop(_PENDING, None)
        return None
    user = db_session().get(StaffUser, int(pending.get("uid", 0)))
    return user if user is not None and user.active else None


def _complete(user: StaffUser, attempt: Attempt, next_url: str | None) -> Any:
    """Start the session (a new one: the old token, if any, ends), set the cookie."""
    db = db_session()
    name = cookie_name(services().settings)
    token, _ = start_session(db, user, client_address(), replaces=request.cookies.get(name))
    login_succeeded(db, login_limiter(), user, attempt, client_address())
    db.commit()
    session.clear()  # a new CSRF token for the new session
    response = redirect(safe_next(next_url) or url_for("console.home"))
    set_staff_cookie(response, token)
    return response


def set_staff_cookie(response: Response, token: str) -> None:
    """Give the browser the session token (HttpOnly, SameSite=Lax; Secure in production)."""
    settings = services().settings
    response.set_cookie(
        cookie_name(settings), token, httponly=True, secure=settings.env == "production",
        samesite="Lax", path="/",
    )  # fmt: skip


@bp.get("/login")
@public
def login() -> Any:
    if current_staff() is not None:
        return redirect(url_for("console.home"))
    return render_template("console/login.html", next=safe_next(request.args.get("next")))


@bp.post("/login")
@public
def login_post() -> Any:
    db = db_session()
    next_url = safe_next(request.form.get("next"))
    username = request.form.get("username", "")[:64]
    form = {"next": next_url, "username": username}
    try:
        result = password_step(
            db, login_limiter(), username=username, password=request.form.get("password", "")[:256],
            address=client_address(),
        )  # fmt: skip
    except LoginThrottled as throttled:
        return _throttled("console/login.html", throttled.wait_s, **form)
    except redis.RedisError:
        return _unavailable("console/login.html", **form)
    user = result.user
    if user is None:
        db.commit()  # the audit row
        error = gettext("Wrong username or password.")
        return render_template("console/login.html", error=error, **form), 401
    settings = services().settings
    if not user.totp_enabled and not settings.staff_require_totp:
        return _complete(user, result.attempt, next_url)
    login_limiter().refund(result.attempt)
    stage = "totp" if user.totp_enabled else "enrol"
    if stage == "enrol" and user.totp_ciphertext is None:
        totp.seal_secret(services().protector, user, totp.new_secret())
    db.commit()
    session[_PENDING] = {"uid": user.id, "stage": stage, "since": time.time(), "next": next_url}
    return redirect(url_for("console.login_totp" if stage == "totp" else "console.login_enrol"))


def _code_step(stage: str, template: str, context: dict[str, Any]) -> Any:
    user = _pending_user(stage)
    if user is None:
        return redirect(url_for("console.login"))
    db = db_session()
    try:
        result = totp_step(
            db, services().protector, login_limiter(), user=user,
            code=request.form.get("code", "")[:16], address=client_address(),
            enrolling=stage == "enrol",
        )  # fmt: skip
    except LoginThrottled as throttled:
        return _throttled(template, throttled.wait_s, **context)
    except redis.RedisError:
        return _unavailable(template, **context)
    if result.user is None:
        db.commit()
        error = gettext("That code is not right. Enter the current code from your app.")
        return render_template(template, error=error, **context), 401
    return _complete(result.user, result.attempt, session[_PENDING].get("next"))


@bp.get("/login/totp")
@public
def login_totp() -> Any:
    if _pending_user("totp") is None:
        return redirect(url_for("console.login"))
    return render_template("console/totp.html")


@bp.post("/login/totp")
@public
def login_totp_post() -> Any:
    return _code_step("totp", "console/totp.html", {})


def _enrolment_context(user: StaffUser) -> dict[str, Any]:
    secret = totp.open_secret(services().protector, user) or ""
    uri = totp.provisioning_uri(secret, user.username)
    return {"qr": totp.qr_svg_data_uri(uri), "secret": secret, "uri": uri}


@bp.get("/login/enrol")
@public
def login_enrol() -> Any:
    user = _pending_user("enrol")
    if user is None:
        return redirect(url_for("console.login"))
    return render_template("console/enrol.html", **_enrolment_context(user))


@bp.post("/login/enrol")
@public
def login_enrol_post() -> Any:
    user = _pending_user("enrol")
    context = _enrolment_context(user) if user is not None else {}
    return _code_step("enrol", "console/enrol.html", context)


@bp.post("/logout")
@public
def logout() -> Any:
    """End the session on the server (whatever state it is in), forget the cookie."""
    db = db_session()
    staff_session, user = current_session(), current_staff()
    if staff_session is not None and user is not None:
        end_session(db, staff_session, "logout")
        audit.record("logout", "staff_user", user.id, using=db, actor=user.id)
        db.commit()
    session.clear()
    response = make_response(redirect(url_for("console.login")))
    settings = services().settings
    response.delete_cookie(
        cookie_name(settings), path="/", secure=settings.env == "production", httponly=True,
        samesite="Lax",
    )  # fmt: skip
    return response
