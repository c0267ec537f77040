"""CSRF tokens for every console form (a synchronizer token in the signed session cookie).

The token is a random value kept in Flask's session (signed with SECRET_KEY, HttpOnly,
SameSite=Lax); a form carries it in the hidden field ``csrf_token`` (``{{ csrf_field() }}``),
a script may send it as ``X-CSRF-Token``. Every request other than GET/HEAD/OPTIONS to a
protected blueprint must present it, compared in constant time; otherwise 400 and nothing
runs. A cross-site request (``Sec-Fetch-Site: cross-site``) is refused whatever it carries.
Logging in and out clears the session, so each login starts with a new token.
"""

from __future__ import annotations

import hmac
import secrets

from flask import Blueprint, abort, current_app, request, session
from markupsafe import Markup

FIELD = "csrf_token"
HEADER = "X-CSRF-Token"
_KEY = "_csrf"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def csrf_token() -> str:
    """This browser session's token (made on first use)."""
    token = session.get(_KEY)
    if not token:
        token = session[_KEY] = secrets.token_urlsafe(32)
    return token


def csrf_field() -> Markup:
    """The hidden input every console ``<form method="post">`` must contain."""
    return Markup('<input type="hidden" name="{}" value="{}">').format(FIELD, csrf_token())


def check_csrf() -> None:
    """Abort with 400 unless an unsafe request carries this session's token."""
    if request.method in SAFE_METHODS:
        return
    expected = session.get(_KEY, "")
    sent = request.form.get(FIELD) or request.headers.get(HEADER) or ""
    cross_site = request.headers.get("Sec-Fetch-Site") == "cross-site"
    if cross_site or not token_matches(sent, expected):
        current_app.logger.info("refused a %s to %s: CSRF token", request.method, request.path)
        abort(400)


def token_matches(sent: object, expected: object) -> bool:
    """Constant-time comparison that is simply False for anything malformed (not a string,
    empty, non-ASCII, oversized), never an exception."""
    if not isinstance(sent, str) or not isinstance(expected, str) or not expected:
        return False
    if len(sent) > 256:
        return False
    return hmac.compare_digest(sent.encode("utf-8"), expected.encode("utf-8"))


def protect(blueprint: Blueprint) -> None:
    """Check the CSRF token on every unsafe request to ``blueprint``."""
    blueprint.before_request(check_csrf)
