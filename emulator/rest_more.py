"""REST: Queues and Members, Conferences and Participants (Messages: ``messages_rest``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Blueprint, jsonify, request

from .errors import ApiError
from .state import API_VERSION, Conference, Participant, Queue, QueueMember, rfc2822

if TYPE_CHECKING:
    from .carrier import Carrier

PREFIX = f"/{API_VERSION}/Accounts/<account_sid>"


def queue_json(carrier: Carrier, queue: Queue) -> dict[str, Any]:
    return {
        "account_sid": queue.account_sid,
        "average_wait_time": queue.average_wait(),
        "current_size": len(queue.members),
        "date_created": rfc2822(queue.date_created),
        "date_updated": rfc2822(queue.date_updated),
        "friendly_name": queue.friendly_name,
        "max_size": queue.max_size,
        "sid": queue.sid,
        "uri": f"/{API_VERSION}/Accounts/{queue.account_sid}/Queues/{queue.sid}.json",
        "subresource_uris": {
            "members": f"/{API_VERSION}/Accounts/{queue.account_sid}/Queues/{queue.sid}"
            "/Members.json"
        },
    }


def member_json(carrier: Carrier, queue: Queue, member: QueueMember, position: int) -> dict:
    return {
        "call_sid": member.call.sid,
        "date_enqueued": rfc2822(member.date_enqueued),
        "position": position,
        "queue_sid": queue.sid,
        "uri": f"/{API_VERSION}/Accounts/{queue.account_sid}/Queues/{queue.sid}"
        f"/Members/{member.call.sid}.json",
        "wait_time": round(carrier.clock.now() - member.enqueued_at),
    }


def conference_json(conf: Conference) -> dict[str, Any]:
    base = f"/{API_VERSION}/Accounts/{conf.account_sid}/Conferences/{conf.sid}"
    return {
        "account_sid": conf.account_sid,
        "api_version": API_VERSION,
        "call_sid_ending_conference": None,
        "date_created": rfc2822(conf.date_created),
        "date_updated": rfc2822(conf.date_updated),
        "friendly_name": conf.friendly_name,
        "reason_conference_ended": conf.reason_ended,
        "region": "us1",
        "sid": conf.sid,
        "status": conf.status,
        "uri": base + ".json",
        "subresource_uris": {
            "participants": base + "/Participants.json",
            "recordings": base + "/Recordings.json",
        },
    }


def participant_json(part: Participant, status: str | None = None) -> dict[str, Any]:
    conf = part.conference
    return {
        "account_sid": conf.account_sid,
        "call_sid": part.call.sid,
        "call_sid_to_coach": part.call_sid_to_coach,
        "coaching": part.coaching,
        "conference_sid": conf.sid,
        "date_created": rfc2822(part.date_created),
        "date_updated": rfc2822(part.date_updated),
        "end_conference_on_exit": part.end_conference_on_exit,
        "hold": part.hold,
        "label": part.label,
        "muted": part.muted,
        "queue_time": "0",
        "start_conference_on_enter": part.start_conference_on_enter,
        "status": status or part.status,
        "uri": f"/{API_VERSION}/Accounts/{conf.account_sid}/Conferences/{conf.sid}"
        f"/Participants/{part.call.sid}.json",
    }


def register_more(bp: Blueprint, carrier: Carrier) -> None:
    from .rest import form_bool, form_list, not_found, page

    store = carrier.store

    def get_queue(sid: str) -> Queue:
        queue = store.queues.get(sid)
        if queue is None:
            raise not_found()
        return queue

    # -- Queues -----------------------------------------------------------------------------
    @bp.get(PREFIX + "/Queues.json")
    def list_queues(account_sid: str):
        with carrier.lock:
            rows = [queue_json(carrier, q) for q in store.queues.values()]
        return page(carrier, "queues", rows)

    @bp.post(PREFIX + "/Queues.json")
    def create_queue(account_sid: str):
        name = request.values.get("FriendlyName")
        if not name:
            raise ApiError(400, 20001, "Missing required parameter FriendlyName")
        if carrier.queue_named(name, create=False) is not None:
            raise ApiError(400, 22003, f"A queue with friendly name {name} already exists")
        queue = carrier.queue_named(name, create=True)
        assert queue is not None
        queue.max_size = int(request.values.get("MaxSize", 1000))
        return jsonify(queue_json(carrier, queue)), 201

    @bp.get(PREFIX + "/Queues/<sid>.json")
    def fetch_queue(account_sid: str, sid: str):
        return jsonify(queue_json(carrier, get_queue(sid)))

    @bp.post(PREFIX + "/Queues/<sid>.json")
    def update_queue(account_sid: str, sid: str):
        queue = get_queue(sid)
        with carrier.lock:
            if "MaxSize" in request.values:
                size = int(request.values["MaxSize"])
                if not 1 <= size <= 5000:
                    raise ApiError(400, 21220, "MaxSize must be between 1 and 5000")
                queue.max_size = size
            if request.values.get("FriendlyName"):
                queue.friendly_name = request.values["FriendlyName"]
            queue.date_updated = carrier.clock.wall()
        return jsonify(queue_json(carrier, queue))

    @bp.get(PREFIX + "/Queues/<sid>/Members.json")
    def list_members(account_sid: str, sid: str):
        queue = get_queue(sid)
        with carrier.lock:
            rows = [member_json(carrier, queue, m, i + 1) for i, m in enumerate(queue.members)]
        return page(carrier, "queue_members", rows)

    def find_member(queue: Queue, call_sid: str) -> tuple[QueueMember, int]:
        for index, member in enumerate(queue.members):
            if call_sid in (member.call.sid, "Front" if index == 0 else None):
                return member, index + 1
        raise not_found()

    @bp.get(PREFIX + "/Queues/<sid>/Members/<call_sid>.json")
    def fetch_member(account_sid: str, sid: str, call_sid: str):
        queue = get_queue(sid)
        with carrier.lock:
            member, position = find_member(queue, call_sid)
            return jsonify(member_json(carrier, queue, member, position))

    @bp.post(PREFIX + "/Queues/<sid>/Members/<call_sid>.json")
    def dequeue_member(account_sid: str, sid: str, call_sid: str):
        queue = get_queue(sid)
        url = request.values.get("Url")
        if not url:
            raise ApiError(400, 20001, "Missing required parameter Url")
        method = (request.values.get("Method") or "POST").upper()
        with carrier.lock:
            member, position = find_member(queue, call_sid)
            body = member_json(carrier, queue, member, position)
            queue.members.remove(member)
            member.dequeued_by = member.call  # no agent: redirected out of the queue
        member.call.mailbox.post(("redirect", url, method, None))
        return jsonify(body)

    # -- Conferences ------------------------------------------------------------------------
    def get_conference(sid: str, create: bool = False) -> Conference:
        conf = store.conferences.get(sid)
        if conf is None and create and not sid.startswith("CF"):
            return carrier.conference_named(sid)
        if conf is None:
            raise not_found()
        return conf

    @bp.get(PREFIX + "/Conferences.json")
    def list_conferences(account_sid: str):
        name, status = request.args.get("FriendlyName"), request.args.get("Status")
        with carrier.lock:
            rows = [
                conference_json(c)
                for c in sorted(
                    store.conferences.values(), key=lambda c: c.date_created, reverse=True
                )
                if (name is None or c.friendly_name == name)
                and (status is None or c.status == status)
            ]
        return page(carrier, "conferences", rows)

    @bp.get(PREFIX + "/Conferences/<sid>.json")
    def fetch_conference(account_sid: str, sid: str):
        return jsonify(conference_json(get_conference(sid)))

    @bp.post(PREFIX + "/Conferences/<sid>.json")
    def update_conference(account_sid: str, sid: str):
        from .conferences import end

        conf = get_conference(sid)
        if request.values.get("Status") == "completed":
            end(carrier, conf, "conference-ended-via-api")
        return jsonify(conference_json(conf))

    @bp.get(PREFIX + "/Conferences/<sid>/Participants.json")
    def list_participants(account_sid: str, sid: str):
        conf = get_conference(sid)
        muted, hold = form_bool("Muted"), form_bool("Hold")
        with carrier.lock:
            rows = [
                participant_json(p)
                for p in conf.participants
                if (muted is None or p.muted == muted) and (hold is None or p.hold == hold)
            ]
        return page(carrier, "participants", rows)

    def get_participant(conf: Conference, call_sid: str) -> Participant:
        part = conf.participant(call_sid) or next(
            (p for p in conf.participants if p.label == call_sid), None
        )
        if part is None:
            raise not_found()
        return part

    @bp.get(PREFIX + "/Conferences/<sid>/Participants/<call_sid>.json")
    def fetch_participant(account_sid: str, sid: str, call_sid: str):
        return jsonify(participant_json(get_participant(get_conference(sid), call_sid)))

    @bp.post(PREFIX + "/Conferences/<sid>/Participants/<call_sid>.json")
    def update_participant(account_sid: str, sid: str, call_sid: str):
        from .conferences import update_participant as update

        part = get_participant(get_conference(sid), call_sid)
        changes: dict[str, Any] = {}
        for param, key in (("Hold", "hold"), ("Muted", "muted"), ("Coaching", "coaching")):
            value = form_bool(param)
            if value is not None:
                changes[key] = value
        if request.values.get("CallSidToCoach"):
            changes["call_sid_to_coach"] = request.values["CallSidToCoach"]
        update(carrier, part, **changes)
        return jsonify(participant_json(part))

    @bp.delete(PREFIX + "/Conferences/<sid>/Participants/<call_sid>.json")
    def remove_participant(account_sid: str, sid: str, call_sid: str):
        part = get_participant(get_conference(sid), call_sid)
        part.call.mailbox.post(("kick",))
        return "", 204

    @bp.post(PREFIX + "/Conferences/<sid>/Participants.json")
    def add_participant(account_sid: str, sid: str):
        from .calls_api import create_call

        conf = get_conference(sid, create=True)
        beep = (request.values.get("Beep") or "true").lower()
        wait_url = request.values.get("WaitUrl")
        options = {
            "name": conf.friendly_name,
            "muted": bool(form_bool("Muted")),
            "beep": beep,
            "start": form_bool("StartConferenceOnEnter") is not False,
            "end": bool(form_bool("EndConferenceOnExit")),
            "wait_url": wait_url,
            "wait_method": (request.values.get("WaitMethod") or "POST").upper(),
            "label": request.values.get("Label"),
            "coach": request.values.get("CallSidToCoach") if form_bool("Coaching") else None,
            "record": "record-from-start" if form_bool("ConferenceRecord") else "do-not-record",
            "status_callback": request.values.get("ConferenceStatusCallback"),
            "status_callback_method": (
                request.values.get("ConferenceStatusCallbackMethod") or "POST"
            ).upper(),
            # "ConferenceStatusCallbackEvent ... Defaults to `start end`" (Participants API)
            "status_callback_events": frozenset(
                form_list("ConferenceStatusCallbackEvent") or ("start", "end")
            ),
            "recording_status_callback": request.values.get("ConferenceRecordingStatusCallback"),
        }
        call = create_call(carrier, join_conference=options)
        part = Participant(
            call=call,
            conference=conf,
            muted=options["muted"],
            coaching=bool(options["coach"]),
            call_sid_to_coach=options["coach"],
            start_conference_on_enter=options["start"],
            end_conference_on_exit=options["end"],
            label=options["label"],
            date_created=carrier.clock.wall(),
        )
        part.date_updated = part.date_created
        return jsonify(participant_json(part, status="queued")), 201

    from .messages_rest import register_messages

    register_messages(bp, carrier)
