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

from flask import Response, abort, g, request
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import VoiceResponse

from services import services

log = logging.getLogger(__name__)

MAX_FORM_BYTES = 64 * 1024  # Twilio's requests are a few kB; more is not from Twilio
#: The answer to a status callback: an empty <Response/> (serialised once, not per request).
EMPTY_TWIML = str(VoiceResponse())
MAX_CARRIER_INT = 10**7  # durations and counts from the carrier are far below this
_CONTROL = dict.fromkeys(range(32))


def public_url(path_and_query: str | None = None) -> str:
    """The URL the carrier was given for this request (or for ``path_and_query``)."""
    base = services().settings.public_base_url
    if path_and_query is not None:
        return base + path_and_query
    query = request.query_string.decode("latin-1")
    return base + request.path + (f"?{query}" if query else "")


class SignedParameters(dict[str, list[str]]):
    """The posted parameters as twilio-python's validator asks for them first: ``getall`` (a
    werkzeug MultiDict has ``getlist`` only, and the validator would raise and catch an
    AttributeError for each of a webhook's ~30 parameters before trying it)."""

    def getall(self, name: str) -> list[str]:
        return self[name]


def signature_is_valid() -> bool:
    """Whether the request carries the carrier's signature of its URL and parameters. Anything
    malformed (an empty, repeated, non-ASCII or oversized header, a body that does not parse) is
    simply invalid, never an error: no exception leaves this function."""
    try:
        signatures = request.headers.getlist("X-Twilio-Signature")
        if len(signatures) != 1:
            return False
        signature = signatures[0]
        if not signature or len(signature) > 128 or not signature.isascii():
            return False
        validator = RequestValidator(services().settings.twilio_auth_token)
        url, params = public_url(), SignedParameters(request.form.lists())
        # The URL as configured is what the carrier signs: one HMAC. Only if that does not
        # match, ``validate`` also tries the URL with and without the default port (two more).
        if hmac.compare_digest(validator.compute_signature(url, params), signature):
            return True
        return bool(validator.validate(url, params, signature))
    except Exception:  # whatever the header holds, the answer is "not signed by the carrier"
        return False


def twilio_webhook(view: Callable[..., Any]) -> Callable[..., Any]:
    """Reject unsigned/forged requests with 403; answer with TwiML (``text/xml``)."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if request.content_length is not None and request.content_length > MAX_FORM_BYTES:
            abort(413)
        if not signature_is_valid():
            log.warning("rejected a carrier request with a missing or invalid signature")
            abort(403)
        g.carrier_signed = True  # the blueprints' error paths may now answer as to the carrier
        result = view(*args, **kwargs)
        if isinstance(result, Response):
            return result
        return Response(str(result), mimetype="text/xml")

    wrapper.carrier_webhook = True  # type: ignore[attr-defined]
    return wrapper


def carrier_signed() -> bool:
    """Whether this request's carrier signature was verified. A webhook blueprint's error
    handler journals the request and answers with TwiML only then; anything else gets a plain
    403 (an unsigned request must never reach a view, an error path or the journal)."""
    return bool(g.get("carrier_signed", False))


def form_value(name: str, limit: int = 256) -> str:
    """A posted parameter, truncated and without control characters (NUL breaks PostgreSQL)."""
    return request.form.get(name, "")[:limit].translate(_CONTROL)


def form_int(name: str, default: int | None = None) -> int | None:
    """A small non-negative integer parameter; anything else (huge, negative, text): default."""
    value = request.form.get(name, "").strip()
    if not value.isascii() or not value.isdigit() or len(value) > 8:
        return default
    number = int(value)
    return number if number <= MAX_CARRIER_INT else default
