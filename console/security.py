"""Response headers for the whole app and generic error pages for the console.

Every response gets the CSP (no inline script or style: the console's CSS and any script are
files under ``/console/static``), ``nosniff``, ``Referrer-Policy: no-referrer`` and framing
refused; HSTS in production. Console pages (not their static files) get ``Cache-Control:
no-store``: they show personal data and must not stay in a browser's or a proxy's cache. A view
may set its own header first (``setdefault`` keeps it), e.g. a stricter CSP.

Errors under ``/console`` are a page with the status and a generic sentence: no exception
text, no stack trace (those go to the log, through the phone-number redaction filter).
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Request, Response, render_template, request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from werkzeug.exceptions import HTTPException, InternalServerError

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
HSTS = "max-age=63072000; includeSubDomains"
CONSOLE_PREFIX = "/console"


def is_console_request() -> bool:
    path = request.path
    return path == CONSOLE_PREFIX or path.startswith(CONSOLE_PREFIX + "/")


def init_app(app: Flask, *, production: bool) -> None:
    app.session_interface = CookieSessionWhenSent()
    always = [
        ("Content-Security-Policy", CSP),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
        ("X-Frame-Options", "DENY"),
        ("Cross-Origin-Opener-Policy", "same-origin"),
    ]
    if production:
        always.append(("Strict-Transport-Security", HSTS))

    @app.after_request
    def _security_headers(response: Response) -> Response:
        headers = response.headers
        for name, value in always:
            headers.setdefault(name, value)  # what the view set itself stays
        if is_console_request() and request.endpoint != "console.static":
            headers["Cache-Control"] = "no-store"
            headers.setdefault("Pragma", "no-cache")
        return response

    @app.errorhandler(HTTPException)
    def _console_http_error(error: HTTPException) -> Any:
        if not is_console_request() or error.code is None:
            return error
        return _error_page(error.code)

    @app.errorhandler(InternalServerError)
    def _console_server_error(error: InternalServerError) -> Any:
        # Flask has logged the original exception already; the page says nothing about it.
        if not is_console_request():
            return error
        return _error_page(500)


def _error_page(code: int) -> Any:
    try:
        return render_template("console/error.html", code=code), code
    except Exception:  # the error page itself must not fail (a broken DB, a template error)
        return Response(f"Error {code}", status=code, mimetype="text/plain")


class CookieSessionWhenSent(SecureCookieSessionInterface):
    """Flask's signed-cookie session, opened only when the request carries its cookie.

    A carrier webhook never has one; Flask's own interface would still derive the signing key
    (an HMAC) for every such request before finding no cookie."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)
