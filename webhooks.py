"""What every carrier webhook shares: the Twilio signature check and a TwiML response.

The signature is checked against ``PUBLIC_BASE_URL`` + path + query (never the Host header), over
every posted parameter, with twilio-python's ``RequestValidator``. A missing or bad signature is
a 403 before the view runs: nothing is read, written or enqueued. There is no bypass.
"""

from __future__ import annotations

import functools
import hmac
import logging
from collections.abc import Callable
from typing import Any

from flask import Flask, Request, Response, abort
from flask.ctx import RequestContext
from flask.globals import _cv_request
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import VoiceResponse
from werkzeug.datastructures import Headers
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Rule

from extensions import services

log = logging.getLogger(__name__)

MAX_FORM_BYTES = 64 * 1024  # Twilio's requests are a few kB; more is not from Twilio
#: The answer to a status callback: an empty <Response/> (serialised once, not per request).
EMPTY_TWIML = str(VoiceResponse())


def public_url(path_and_query: str | None = None, req: Request | None = None) -> str:
    """The URL the carrier was given for this request (or for ``path_and_query``)."""
    base = services().settings.public_base_url
    if path_and_query is not None:
        return base + path_and_query
    req = req or current_request()
    query = req.query_string.decode("latin-1")
    return base + req.path + (f"?{query}" if query else "")


def signature_is_valid(req: Request | None = None) -> bool:
    req = req or current_request()
    signature = req.headers.get("X-Twilio-Signature", "")
    if not signature:
        return False
    validator = _validator(services().settings.twilio_auth_token)
    url = public_url(req=req)
    params = req.form  # extensions.CarrierForm: the lists as they are, with ``getall``
    # The URL as configured is what the carrier signs: one HMAC. Only if that does not match,
    # let twilio-python also try the URL with/without the default port (two more).
    expected = validator.compute_signature(url, params)
    if hmac.compare_digest(expected, signature):
        return True
    return validator.validate(url, params, signature)


@functools.lru_cache(maxsize=4)
def _validator(token: str) -> RequestValidator:
    return RequestValidator(token)


_TWIML_TYPE = "text/xml; charset=utf-8"


class TwiMLResponse(Response):
    """A webhook's answer: its headers go out as they are when there is nothing to adjust.

    Werkzeug copies a response's headers before sending them (checking each again), to adjust
    ``Location`` headers, set a missing length or drop headers a 1xx/204/304 must not carry. A
    TwiML answer is a 200 with its length set and no location: nothing to adjust."""

    @classmethod
    def of(cls, twiml: str) -> TwiMLResponse:
        """``TwiMLResponse(twiml, mimetype="text/xml")``, the same object (tests/test_twiml_response
        compares every attribute), built directly: werkzeug's constructor sets the two headers
        through its checked setter and parses the status string, for every webhook."""
        data = twiml.encode()
        response = cls.__new__(cls)
        headers = Headers()
        headers._list = [("Content-Type", _TWIML_TYPE), ("Content-Length", str(len(data)))]
        response.__dict__.update(
            headers=headers, _status="200 OK", _status_code=200, direct_passthrough=False,
            _on_close=[], response=[data],
        )  # fmt: skip
        return response

    def get_wsgi_headers(self, environ: dict[str, Any]) -> Any:
        headers = self.headers
        if self.status_code == 200:
            # One pass over the few headers (``name in headers`` raises and catches werkzeug's
            # BadRequestKeyError for each name it does not find).
            names = {name.lower() for name, _ in headers}
            if "content-length" in names and not names & {"location", "content-location"}:
                return headers
        return super().get_wsgi_headers(environ)


def twilio_webhook(view: Callable[..., Any]) -> Callable[..., Any]:
    """Reject unsigned/forged requests with 403; answer with TwiML (``text/xml``)."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        req = current_request()
        if req.content_length is not None and req.content_length > MAX_FORM_BYTES:
            abort(413)
        if not signature_is_valid(req):
            log.warning("rejected a carrier request with a missing or invalid signature")
            abort(403)
        result = view(*args, **kwargs)
        if isinstance(result, Response):
            return result
        return TwiMLResponse.of(str(result))

    wrapper.carrier_webhook = True  # type: ignore[attr-defined]
    return wrapper


# ---------------------------------------------------------------- the request context


class CarrierRequestContext(RequestContext):
    """A carrier webhook's request context: its route already known, no session.

    For every request Flask binds a URL adapter to it (host, scheme, script root), matches the
    path and opens the cookie session. A webhook needs none of that: its route comes from
    ``CarrierRoutes`` and it never has a session (it reads no cookie and sets none; the session
    is Flask's null session, so nothing is saved either). The rest is Flask's own request
    handling: hooks, error handlers, signals, teardown.
    """

    def __init__(self, app: Flask, environ: dict[str, Any], rule: Rule, view_args: dict) -> None:
        # RequestContext.__init__ without the URL adapter (Flask 3.1's attributes; the webhook
        # tests run every request through here).
        self.app = app
        self.request = req = app.request_class(environ)
        req.json_module = app.json
        req.url_rule, req.view_args = rule, view_args
        self.url_adapter = None
        self.flashes = None
        self._session = app.session_interface.make_null_session(app)
        self._after_request_functions = []
        self._cv_tokens = []


class CarrierRoutes:
    """Which POST paths are carrier webhooks (views wrapped by ``twilio_webhook``): a table
    filled as paths are first seen, matched by Flask's own URL map. Paths of other views are
    remembered as "not ours"; paths that match nothing are not remembered, and the table stops
    growing at ``limit`` (a path parameter such as a menu node makes each value a new path)."""

    def __init__(self, app: Flask, limit: int = 1024):
        self.app = app
        self.limit = limit
        self._known: dict[str, tuple[Rule, dict[str, Any]] | None] = {}

    def context_for(self, environ: dict[str, Any]) -> CarrierRequestContext | None:
        if environ.get("REQUEST_METHOD") != "POST":
            return None
        path = environ.get("PATH_INFO", "")
        try:
            found = self._known[path]
        except KeyError:
            found = self._match(environ, path)
        if found is None:
            return None
        return CarrierRequestContext(self.app, environ, found[0], dict(found[1]))

    def _match(self, environ: dict[str, Any], path: str) -> tuple[Rule, dict[str, Any]] | None:
        try:
            rule, args = self.app.url_map.bind_to_environ(environ).match(return_rule=True)
        except HTTPException:  # 404, 405, a redirect: Flask's own handling says so
            return None
        view = self.app.view_functions.get(rule.endpoint)
        found = (rule, args) if getattr(view, "carrier_webhook", False) else None
        if len(self._known) < self.limit:
            self._known[path] = found
        return found


_CONTROL = dict.fromkeys(range(32))
MAX_CARRIER_INT = 10**7  # durations and counts from the carrier are far below this


def current_request() -> Request:
    """The current request, from Flask's context variable (``request`` is a proxy that costs
    about a microsecond per use, and the views read a parameter at a time)."""
    try:
        return _cv_request.get().request
    except LookupError:
        raise RuntimeError("Working outside of request context.") from None


def _posted_first(name: str) -> str:
    """The first value of a posted parameter, or "". Not ``MultiDict.get``: for a missing name
    that raises and catches werkzeug's ``BadRequestKeyError`` (an HTTP exception, costly to
    build), and most webhooks lack a few of the parameters they look for."""
    values = dict.get(current_request().form, name)  # a MultiDict: a dict of lists underneath
    return values[0] if values else ""


def form_value(name: str, limit: int = 256) -> str:
    """A posted parameter, truncated and without control characters (NUL breaks PostgreSQL)."""
    value = _posted_first(name)[:limit]
    return value if value.isprintable() else value.translate(_CONTROL)  # no control: printable


def form_int(name: str, default: int | None = None) -> int | None:
    """A small non-negative integer parameter; anything else (huge, negative, text): default."""
    value = _posted_first(name).strip()
    if not value.isascii() or not value.isdigit() or len(value) > 8:
        return default
    number = int(value)
    return number if number <= MAX_CARRIER_INT else default
