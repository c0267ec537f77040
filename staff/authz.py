"""Who may see what: the signed-in staff member, route guards and object-level checks.

Routes: mark every view with exactly one of ``public``, ``login_required`` or
``roles_required(*roles)``. The decorators check on their own (they work on any blueprint),
and ``deny_unmarked(blueprint)`` makes a blueprint refuse (403) any endpoint that carries no
mark, so a forgotten decorator is a closed page, not an open one. Put the mark *under* the
route decorator (``@bp.get(...)`` first, then ``@roles_required(...)``); in the wrong order the
route sees an unmarked view, and that is a 403 too.

Objects (an inquiry, a call) are checked by ``console.access``: it knows the cases, and staff
sits below them in DESIGN.md's import order.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, g, redirect, request, url_for

from db import db_session
from services import services
from staff.models import ROLES, StaffSession, StaffUser
from staff.sessions import cookie_name, resume_session

F = TypeVar("F", bound=Callable[..., Any])
#: The attribute a guard leaves on a view: "public", "login" or a frozenset of roles.
ACCESS_ATTR = "staff_access"
#: Roles that see every inquiry.
SEE_ALL_INQUIRIES = frozenset({"supervisor", "auditor", "admin"})
LOGIN_ENDPOINT = "console.login"


def _load() -> tuple[StaffSession, StaffUser] | None:
    if "staff_loaded" not in g:
        g.staff_loaded = None
        svc = services()
        token = request.cookies.get(cookie_name(svc.settings), "")
        if token:
            db = db_session()
            g.staff_loaded = resume_session(db, token, svc.settings)
            if db.dirty:  # the activity mark, or the end of an expired session
                db.commit()
    return g.staff_loaded


def current_staff() -> StaffUser | None:
    """The signed-in, active staff member of this request, or None."""
    loaded = _load()
    return loaded[1] if loaded else None


def current_session() -> StaffSession | None:
    loaded = _load()
    return loaded[0] if loaded else None


def safe_next(target: str | None) -> str | None:
    """``target`` if it is a path on this site (no scheme, no host), else None."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return None
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc and "\\" not in target else None


def _refuse_anonymous() -> Any:
    if request.method in ("GET", "HEAD"):
        return redirect(url_for(LOGIN_ENDPOINT, next=request.full_path.rstrip("?")))
    abort(401)


def _guard(view: F, access: Any, check: Callable[[StaffUser], bool]) -> F:
    @wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        user = current_staff()
        if user is None:
            return _refuse_anonymous()
        if not check(user):
            abort(403)
        return view(*args, **kwargs)

    setattr(guarded, ACCESS_ATTR, access)
    return guarded  # type: ignore[return-value]


def public(view: F) -> F:
    """Anyone may open this view (the login pages)."""
    setattr(view, ACCESS_ATTR, "public")
    return view


def login_required(view: F) -> F:
    """Any signed-in staff member."""
    return _guard(view, "login", lambda _user: True)


def roles_required(*roles: str) -> Callable[[F], F]:
    """Signed-in staff members with one of ``roles``; others get 403."""
    unknown = set(roles) - set(ROLES)
    if not roles or unknown:
        raise ValueError(f"roles_required needs roles from {ROLES}, got {roles}")
    allowed = frozenset(roles)

    def decorate(view: F) -> F:
        return _guard(view, allowed, lambda user: user.role in allowed)

    return decorate


def access_of(endpoint: str | None) -> Any:
    """The guard mark of an endpoint's view (None: unmarked)."""
    view = current_app.view_functions.get(endpoint or "")
    return getattr(view, ACCESS_ATTR, None)


def deny_unmarked(blueprint: Blueprint, *, allow: tuple[str, ...] = ("static",)) -> None:
    """Refuse (403) every endpoint of ``blueprint`` whose view carries no guard mark."""
    allowed = {f"{blueprint.name}.{name}" for name in allow}

    @blueprint.before_request
    def _deny_unmarked() -> None:
        if request.endpoint in allowed:
            return
        if access_of(request.endpoint) is None:
            current_app.logger.warning("refused unmarked endpoint %s", request.endpoint)
            abort(403)
