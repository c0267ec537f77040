"""A case's calls told as a story: what the caller chose in the menu, as the questions and the
answers they heard ("Safe to talk: yes"), and what happened to each call, in words
("Waited 0:06 · offered to Olena · not answered (26 s) · offered to Petro · connected 1:22").

Built from what the hotline already stores (the call's menu path, its events, the handlers'
names); nothing here is written. The raw event stays on the page behind a details toggle, for
auditors. A code this module does not know is still shown, in words (``labels.readable``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from flask_babel import gettext, lazy_gettext
from sqlalchemy import select
from sqlalchemy.orm import Session

from console.labels import (
    call_status_name,
    kind_name,
    language_name,
    mmss,
    readable,
    reason_name,
    recording_kind_name,
)
from routing.models import Handler

#: The menu's questions as staff call them (nodes of ``ivr/menu.toml``).
QUESTION_NAMES = {
    "language": lazy_gettext("Language"),
    "main": lazy_gettext("Topic"),
    "safety": lazy_gettext("Safe to talk"),
    "unsafe": lazy_gettext("Not safe to talk, chose"),
    "pow_info_offer": lazy_gettext("After the prisoners-of-war information"),
}
#: The menu's answers, by the words a caller may say for them (a choice's ``speech`` key).
ANSWER_NAMES = {
    "words_yes": lazy_gettext("yes"),
    "words_no": lazy_gettext("no"),
    "words_message": lazy_gettext("to leave a message"),
    "words_goodbye": lazy_gettext("to end the call"),
    "words_operator": lazy_gettext("to speak to someone"),
}
#: What a handover of the menu's "speak to someone" did, when it did not queue the caller.
HANDOVER_WHY = {
    "nobody on duty": lazy_gettext("nobody on duty"),
    "already waiting": lazy_gettext("a call from the same number was already waiting"),
}


def handler_names(conn: Session, ids: Iterable[Any]) -> dict[int, str]:
    """Display names of the handlers with these ids (any that is not a number is skipped)."""
    wanted = {int(i) for i in ids if isinstance(i, int) or (isinstance(i, str) and i.isdigit())}
    if not wanted:
        return {}
    rows = conn.execute(select(Handler.id, Handler.display_name).where(Handler.id.in_(wanted)))
    return {row.id: row.display_name for row in rows}


def _handler(names: dict[int, str], handler_id: Any) -> str:
    try:
        return names.get(int(handler_id)) or gettext("handler %(id)s", id=handler_id)
    except (TypeError, ValueError):
        return gettext("a handler")


# -- menu answers ----------------------------------------------------------------------------


@dataclass
class Answer:
    question: str
    answer: str
    spoken: bool = False  # said, not pressed


def _choice_name(flow: Any, node_name: str, key: str | None) -> str:
    node = flow.node(node_name) if flow is not None else None
    choice = node.choice_for_key(key) if node is not None and key else None
    if choice is None:
        return gettext("key %(key)s", key=key) if key else "—"
    if "language" in choice.set:
        return str(language_name(choice.set["language"]))
    if "kind" in choice.set:
        return str(kind_name(choice.set["kind"]))
    named = ANSWER_NAMES.get(choice.speech or "")
    return str(named) if named is not None else gettext("key %(key)s", key=key)


def menu_answers(flow: Any, path: list[dict[str, Any]] | None) -> list[Answer]:
    """The menu's questions and what the caller answered, in order; a question left without an
    answer (silence, a wrong key) says so."""
    answers: list[Answer] = []
    for step in path or []:
        node = step.get("node")
        if node not in QUESTION_NAMES and (flow is None or flow.node(node) is None):
            continue
        if flow is not None and (flow.node(node) is None or flow.node(node).type != "menu"):
            continue
        question = str(QUESTION_NAMES.get(node) or readable(node))
        if step.get("choice") is not None:
            answers.append(
                Answer(question, _choice_name(flow, node, step["choice"]),
                       step.get("answer") == "speech")
            )  # fmt: skip
        elif step.get("problem") == "no_input":
            answers.append(Answer(question, gettext("no answer")))
        elif step.get("problem") == "invalid":
            answers.append(Answer(question, gettext("a key the menu does not have")))
    return answers


# -- what happened ---------------------------------------------------------------------------


@dataclass
class Beat:
    """One event of a call, told: its time, a sentence, and the raw event (for auditors)."""

    time: dt.datetime
    text: str
    event: str
    data: dict[str, Any]
    #: A short form for the call's one-line summary ("" when the summary leaves it out).
    short: str = ""


@dataclass
class CallStory:
    interaction: Any
    answers: list[Answer]
    beats: list[Beat] = field(default_factory=list)

    @property
    def summary(self) -> str:
        told = " · ".join(b.short for b in self.beats if b.short)
        return told[:1].upper() + told[1:]


def _seconds(data: dict[str, Any], key: str, scale: float = 1.0) -> float | None:
    value = data.get(key)
    return value / scale if isinstance(value, int | float) else None


def tell(event: str, data: dict[str, Any], names: dict[int, str]) -> tuple[str, str]:
    """(sentence, short form) for one event; the short form may be ""."""
    who = _handler(names, data.get("handler_id")) if "handler_id" in data else ""
    if event == "IVR_ENTER":
        outbound = data.get("direction") == "outbound"
        return (gettext("Call placed") if outbound else gettext("Call came in"), "")
    if event == "IVR_STEP":
        return ("", "")  # shown as the menu answers
    if event == "IVR_FALLTHROUGH":
        question = QUESTION_NAMES.get(data.get("node", ""), readable(data.get("node", "")))
        return (gettext("No choice made at \u201c%(question)s\u201d: passed on", question=question),
                "")  # fmt: skip
    if event == "HANDOVER":
        if data.get("action") == "queue":
            return (gettext("Asked to speak to someone"), "")
        why = data.get("why", "")
        said = HANDOVER_WHY.get(why) or readable(why)
        return (gettext("Sent to the message box (%(why)s)", why=said),
                gettext("message box"))  # fmt: skip
    if event == "ENTERQUEUE":
        return (gettext("Joined the queue (%(language)s, %(kind)s), position %(position)s",
                        language=language_name(data.get("language")),
                        kind=kind_name(data.get("kind")), position=data.get("position", "—")),
                "")  # fmt: skip
    if event == "LANGUAGE_FALLBACK":
        return (gettext("Nobody for %(language)s: offered in another language",
                        language=language_name(data.get("language"))), "")  # fmt: skip
    if event == "OFFER":
        waited = mmss(_seconds(data, "waited_s"))
        return (gettext("Offered to %(name)s after %(waited)s", name=who, waited=waited),
                gettext("offered to %(name)s", name=who))  # fmt: skip
    if event == "RINGNOANSWER":
        rang = _seconds(data, "ringtime_ms", 1000.0)
        secs = gettext("%(n)s s", n=round(rang)) if rang is not None else "—"
        if data.get("status") == "completed":
            return (gettext("%(name)s answered but did not press 1 (%(secs)s)", name=who,
                            secs=secs), gettext("not taken (%(secs)s)", secs=secs))  # fmt: skip
        if data.get("why") == "expired":
            return (gettext("%(name)s did not answer in time", name=who),
                    gettext("not answered"))  # fmt: skip
        return (gettext("%(name)s did not answer (%(secs)s)", name=who, secs=secs),
                gettext("not answered (%(secs)s)", secs=secs))  # fmt: skip
    if event == "REJECT":
        return (gettext("%(name)s's phone was busy or declined", name=who),
                gettext("declined"))  # fmt: skip
    if event == "RINGCANCELED":
        return (gettext("%(name)s's phone stopped ringing (the call went elsewhere)", name=who),
                "")  # fmt: skip
    if event == "CONNECT":
        return (gettext("Connected to %(name)s after waiting %(waited)s", name=who,
                        waited=mmss(_seconds(data, "holdtime_s"))), "")  # fmt: skip
    if event in ("COMPLETECALLER", "COMPLETEAGENT"):
        talk = mmss(_seconds(data, "calltime_s"))
        if event == "COMPLETECALLER":
            text = gettext("The caller ended the conversation with %(name)s after %(talk)s",
                           name=who, talk=talk)  # fmt: skip
        else:
            text = gettext("%(name)s ended the conversation after %(talk)s", name=who, talk=talk)
        return (text, gettext("connected %(talk)s", talk=talk))
    if event == "ABANDON":
        waited = mmss(_seconds(data, "waittime_s"))
        return (gettext("The caller hung up after waiting %(waited)s", waited=waited),
                gettext("hung up waiting %(waited)s", waited=waited))  # fmt: skip
    if event == "EXITWITHKEY":
        return (gettext("Left the queue to leave a message"), "")
    if event == "EXITWITHTIMEOUT":
        waited = mmss(_seconds(data, "waittime_s"))
        return (gettext("Waited the longest allowed (%(waited)s): to the message box",
                        waited=waited), gettext("waited too long"))  # fmt: skip
    if event == "OVERFLOW":
        return (gettext("The queue could not take the call: to the message box"),
                gettext("message box"))  # fmt: skip
    if event == "CALLBACK_REQUESTED":
        return (gettext("Asked to be called back"), gettext("call-back asked"))
    if event == "CALLBACK_ATTEMPT":
        result = data.get("result")
        said = call_status_name(result) if result != "connected" else gettext("connected")
        return (gettext("Call-back attempt %(n)s by %(name)s: %(result)s", n=data.get("attempt"),
                        name=who, result=said),
                gettext("call-back %(result)s", result=said))  # fmt: skip
    if event == "MESSAGE_LEFT":
        length = mmss(_seconds(data, "duration_s"))
        return (gettext("Left a message (%(length)s)", length=length),
                gettext("message left %(length)s", length=length))  # fmt: skip
    if event == "MESSAGE_EMPTY":
        return (gettext("The message box recorded nothing"), "")
    if event in ("RECORDING", "CALL_RECORDING"):
        if data.get("status") == "completed":
            what = (recording_kind_name("message") if event == "RECORDING"
                    else recording_kind_name("conversation"))  # fmt: skip
            return (gettext("Recording received from the carrier (%(what)s, %(length)s)",
                            what=what, length=mmss(_seconds(data, "duration_s"))), "")  # fmt: skip
        if data.get("status") in ("failed", "absent"):
            return (gettext("The carrier could not record"), "")
        return ("", "")
    if event == "CALL_STATUS":
        status = data.get("status")
        if status == "completed":
            return (gettext("Call ended (%(length)s in all)",
                            length=mmss(_seconds(data, "duration_s"))), "")  # fmt: skip
        if status in ("busy", "failed", "no-answer", "canceled"):
            return (gettext("Call ended: %(status)s", status=call_status_name(status)),
                    str(call_status_name(status)))  # fmt: skip
        return ("", "")  # ringing, in progress: nothing a reader needs
    if event == "FALLBACK":
        return (gettext("The hotline was briefly unavailable: the caller heard the apology, "
                        "and the call was recorded afterwards"), gettext("apology"))  # fmt: skip
    if event == "RETENTION_DELETE":
        return (gettext("Deleted at the end of its retention period: %(what)s",
                        what=recording_kind_name(data.get("kind")) if data.get("what") ==
                        "recording" else readable(data.get("what", ""))), "")  # fmt: skip
    if event == "HANDLER_PAUSED":
        return (gettext("%(name)s put on a break: %(reason)s", name=who,
                        reason=reason_name(data.get("reason"))), "")  # fmt: skip
    return (readable(event).capitalize(), "")


def stories(
    conn: Session, flow: Any, interactions: list[Any], timeline: list[Any]
) -> list[CallStory]:
    """Each call of a case with its menu answers and what happened, oldest first. ``timeline``
    is ``InquiryDetail.timeline`` (events in time order)."""
    names = handler_names(
        conn,
        [t.data.get("handler_id") for t in timeline]
        + [getattr(i, "handler_id", None) for i in interactions],
    )
    by_call = {i.id: CallStory(i, menu_answers(flow, i.ivr_path)) for i in interactions}
    for item in timeline:
        story = by_call.get(item.interaction_id)
        if story is None:
            continue
        text, short = tell(item.name, item.data, names)
        if text:
            story.beats.append(Beat(item.time, text, item.name, item.data, short))
    for story in by_call.values():
        waited = _waited(story.interaction)
        if waited is not None:
            short = gettext("waited %(waited)s", waited=mmss(waited))
            story.beats.insert(0, Beat(story.interaction.started_at, "", "", {}, short))
    return list(by_call.values())


def _waited(interaction: Any) -> float | None:
    """Seconds in the queue before a handler took the call (None: not taken; a caller who hung
    up waiting is told by the ABANDON event)."""
    start = getattr(interaction, "enqueued_at", None)
    end = getattr(interaction, "connected_at", None)
    if start is None or end is None:
        return None
    return max(0.0, (_aware(end) - _aware(start)).total_seconds())


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
