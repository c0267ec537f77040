"""What every carrier webhook shares: the Twilio signature check and a TwiML response.

The signature is checked against ``PUBLIC_BASE_URL`` + path + query (never the Host header), over
every posted parameter, with twilio-python's ``RequestValidator``. A missing or bad signature is
a 403 before the view runs: nothing is read, written or enqueued. There is no bypass.
"""

from __future__ import annotations

import functools
import hmac
import logging
from collections.abc import Callable, Iterator
from typing import Any

from flask import Request, Response, abort, current_app, request
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import VoiceResponse
from werkzeug.datastructures import MultiDict

log = logging.getLogger(__name__)

MAX_FORM_BYTES = 64 * 1024  # Twilio's requests are a few kB; more is not from Twilio
#: The answer to a status callback: an empty <Response/> (serialised once, not per request).
EMPTY_TWIML = str(VoiceResponse())


def public_url(path_and_query: str | None = None, req: Request | None = None) -> str:
    """The URL the carrier was given for this request (or for ``path_and_query``)."""
    base = current_app.extensions["hotline"].settings.public_base_url
    if path_and_query is not None:
        return base + path_and_query
    req = req or request._get_current_object()  # type: ignore[attr-defined]
    query = req.query_string.decode("latin-1")
    return base + req.path + (f"?{query}" if query else "")


class _PostedParams:
    """The posted parameters as twilio-python's validator reads them fastest: it asks a
    parameter container for ``getall(name)`` first, and a werkzeug MultiDict has no such method
    (an AttributeError per parameter before it tries ``getlist``). A MultiDict is a dict of
    lists underneath: nothing is copied."""

    __slots__ = ("_form",)

    def __init__(self, form: MultiDict[str, str]):
        self._form = form

    def __iter__(self) -> Iterator[str]:
        return iter(self._form)

    def getall(self, name: str) -> list[str]:
        return dict.__getitem__(self._form, name)  # type: ignore[no-any-return]


def signature_is_valid(req: Request | None = None) -> bool:
    req = req or request._get_current_object()  # type: ignore[attr-defined]
    signature = req.headers.get("X-Twilio-Signature", "")
    if not signature:
        return False
    validator = _validator(current_app.extensions["hotline"].settings.twilio_auth_token)
    url = public_url(req=req)
    params = _PostedParams(req.form)
    # The URL as configured is what the carrier signs: one HMAC. Only if that does not match,
    # let twilio-python also try the URL with/without the default port (two more).
    expected = validator.compute_signature(url, params)
    if hmac.compare_digest(expected, signature):
        return True
    return validator.validate(url, params, signature)


@functools.lru_cache(maxsize=4)
def _validator(token: str) -> RequestValidator:
    return RequestValidator(token)


def twilio_webhook(view: Callable[..., Any]) -> Callable[..., Any]:
    """Reject unsigned/forged requests with 403; answer with TwiML (``text/xml``)."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        req = request._get_current_object()  # type: ignore[attr-defined]
        if req.content_length is not None and req.content_length > MAX_FORM_BYTES:
            abort(413)
        if not signature_is_valid(req):
            log.warning("rejected a carrier request with a missing or invalid signature")
            abort(403)
        result = view(*args, **kwargs)
        if isinstance(result, Response):
            return result
        return Response(str(result), mimetype="text/xml")

    return wrapper


_CONTROL = dict.fromkeys(range(32))
MAX_CARRIER_INT = 10**7  # durations and counts from the carrier are far below this


def form_value(name: str, limit: int = 256) -> str:
    """A posted parameter, truncated and without control characters (NUL breaks PostgreSQL)."""
    return (request.form.get(name) or "")[:limit].translate(_CONTROL)


def form_int(name: str, default: int | None = None) -> int | None:
    """A small non-negative integer parameter; anything else (huge, negative, text): default."""
    value = (request.form.get(name) or "").strip()
    if not value.isascii() or not value.isdigit() or len(value) > 8:
        return default
    number = int(value)
    return number if number <= MAX_CARRIER_INT else default
