"""The hand-over point: where a caller who asked for a person leaves the IVR.

This is the one function the routing issue replaces. Today nobody routes calls, so every
hand-over ends in the message box with a callback request on the case; routing will instead
queue the caller to a handler (and fall back to the message box when the queue is full, the wait
too long, or nobody is on duty).
"""

from __future__ import annotations

from dataclasses import dataclass

from inquiries.service import CallLog, CallState

MESSAGE_BOX = "message_box"


@dataclass(frozen=True)
class Handover:
    """What the IVR should do with the caller: ``action`` and whether a callback was requested."""

    action: str
    callback_requested: bool
    prompt: str  # the catalog key to say before the action


def hand_over(log: CallLog, call: CallState, reason: str) -> Handover:
    """Decide where a caller who wants a person goes; record it on the case.

    Replaced by the routing issue (queue to handlers). Until then: the message box, and a
    callback request recorded on the inquiry so staff call the person back.
    """
    log.request_callback(call, reason)
    log.add_event(
        call,
        "HANDOVER",
        {"reason": reason, "action": MESSAGE_BOX},
        dedupe_key=f"handover:{call.provider_sid}",
    )
    return Handover(action=MESSAGE_BOX, callback_requested=True, prompt="operators_busy")
