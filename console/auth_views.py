"""Login (the password; then, as the account needs: its TOTP code, a new password in place of
one someone else set, the TOTP enrolment), logout.

What a half-finished login has reached is kept on the server (``staff.pending``): the browser
holds only a random token in its own cookie (HttpOnly, SameSite=Strict), never the account or
the stage, so ``SECRET_KEY`` (which signs Flask's session, here only the CSRF token) opens no
step. A session (``staff.sessions``) is made only when every step is done. Each step checks
that the login is at that stage, for an active account whose password has not changed since.
"""

from __future__ import annotations

import contextlib
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
from staff.login import (
    enrol_step,
    login_succeeded,
    new_password_step,
    next_stage,
    password_step,
    totp_step,
)
from staff.models import StaffUser
from staff.passwords import MAX_LENGTH, MIN_LENGTH, WeakPassword
from staff.pending import Pending, PendingLogins, password_stamp
from staff.ratelimit import Attempt, HashingBusy, HashingGate, LoginLimiter, LoginThrottled
from staff.sessions import cookie_name, end_session, start_session

#: The page of each stage a pending login may be at.
STAGE_ENDPOINTS = {
    "totp": "console.login_totp",
    "password": "console.login_password",
    "enrol": "console.login_enrol",
}
#: Longer input than a password may be is cut here (the policy then refuses it as too long).
PASSWORD_FIELD_MAX = MAX_LENGTH + 1


def client_address() -> str:
    """The client's address (``TRUSTED_PROXIES`` decides whether a proxy's word counts)."""
    return audit.request_address() or "unknown"


def login_limiter() -> LoginLimiter:
    svc = services()
    return LoginLimiter(svc.redis, svc.protector)


def hashing_gate() -> HashingGate:
    svc = services()
    return HashingGate(svc.redis, svc.settings.staff_max_password_hashes)


def pending_logins() -> PendingLogins:
    svc = services()
    return PendingLogins(svc.redis, svc.protector)


def pending_cookie_name() -> str:
    """``__Host-`` in production, like the session cookie."""
    return "__Host-hotline_login" if services().settings.env == "production" else "hotline_login"


def weak_password_message(error: WeakPassword) -> str:
    messages = {
        "short": gettext("The new password needs at least %(n)s characters.", n=MIN_LENGTH),
        "long": gettext("The new password may have at most %(n)s characters.", n=MAX_LENGTH),
        "common": gettext("That password is too common or too simple. Choose another."),
        "username": gettext("The new password must not contain your username."),
        "unchanged": gettext("The new password must differ from the current one."),
    }
    return messages.get(error.rule, gettext("Choose another password."))


def _throttle_text(wait_s: float) -> str:
    seconds = int(wait_s) + 1
    return gettext("Too many attempts. Try again in %(seconds)s seconds.", seconds=seconds)


def _throttled(template: str, wait_s: float, **context: Any) -> Any:
    return render_template(template, error=_throttle_text(wait_s), **context), 429


def _unavailable(template: str, **context: Any) -> Any:
    message = gettext("Signing in is not possible right now. Try again in a minute.")
    return render_template(template, error=message, **context), 503


def busy(template: str, **context: Any) -> Any:
    """All password-hashing slots are taken: answered at once, with no work done."""
    message = gettext("Too many sign-ins at this moment. Try again in a few seconds.")
    return render_template(template, error=message, **context), 503, {"Retry-After": "2"}


def set_staff_cookie(response: Response, token: str) -> None:
    """Give the browser the session token (HttpOnly, SameSite=Lax; Secure in production)."""
    settings = services().settings
    response.set_cookie(
        cookie_name(settings), token, httponly=True, secure=settings.env == "production",
        samesite="Lax", path="/",
    )  # fmt: skip


def _set_pending_cookie(response: Response, token: str) -> None:
    response.set_cookie(
        pending_cookie_name(), token, httponly=True,
        secure=services().settings.env == "production", samesite="Strict", path="/",
    )  # fmt: skip


def _forget_pending_cookie(response: Response) -> None:
    response.delete_cookie(
        pending_cookie_name(), path="/", secure=services().settings.env == "production",
        httponly=True, samesite="Strict",
    )  # fmt: skip


def _pending(stage: str) -> tuple[Pending, StaffUser] | None:
    """This browser's pending login if it is at ``stage``, for an active account whose
    password is the one it was started with; else None. Raises ``redis.RedisError``."""
    pending = pending_logins().load(request.cookies.get(pending_cookie_name()))
    if pending is None or pending.stage != stage:
        return None
    user = db_session().get(StaffUser, pending.user_id)
    if user is None or not user.active or password_stamp(user) != pending.stamp:
        return None
    return pending, user


def _start_again() -> Response:
    return redirect(url_for("console.login"))


def _complete(
    user: StaffUser,
    next_url: str | None,
    *,
    attempt: Attempt | None = None,
    pending: Pending | None = None,
) -> Any:
    """End the pending login (only one request can), start the session (a new one: the old
    token, if any, ends), set the cookie. ``attempt``: the charge of this request's step."""
    db = db_session()
    limiter = login_limiter()
    if pending is not None and not pending_logins().finish(pending):
        db.rollback()  # another request finished (or ended) this login first
        return _start_again()
    name = cookie_name(services().settings)
    token, _ = start_session(db, user, client_address(), replaces=request.cookies.get(name))
    if attempt is not None:
        login_succeeded(db, limiter, user, attempt, client_address())
    else:  # every step was refunded already: forget the pair's failures
        assert pending is not None
        login_succeeded(
            db, limiter, user, Attempt(pending.attempt_keys), client_address(), refunded=True
        )
    db.commit()
    session.clear()  # a new CSRF token for the new session
    response = redirect(safe_next(next_url) or url_for("console.home"))
    set_staff_cookie(response, token)
    _forget_pending_cookie(response)
    return response


def _advance(
    pending: Pending, user: StaffUser, attempt: Attempt | None, *, code_given: bool = False
) -> Any:
    """A step of ``pending`` passed: on to the next stage, or complete the login."""
    code_given = code_given or pending.code_given
    stage = next_stage(
        user, code_given=code_given, require_totp=services().settings.staff_require_totp
    )
    if stage is None:
        return _complete(user, pending.next_url, attempt=attempt, pending=pending)
    db = db_session()
    if attempt is not None:
        login_limiter().refund(attempt)
    moved = pending_logins().advance(
        pending, stage, code_given=code_given, stamp=password_stamp(user)
    )
    if not moved:
        db.rollback()
        return _start_again()
    db.commit()
    return redirect(url_for(STAGE_ENDPOINTS[stage]))


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
    limiter = login_limiter()
    try:
        result = password_step(
            db, limiter, hashing_gate(), username=username,
            password=request.form.get("password", "")[:256], address=client_address(),
        )  # fmt: skip
    except LoginThrottled as throttled:
        return _throttled("console/login.html", throttled.wait_s, **form)
    except HashingBusy:
        return busy("console/login.html", **form)
    except redis.RedisError:
        return _unavailable("console/login.html", **form)
    user = result.user
    if user is None:
        db.commit()  # the audit row
        error = gettext("Wrong username or password.")
        return render_template("console/login.html", error=error, **form), 401
    settings = services().settings
    stage = next_stage(user, code_given=False, require_totp=settings.staff_require_totp)
    if stage is None:
        return _complete(user, next_url, attempt=result.attempt)
    try:
        limiter.refund(result.attempt)
        token = pending_logins().begin(
            user, stage, next_url=next_url, attempt_keys=result.attempt.keys,
            replaces=request.cookies.get(pending_cookie_name()),
        )  # fmt: skip
    except redis.RedisError:
        return _unavailable("console/login.html", **form)
    db.commit()  # an upgraded password hash
    response = redirect(url_for(STAGE_ENDPOINTS[stage]))
    _set_pending_cookie(response, token)
    return response


@bp.get("/login/totp")
@public
def login_totp() -> Any:
    try:
        found = _pending("totp")
    except redis.RedisError:
        return _unavailable("console/totp.html")
    if found is None:
        return _start_again()
    return render_template("console/totp.html")


@bp.post("/login/totp")
@public
def login_totp_post() -> Any:
    template = "console/totp.html"
    db = db_session()
    try:
        found = _pending("totp")
        if found is None:
            return _start_again()
        pending, user = found
        result = totp_step(
            db, services().protector, login_limiter(), user=user,
            code=request.form.get("code", "")[:16], address=client_address(),
        )  # fmt: skip
        if result.user is None:
            db.commit()
            error = gettext("That code is not right. Enter the current code from your app.")
            return render_template(template, error=error), 401
        return _advance(pending, result.user, result.attempt, code_given=True)
    except LoginThrottled as throttled:
        return _throttled(template, throttled.wait_s)
    except redis.RedisError:
        db.rollback()
        return _unavailable(template)


def _password_page(error: str | None = None, status: int = 200, **extra: Any) -> Any:
    context = {"error": error, "min_length": MIN_LENGTH, "max_length": MAX_LENGTH, **extra}
    return render_template("console/login_password.html", **context), status


@bp.get("/login/password")
@public
def login_password() -> Any:
    try:
        found = _pending("password")
    except redis.RedisError:
        return _password_page(gettext("Signing in is not possible right now. Try again in a "
                                      "minute."), 503)  # fmt: skip
    if found is None:
        return _start_again()
    return _password_page()


@bp.post("/login/password")
@public
def login_password_post() -> Any:
    """The password was set by someone else (a new or reset account): the owner sets their own
    before anything else (no TOTP enrolment, no session until then)."""
    db = db_session()
    form = request.form
    new = form.get("new_password", "")[:PASSWORD_FIELD_MAX]
    repeated = form.get("new_password2", "")[:PASSWORD_FIELD_MAX]
    try:
        found = _pending("password")
        if found is None:
            return _start_again()
        pending, user = found
        if new != repeated:
            return _password_page(gettext("The two new passwords are not the same."), 400)
        try:
            new_password_step(db, hashing_gate(), user=user, new_password=new)
        except WeakPassword as weak:
            db.rollback()
            return _password_page(weak_password_message(weak), 400)
        except HashingBusy:
            db.rollback()
            return busy("console/login_password.html", min_length=MIN_LENGTH,
                        max_length=MAX_LENGTH)  # fmt: skip
        return _advance(pending, user, None)
    except redis.RedisError:
        db.rollback()
        return _password_page(gettext("Signing in is not possible right now. Try again in a "
                                      "minute."), 503)  # fmt: skip


def _enrol_page(
    user: StaffUser | None, secret: str | None, error: str | None = None, status: int = 200
) -> Any:
    """The enrolment page; the key and its QR code only when ``secret`` is given (once)."""
    context: dict[str, Any] = {"error": error, "secret": None, "qr": None}
    if secret is not None and user is not None:
        uri = totp.provisioning_uri(secret, user.username)
        context.update(secret=secret, qr=totp.qr_svg_data_uri(uri))
    return render_template("console/enrol.html", **context), status


def _enrolled_already() -> Any:
    error = gettext(
        "This account has an authenticator already. Start again and sign in with its code."
    )
    return render_template("console/enrol.html", error=error, refused=True), 409


@bp.get("/login/enrol")
@public
def login_enrol() -> Any:
    """Makes this login's TOTP secret at the first view and shows it then, only then."""
    try:
        found = _pending("enrol")
        if found is None:
            return _start_again()
        pending, user = found
        if user.totp_enabled:
            return _enrolled_already()
        secret = totp.new_secret()
        if pending_logins().reveal_new_secret(pending, secret):
            return _enrol_page(user, secret)
    except redis.RedisError:
        return _unavailable("console/enrol.html", refused=True)
    return _enrol_page(
        user, None, gettext("The key was shown once already. If it is not in your app, start "
                            "again: you will get a new one."),
    )  # fmt: skip


@bp.post("/login/enrol")
@public
def login_enrol_post() -> Any:
    db = db_session()
    try:
        found = _pending("enrol")
        if found is None:
            return _start_again()
        pending, user = found
        if user.totp_enabled:
            return _enrolled_already()
        secret = pending_logins().enrolment_secret(pending)
        if secret is None:  # the page was never shown: show it (and make the key) now
            return redirect(url_for("console.login_enrol"))
        result = enrol_step(
            db, services().protector, login_limiter(), user=user, secret=secret,
            code=request.form.get("code", "")[:16], address=client_address(),
        )  # fmt: skip
        if result.user is None:
            db.commit()  # the audit row
            if user.totp_enabled:
                return _enrolled_already()
            error = gettext("That code is not right. Enter the current code from your app.")
            return _enrol_page(user, None, error, 401)
        return _advance(pending, result.user, result.attempt, code_given=True)
    except LoginThrottled as throttled:
        return _enrol_page(None, None, _throttle_text(throttled.wait_s), 429)
    except redis.RedisError:
        db.rollback()
        return _unavailable("console/enrol.html", refused=True)


@bp.post("/logout")
@public
def logout() -> Any:
    """End the session on the server (whatever state it is in), forget the cookies."""
    db = db_session()
    staff_session, user = current_session(), current_staff()
    if staff_session is not None and user is not None:
        end_session(db, staff_session, "logout")
        audit.record("logout", "staff_user", user.id, using=db, actor=user.id)
        db.commit()
    with contextlib.suppress(redis.RedisError):  # else it expires on its own
        pending_logins().discard(request.cookies.get(pending_cookie_name()))
    session.clear()
    response = make_response(redirect(url_for("console.login")))
    settings = services().settings
    response.delete_cookie(
        cookie_name(settings), path="/", secure=settings.env == "production", httponly=True,
        samesite="Lax",
    )  # fmt: skip
    _forget_pending_cookie(response)
    return response
