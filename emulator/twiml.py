"""TwiML parsing and validation: a document becomes a checked tree of verbs, or an error."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from .errors import CarrierError

VOICE_VERBS = {
    "Say",
    "Play",
    "Pause",
    "Gather",
    "Record",
    "Redirect",
    "Hangup",
    "Reject",
    "Enqueue",
    "Leave",
    "Dial",
}
# Valid TwiML the emulator does not act on: executed as no-ops with a debugger warning.
IGNORED_VERBS = {"Start", "Stop", "Connect", "Pay", "Refer", "Echo", "Prompt", "Sms", "Message"}
NESTING = {
    "Gather": {"Say", "Play", "Pause"},
    "Dial": {"Number", "Client", "Queue", "Conference", "Sip", "Sim", "Application"},
    "Client": {"Identity", "Parameter"},
    "Number": set(),
    "Queue": set(),
    "Conference": set(),
    "Play": set(),
    "Pause": set(),
    "Redirect": set(),
    "Hangup": set(),
    "Reject": set(),
    "Leave": set(),
    "Enqueue": {"Task"},
    "Record": set(),
}
INT_ATTRS = {
    "Say": ("loop",),
    "Play": ("loop",),
    "Pause": ("length",),
    "Gather": ("timeout", "numDigits"),
    "Record": ("maxLength", "timeout"),
    "Dial": ("timeout", "timeLimit"),
}
BOOL_ATTRS = {
    "Gather": ("actionOnEmptyResult",),
    "Record": ("playBeep", "transcribe"),
    "Dial": ("answerOnBridge", "hangupOnStar"),
    "Conference": ("startConferenceOnEnter", "endConferenceOnExit", "muted", "coach"),
}
METHOD_ATTRS = ("method", "waitUrlMethod", "statusCallbackMethod", "recordingStatusCallbackMethod")


def parse(text: str | bytes) -> ET.Element:
    """Parse and validate a TwiML voice document; raise CarrierError 12100/12200 if it is bad."""
    try:
        root = ET.fromstring(text)  # noqa: S314
    except ET.ParseError as exc:
        raise CarrierError(12100, f"Document parse failure: {exc}") from exc
    if root.tag != "Response":
        raise CarrierError(12200, f"Schema validation warning: root element <{root.tag}>")
    for verb in root:
        _check_verb(verb)
    return root


def _check_verb(verb: ET.Element) -> None:
    if verb.tag in IGNORED_VERBS:
        return
    if verb.tag not in VOICE_VERBS:
        raise CarrierError(12200, f"Schema validation warning: unknown verb <{verb.tag}>")
    _check_element(verb)


def _check_element(el: ET.Element) -> None:
    for name in INT_ATTRS.get(el.tag, ()):
        value = el.get(name)
        if value is not None and not _is_int(value):
            raise CarrierError(
                12200, f"Schema validation warning: <{el.tag}> {name}={value!r} is not an integer"
            )
    for name in BOOL_ATTRS.get(el.tag, ()):
        value = el.get(name)
        if value is not None and value.lower() not in ("true", "false"):
            raise CarrierError(
                12200, f"Schema validation warning: <{el.tag}> {name}={value!r} is not a boolean"
            )
    for name in METHOD_ATTRS:
        value = el.get(name)
        if value is not None and value.upper() not in ("GET", "POST"):
            raise CarrierError(
                12200, f"Schema validation warning: <{el.tag}> {name}={value!r} is not GET/POST"
            )
    allowed = NESTING.get(el.tag)
    if allowed is None:  # Say: SSML inside, anything goes
        return
    for child in el:
        if child.tag not in allowed:
            raise CarrierError(
                12200, f"Schema validation warning: <{child.tag}> is not allowed in <{el.tag}>"
            )
        _check_element(child)


def _is_int(value: str) -> bool:
    try:
        int(value.strip())
    except ValueError:
        return False
    return True


def text_of(el: ET.Element) -> str:
    """The spoken text of a Say (SSML markup flattened) or a noun's body."""
    return " ".join("".join(el.itertext()).split())


def attr_int(el: ET.Element, name: str, default: int) -> int:
    value = el.get(name)
    return default if value is None else int(value.strip())


def attr_bool(el: ET.Element, name: str, default: bool) -> bool:
    value = el.get(name)
    return default if value is None else value.strip().lower() == "true"


def attr_method(el: ET.Element, name: str = "method", default: str = "POST") -> str:
    return (el.get(name) or default).strip().upper()


def attr_events(el: ET.Element, name: str, default: str) -> frozenset[str]:
    return frozenset((el.get(name) or default).replace(",", " ").split())
