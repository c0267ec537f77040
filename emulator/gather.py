"""<Gather>: prompts with barge-in, then DTMF and/or speech input."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING

from .twiml import attr_bool, attr_int, attr_method

if TYPE_CHECKING:
    from .runner import CallRunner


def gather(runner: CallRunner, el: ET.Element) -> None:
    """Collect input, then go to the action (also when empty, if asked), else fall through."""
    from .runner import Request, Transfer

    call = runner.call
    inputs = set((el.get("input") or "dtmf").replace(",", " ").split())
    dtmf, speech = "dtmf" in inputs, "speech" in inputs
    timeout = attr_int(el, "timeout", 5)
    finish_keys = el.get("finishOnKey", "#")
    num_digits = attr_int(el, "numDigits", 0) or None
    action = runner.resolve(el.get("action")) or runner.doc_url
    method = attr_method(el)
    speech_timeout = el.get("speechTimeout") or "auto"

    def wanted(event: tuple) -> bool:
        return (event[0] == "digits" and dtmf) or (event[0] == "speech" and speech)

    options = {
        "input": " ".join(sorted(inputs)),
        "timeout": timeout,
        "finishOnKey": finish_keys,
        "numDigits": num_digits,
        "action": action,
        "method": method,
        "language": el.get("language", "en-US"),
        "hints": el.get("hints"),
        "speechTimeout": speech_timeout,
        "actionOnEmptyResult": attr_bool(el, "actionOnEmptyResult", False),
    }
    barged: tuple | None = None
    for prompt in el:
        handler = getattr(runner, "verb_" + prompt.tag.lower())
        barged = handler(prompt, stop_on=wanted)
        if barged is not None:
            break  # barge-in: input during a prompt stops the prompts

    call.activity = "gather"
    call.gather_options = options
    digits, finished_on, speech_result = "", "", None
    pending = [barged] if barged is not None else []
    clock = runner.clock
    deadline = clock.now() + timeout
    done = False
    try:
        while not done:
            if pending:
                event = pending.pop()
            else:
                event = runner.next_event(max(0.0, deadline - clock.now()))
            if event is None:
                break  # timeout
            if event[0] == "digits" and dtmf:
                for key in event[1]:
                    if finish_keys and key in finish_keys:
                        finished_on, done = key, True
                        break
                    digits += key
                    if num_digits and len(digits) >= num_digits:
                        done = True
                        break
                deadline = clock.now() + timeout
            elif event[0] == "speech" and speech:
                call.activity = "listening"
                runner.wait_media(event[2])  # the caller finishes the utterance
                speech_result, done = event, True
            else:
                runner.handle_event(event)
    finally:
        call.gather_options = None
        if call.activity in ("gather", "listening"):
            call.activity = "media"

    params: dict[str, str] = {}
    if speech_result is not None:
        params = {"SpeechResult": speech_result[1], "Confidence": f"{speech_result[4]:.2f}"}
        if speech_result[5]:
            params["Language"] = speech_result[5]
    elif digits:
        params = {"Digits": digits, "FinishedOnKey": finished_on}
    elif options["actionOnEmptyResult"]:
        params = {"Digits": "", "FinishedOnKey": finished_on} if dtmf else {}
    else:
        return  # no input: the next verb runs
    raise Transfer(Request(action, method, params))
