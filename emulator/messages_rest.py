"""REST: Messages and their Media (create, fetch, list, redact, delete), at Twilio's paths."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, jsonify, request

from .errors import ApiError
from .state import API_VERSION, Media, Message, rfc2822

if TYPE_CHECKING:
    from .carrier import Carrier

PREFIX = f"/{API_VERSION}/Accounts/<account_sid>"


def message_json(msg: Message) -> dict[str, Any]:
    base = f"/{API_VERSION}/Accounts/{msg.account_sid}/Messages/{msg.sid}"
    return {
        "account_sid": msg.account_sid,
        "api_version": API_VERSION,
        "body": msg.body,
        "date_created": rfc2822(msg.date_created),
        "date_sent": rfc2822(msg.date_sent),
        "date_updated": rfc2822(msg.date_updated or msg.date_created),
        "direction": msg.direction,
        "error_code": msg.error_code,
        "error_message": msg.error_message,
        "from": msg.from_,
        "messaging_service_sid": msg.messaging_service_sid,
        "num_media": str(len(msg.media_urls)),
        "num_segments": str(msg.num_segments),
        "price": None,
        "price_unit": "USD",
        "sid": msg.sid,
        "status": msg.status,
        "subresource_uris": {"media": base + "/Media.json", "feedback": base + "/Feedback.json"},
        "to": msg.to,
        "uri": base + ".json",
    }


def media_json(media: Media) -> dict[str, Any]:
    return {
        "account_sid": media.account_sid,
        "content_type": media.content_type,
        "date_created": rfc2822(media.date_created),
        "date_updated": rfc2822(media.date_created),
        "parent_sid": media.message_sid,
        "sid": media.sid,
        "uri": f"/{API_VERSION}/Accounts/{media.account_sid}/Messages/{media.message_sid}"
        f"/Media/{media.sid}.json",
    }


def register_messages(bp: Blueprint, carrier: Carrier) -> None:
    from .messages import FINAL_MESSAGE_STATUSES, send_message
    from .rest import not_found, page

    store = carrier.store

    def find_message(sid: str) -> Message:
        msg = store.messages.get(sid)
        if msg is None or msg.deleted:
            raise not_found()
        return msg

    def find_media(message_sid: str, name: str) -> tuple[Media, str]:
        sid, _, ext = name.partition(".")
        find_message(message_sid)
        media = store.media.get(sid)
        if media is None or media.deleted or media.message_sid != message_sid:
            raise not_found()
        return media, ext

    @bp.post(PREFIX + "/Messages.json")
    def create_message(account_sid: str):
        values = request.values
        to = values.get("To")
        from_ = values.get("From")
        service = values.get("MessagingServiceSid")
        media = values.getlist("MediaUrl")
        content_sid = values.get("ContentSid")
        if not to:
            raise ApiError(400, 21604, "A 'To' phone number is required.")
        if not from_ and not service:
            raise ApiError(400, 21603, "A 'From' phone number is required.")
        if not values.get("Body") and not media and not content_sid:
            raise ApiError(400, 21602, "Message body is required.")
        if len(values.get("Body", "")) > 1600:
            raise ApiError(
                400, 21617, "The concatenated message body exceeds the 1600 character limit."
            )
        if len(media) > 10:
            raise ApiError(400, 21623, "Too many media URLs: at most 10.")
        body = values.get("Body", "")
        if content_sid and not body:
            body = f"[template {content_sid}] {values.get('ContentVariables', '')}".strip()
        msg = send_message(
            carrier,
            from_ or service or "",
            to,
            body,
            media,
            values.get("StatusCallback"),
            service,
            content_sid,
        )
        answer = message_json(msg)
        answer["status"] = "queued"  # the answer says so, whatever its thread did since
        answer["error_code"] = answer["error_message"] = None
        return jsonify(answer), 201

    @bp.get(PREFIX + "/Messages.json")
    def list_messages(account_sid: str):
        to, from_ = request.args.get("To"), request.args.get("From")
        with carrier.lock:
            rows = [
                message_json(m)
                for m in sorted(store.messages.values(), key=lambda m: m.date_created, reverse=True)
                if not m.deleted
                and (to is None or m.to == to)
                and (from_ is None or m.from_ == from_)
            ]
        return page(carrier, "messages", rows)

    @bp.get(PREFIX + "/Messages/<sid>.json")
    def fetch_message(account_sid: str, sid: str):
        with carrier.lock:
            return jsonify(message_json(find_message(sid)))

    @bp.post(PREFIX + "/Messages/<sid>.json")
    def update_message(account_sid: str, sid: str):
        """Redaction: ``Body=""`` blanks the body (Twilio accepts no other body here)."""
        with carrier.lock:
            msg = find_message(sid)
            if "Body" in request.values:
                if request.values["Body"] != "":
                    raise ApiError(400, 20001, "Body can only be updated to an empty string")
                msg.body = ""
            msg.date_updated = carrier.clock.wall()
            return jsonify(message_json(msg))

    @bp.delete(PREFIX + "/Messages/<sid>.json")
    def delete_message(account_sid: str, sid: str):
        """204, and its media go too; a message not yet final cannot be deleted (20009)."""
        with carrier.lock:
            msg = find_message(sid)
            if msg.status not in FINAL_MESSAGE_STATUSES:
                raise ApiError(400, 20009, "Cannot delete this resource before it is complete")
            msg.deleted = True
            msg.body = ""
            for media in store.media.values():
                if media.message_sid == sid:
                    media.deleted, media.data = True, None
        return "", 204

    @bp.get(PREFIX + "/Messages/<sid>/Media.json")
    def list_media(account_sid: str, sid: str):
        with carrier.lock:
            find_message(sid)
            rows = [
                media_json(m)
                for m in store.media.values()
                if m.message_sid == sid and not m.deleted
            ]
        return page(carrier, "media_list", rows)

    @bp.get(PREFIX + "/Messages/<sid>/Media/<name>")
    def fetch_media(account_sid: str, sid: str, name: str):
        """``.json``: the metadata; bare: the bytes (behind basic auth, as with Twilio's HTTP
        authentication for media turned on)."""
        with carrier.lock:
            media, ext = find_media(sid, name)
            if ext == "json":
                return jsonify(media_json(media))
            if ext or media.data is None:
                raise not_found()
            return Response(media.data, mimetype=media.content_type)

    @bp.delete(PREFIX + "/Messages/<sid>/Media/<name>")
    def delete_media(account_sid: str, sid: str, name: str):
        with carrier.lock:
            media, _ = find_media(sid, name)
            media.deleted, media.data = True, None
        return "", 204
