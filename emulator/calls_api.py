"""Creating and updating calls over REST (the logic behind POST .../Calls[/{Sid}].json)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import request

from .errors import ApiError
from .rest import form_bool, form_list
from .state import Call

if TYPE_CHECKING:
    from .carrier import Carrier


def create_call(carrier: Carrier, join_conference: dict | None = None) -> Call:
    """POST Calls.json: an outbound-api call that rings the phone at ``To``."""
    values = request.values
    to, from_ = values.get("To"), values.get("From")
    if not to:
        raise ApiError(400, 21201, "No 'To' number is specified")
    if not from_:
        raise ApiError(400, 21603, "A 'From' phone number is required.")
    url, twiml = values.get("Url"), values.get("Twiml")
    if join_conference is None and not url and not twiml and not values.get("ApplicationSid"):
        raise ApiError(400, 21205, "Url parameter is required.")
    try:
        timeout = int(values.get("Timeout", 60))
    except ValueError as exc:
        raise ApiError(400, 21216, "Timeout must be an integer") from exc
    events = form_list("StatusCallbackEvent") or ["completed"]
    device = carrier.device(to)
    call = carrier.new_call(
        from_,
        to,
        "outbound-api",
        device=device,
        url=url,
        method=(values.get("Method") or "POST").upper(),
        twiml=twiml,
        fallback_url=values.get("FallbackUrl"),
        fallback_method=(values.get("FallbackMethod") or "POST").upper(),
        status_callback=values.get("StatusCallback"),
        status_callback_method=(values.get("StatusCallbackMethod") or "POST").upper(),
        status_callback_events=frozenset(events),
        timeout=max(1, min(timeout, 600)),
        record=bool(form_bool("Record")),
        join_conference=join_conference,
    )
    if call.record:
        call.recording_status_callback = values.get("RecordingStatusCallback")
        call.recording_status_callback_method = (
            values.get("RecordingStatusCallbackMethod") or "POST"
        ).upper()
    with carrier.lock:
        device.legs.append(call)
    carrier.start_call(call)
    return call


def update_call(carrier: Carrier, call: Call) -> str | None:
    """POST Calls/{Sid}.json: redirect (Url/Twiml) or end (Status); the status to report."""
    values = request.values
    status = values.get("Status")
    url, twiml = values.get("Url"), values.get("Twiml")
    if status:
        if status not in ("completed", "canceled"):
            raise ApiError(400, 21218, f"Invalid value for Status: {status}")
        if call.ended:
            return None
        if status == "canceled" and call.answered_at is not None:
            return None  # canceling only affects calls that are queued or ringing
        final = "completed" if call.answered_at is not None else "canceled"
        call.mailbox.post(("end", final))
        return final
    if url or twiml:
        if call.ended or call.answered_at is None:
            raise ApiError(400, 21220, "Call is not in-progress. Cannot redirect.")
        method = (values.get("Method") or "POST").upper()
        call.mailbox.post(("redirect", url, method, twiml))
    return None
