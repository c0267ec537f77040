"""Twilio's REST API (2010-04-01) as a Flask blueprint: auth, errors, paging, Calls, Recordings,
IncomingPhoneNumbers. Queues, Conferences and Messages are in ``rest_more``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, jsonify, request

from .errors import MORE_INFO, ApiError
from .state import API_VERSION, FINAL_STATUSES, Call, Number, Recording, rfc2822

if TYPE_CHECKING:
    from .carrier import Carrier

PREFIX = f"/{API_VERSION}/Accounts/<account_sid>"


def not_found(path: str | None = None) -> ApiError:
    return ApiError(404, 20404, f"The requested resource {path or request.path} was not found")


def form_bool(name: str) -> bool | None:
    value = request.values.get(name)
    if value is None:
        return None
    return value.strip().lower() == "true"


def form_list(name: str) -> list[str]:
    values: list[str] = []
    for raw in request.values.getlist(name):
        values.extend(raw.replace(",", " ").split())
    return values


def page(carrier: Carrier, key: str, items: list[dict]) -> Response:
    """A list response in Twilio's 2010 paging format."""
    size = max(1, min(1000, int(request.args.get("PageSize", 50))))
    number = max(0, int(request.args.get("Page", 0)))
    chunk = items[number * size : (number + 1) * size]
    base = request.path

    def uri(page_number: int) -> str:
        return f"{base}?PageSize={size}&Page={page_number}"

    has_next = (number + 1) * size < len(items)
    return jsonify(
        {
            key: chunk,
            "end": number * size + max(len(chunk) - 1, 0),
            "first_page_uri": uri(0),
            "next_page_uri": uri(number + 1) + f"&PageToken=PA{number + 1}" if has_next else None,
            "page": number,
            "page_size": size,
            "previous_page_uri": uri(number - 1) if number > 0 else None,
            "start": number * size,
            "uri": uri(number),
        }
    )


def call_json(carrier: Carrier, call: Call, status: str | None = None) -> dict[str, Any]:
    base = f"/{API_VERSION}/Accounts/{call.account_sid}/Calls/{call.sid}"
    return {
        "sid": call.sid,
        "date_created": rfc2822(call.date_created),
        "date_updated": rfc2822(call.date_updated),
        "parent_call_sid": call.parent_call_sid,
        "account_sid": call.account_sid,
        "to": call.to,
        "to_formatted": call.to,
        "from": call.from_,
        "from_formatted": call.from_,
        "phone_number_sid": call.phone_number_sid,
        "status": status or call.status,
        "start_time": rfc2822(call.start_time),
        "end_time": rfc2822(call.end_time),
        "duration": str(call.duration) if call.ended else None,
        "price": None,
        "price_unit": "USD",
        "direction": call.direction,
        "answered_by": None,
        "annotation": None,
        "api_version": API_VERSION,
        "forwarded_from": call.forwarded_from,
        "group_sid": None,
        "caller_name": call.caller_name,
        "queue_time": "0",
        "trunk_sid": None,
        "uri": base + ".json",
        "subresource_uris": {
            "notifications": base + "/Notifications.json",
            "recordings": base + "/Recordings.json",
            "payments": base + "/Payments.json",
            "events": base + "/Events.json",
            "siprec": base + "/Siprec.json",
            "streams": base + "/Streams.json",
            "user_defined_message_subscriptions": base + "/UserDefinedMessageSubscriptions.json",
            "user_defined_messages": base + "/UserDefinedMessages.json",
        },
    }


def recording_json(carrier: Carrier, rec: Recording) -> dict[str, Any]:
    base = f"/{API_VERSION}/Accounts/{rec.account_sid}/Recordings/{rec.sid}"
    return {
        "account_sid": rec.account_sid,
        "api_version": API_VERSION,
        "call_sid": rec.call_sid,
        "conference_sid": rec.conference_sid,
        "date_created": rfc2822(rec.date_created),
        "date_updated": rfc2822(rec.date_created),
        "start_time": rfc2822(rec.start_time),
        "duration": str(rec.duration),
        "sid": rec.sid,
        "price": None,
        "price_unit": "USD",
        "status": rec.status,
        "channels": rec.channels,
        "source": rec.source,
        "error_code": rec.error_code,
        "uri": base + ".json",
        "media_url": carrier.recording_url(rec),
        "encryption_details": None,
        "subresource_uris": {
            "add_on_results": base + "/AddOnResults.json",
            "transcriptions": base + "/Transcriptions.json",
        },
    }


def number_json(number: Number) -> dict[str, Any]:
    return {
        "account_sid": number.account_sid,
        "address_requirements": "none",
        "address_sid": None,
        "api_version": API_VERSION,
        "beta": False,
        "bundle_sid": None,
        "capabilities": {"voice": True, "sms": True, "mms": True, "fax": False},
        "date_created": rfc2822(number.date_created),
        "date_updated": rfc2822(number.date_updated),
        "emergency_address_sid": None,
        "emergency_address_status": "unregistered",
        "emergency_status": "Inactive",
        "friendly_name": number.friendly_name,
        "identity_sid": None,
        "origin": "twilio",
        "phone_number": number.phone_number,
        "sid": number.sid,
        "sms_application_sid": None,
        "sms_fallback_method": number.sms_fallback_method,
        "sms_fallback_url": number.sms_fallback_url,
        "sms_method": number.sms_method,
        "sms_url": number.sms_url,
        "status": "in-use",
        "status_callback": number.status_callback,
        "status_callback_method": number.status_callback_method,
        "trunk_sid": None,
        "type": "local",
        "uri": f"/{API_VERSION}/Accounts/{number.account_sid}/IncomingPhoneNumbers"
        f"/{number.sid}.json",
        "voice_application_sid": None,
        "voice_caller_id_lookup": False,
        "voice_fallback_method": number.voice_fallback_method,
        "voice_fallback_url": number.voice_fallback_url,
        "voice_method": number.voice_method,
        "voice_receive_mode": "voice",
        "voice_url": number.voice_url,
        "subresource_uris": {},
    }


def make_blueprint(carrier: Carrier) -> Blueprint:
    """The REST API blueprint bound to one emulated carrier."""
    from .rest_more import register_more

    bp = Blueprint("twilio_rest", __name__)
    store = carrier.store

    @bp.before_request
    def authenticate() -> Response | None:
        carrier.clock.enter()  # REST work counts towards quiescence
        auth = request.authorization
        path_sid = (request.view_args or {}).get("account_sid")
        if (
            auth is None
            or auth.username != carrier.account_sid
            or auth.password != carrier.auth_token
            or (path_sid is not None and path_sid != carrier.account_sid)
        ):
            body = {
                "code": 20003,
                "detail": "Your AccountSid or AuthToken was incorrect.",
                "message": "Authenticate",
                "more_info": MORE_INFO.format(code=20003),
                "status": 401,
            }
            response = jsonify(body)
            response.status_code = 401
            response.headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
            return response
        return None

    @bp.teardown_request
    def done(_exc: BaseException | None) -> None:
        carrier.clock.leave()

    @bp.errorhandler(ApiError)
    def api_error(error: ApiError) -> tuple[Response, int]:
        return jsonify(error.body()), error.status

    # -- Calls ------------------------------------------------------------------------------
    @bp.post(PREFIX + "/Calls.json")
    def create_call(account_sid: str):
        from .calls_api import create_call as create

        call = create(carrier)
        # "All new calls are created with a status of queued": the answer says so, whatever
        # the call's own thread has done since (it moves on to ringing right away).
        return jsonify(call_json(carrier, call, "queued")), 201

    @bp.get(PREFIX + "/Calls.json")
    def list_calls(account_sid: str):
        with carrier.lock:
            calls = sorted(store.calls.values(), key=lambda c: c.date_created, reverse=True)
            filters = {
                "to": request.args.get("To"),
                "from_": request.args.get("From"),
                "status": request.args.get("Status"),
                "parent_call_sid": request.args.get("ParentCallSid"),
            }
            rows = [
                call_json(carrier, c)
                for c in calls
                if not c.deleted
                and all(v is None or getattr(c, k) == v for k, v in filters.items())
            ]
        return page(carrier, "calls", rows)

    def find_call(call_sid: str) -> Call:
        call = store.calls.get(call_sid)
        if call is None or call.deleted:
            raise not_found()
        return call

    @bp.get(PREFIX + "/Calls/<call_sid>.json")
    def fetch_call(account_sid: str, call_sid: str):
        return jsonify(call_json(carrier, find_call(call_sid)))

    @bp.post(PREFIX + "/Calls/<call_sid>.json")
    def update_call(account_sid: str, call_sid: str):
        from .calls_api import update_call as update

        call = find_call(call_sid)
        status = update(carrier, call)
        return jsonify(call_json(carrier, call, status))

    @bp.delete(PREFIX + "/Calls/<call_sid>.json")
    def delete_call(account_sid: str, call_sid: str):
        """Twilio's "delete a call record": gone from the API (fetch, list, update: 404). A call
        not yet complete (queued, ringing, in progress) cannot be deleted: error 20009, as
        Twilio documents it (its docs give the code, not the HTTP status: 400 here, as for
        Twilio's other call-state errors)."""
        with carrier.lock:
            call = find_call(call_sid)
            if not call.ended:
                raise ApiError(400, 20009, "Cannot delete this resource before it is complete")
            call.deleted = True
        return "", 204

    @bp.get(PREFIX + "/Calls/<call_sid>/Recordings.json")
    def list_call_recordings(account_sid: str, call_sid: str):
        with carrier.lock:
            rows = [
                recording_json(carrier, r)
                for r in store.recordings.values()
                if r.call_sid == call_sid and not r.deleted
            ]
        return page(carrier, "recordings", rows)

    # -- Recordings -------------------------------------------------------------------------
    @bp.get(PREFIX + "/Recordings.json")
    def list_recordings(account_sid: str):
        call_sid = request.args.get("CallSid")
        conference_sid = request.args.get("ConferenceSid")
        with carrier.lock:
            recs = sorted(store.recordings.values(), key=lambda r: r.date_created, reverse=True)
            rows = [
                recording_json(carrier, r)
                for r in recs
                if not r.deleted
                and (call_sid is None or r.call_sid == call_sid)
                and (conference_sid is None or r.conference_sid == conference_sid)
            ]
        return page(carrier, "recordings", rows)

    def find_recording(name: str) -> tuple[Recording, str]:
        sid, _, ext = name.partition(".")
        rec = store.recordings.get(sid)
        if rec is None or rec.deleted:
            raise not_found()
        return rec, ext

    @bp.get(PREFIX + "/Recordings/<name>")
    def fetch_recording(account_sid: str, name: str):
        rec, ext = find_recording(name)
        if ext == "json":
            return jsonify(recording_json(carrier, rec))
        if ext in ("", "wav", "mp3"):
            failure = carrier.media_fault(rec.sid)
            if failure is not None:  # injected by a test (Emulator.fail_media)
                raise ApiError(failure, 20500, "Injected media download failure")
        if rec.wav is None:
            raise not_found()
        if ext in ("", "wav"):
            return media_response(rec.sid, rec.wav, "audio/x-wav")
        if ext == "mp3":
            from .audio import mp3_bytes

            if rec.mp3 is None:
                rec.mp3 = mp3_bytes(rec.wav)
            return media_response(rec.sid, rec.mp3, "audio/mpeg")
        raise not_found()

    def media_response(sid: str, body: bytes, mimetype: str) -> Response:
        """The media, with its ``Content-Length``; or, for a recording a test asked to be
        streamed (``Emulator.stream_media``), in chunks without one (chunked encoding)."""
        with carrier.lock:
            streamed = sid in carrier.media_streamed
        if not streamed:
            return Response(body, mimetype=mimetype)
        chunks = (body[i : i + 8192] for i in range(0, len(body), 8192))
        return Response(chunks, mimetype=mimetype)

    @bp.delete(PREFIX + "/Recordings/<name>")
    def delete_recording(account_sid: str, name: str):
        rec, _ = find_recording(name)
        with carrier.lock:
            rec.deleted, rec.wav, rec.mp3 = True, None, None
        return "", 204

    # -- IncomingPhoneNumbers ---------------------------------------------------------------
    @bp.get(PREFIX + "/IncomingPhoneNumbers.json")
    def list_numbers(account_sid: str):
        wanted = request.args.get("PhoneNumber")
        with carrier.lock:
            rows = [
                number_json(n)
                for n in store.numbers.values()
                if wanted is None or n.phone_number == wanted
            ]
        return page(carrier, "incoming_phone_numbers", rows)

    @bp.get(PREFIX + "/IncomingPhoneNumbers/<sid>.json")
    def fetch_number(account_sid: str, sid: str):
        number = store.number_by_sid(sid)
        if number is None:
            raise not_found()
        return jsonify(number_json(number))

    @bp.post(PREFIX + "/IncomingPhoneNumbers/<sid>.json")
    def update_number(account_sid: str, sid: str):
        number = store.number_by_sid(sid)
        if number is None:
            raise not_found()
        fields = {
            "VoiceUrl": "voice_url",
            "VoiceMethod": "voice_method",
            "VoiceFallbackUrl": "voice_fallback_url",
            "VoiceFallbackMethod": "voice_fallback_method",
            "StatusCallback": "status_callback",
            "StatusCallbackMethod": "status_callback_method",
            "SmsUrl": "sms_url",
            "SmsMethod": "sms_method",
            "SmsFallbackUrl": "sms_fallback_url",
            "SmsFallbackMethod": "sms_fallback_method",
            "FriendlyName": "friendly_name",
        }
        with carrier.lock:
            for param, attr in fields.items():
                if param in request.values:
                    value = request.values[param]
                    if attr.endswith("method"):
                        value = value.upper()
                    setattr(number, attr, (value or None) if attr.endswith("url") else value)
            number.date_updated = carrier.clock.wall()
        return jsonify(number_json(number))

    register_more(bp, carrier)

    @bp.route(f"/{API_VERSION}/<path:rest>", methods=["GET", "POST", "DELETE"])
    def unknown(rest: str):
        raise not_found()

    return bp


def is_live(call: Call) -> bool:
    return call.status not in FINAL_STATUSES
