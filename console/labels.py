"""What staff read in place of the codes the hotline stores: presences, topics, languages,
statuses, channels, outcomes, recording states, reasons, menu answers, and times in the
hotline's time zone.

Every name is translated (``lazy_gettext``: the page's language decides). Template filters,
registered with the console's blueprint::

    {{ p | presence_name }}  {{ k | kind_name }}  {{ lang | language_name }}
    {{ o | outcome_name }}   {{ s | call_status_name }}  {{ s | case_status_name }}
    {{ call | call_channel_name }}  (channel and direction: "incoming call", "SMS"…)
    {{ r.kind | recording_kind_name }}  {{ r.state | recording_state_name }}
    {{ reason | reason_name }}  (a break's or a failure's reason)
    {{ seconds | mmss }}  {{ time | when }}  {{ time | clock }}  {{ time | day }}

A code without a name here (an outcome added to ``CASE_OUTCOMES``, say) is shown with its
underscores and hyphens as spaces, never as ``None``; a missing value is a dash. The browser
tests (``tests/console/test_pages_browser.py``) search every page for the raw codes.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from flask_babel import format_datetime, gettext, lazy_gettext

from console.blueprint import bp

PRESENCE_NAMES = {
    "available": lazy_gettext("available"),
    "break": lazy_gettext("on a break"),
    "offline": lazy_gettext("offline"),
    "offered": lazy_gettext("call offered"),
    "on_call": lazy_gettext("on a call"),
    "wrap_up": lazy_gettext("wrap-up"),
    "unknown": lazy_gettext("unknown"),
}
KIND_NAMES = {
    "surrender": lazy_gettext("surrender"),
    "family": lazy_gettext("a relative"),
    "pow_info": lazy_gettext("prisoners of war"),
    "other": lazy_gettext("other"),
}
CALLER_LANGUAGE_NAMES = {
    "ru": lazy_gettext("Russian"),
    "uk": lazy_gettext("Ukrainian"),
    "en": lazy_gettext("English"),
}
OUTCOME_NAMES = {
    "advised": lazy_gettext("advised"),
    "referred": lazy_gettext("referred elsewhere"),
    "callback_arranged": lazy_gettext("call-back arranged"),
    "no_contact": lazy_gettext("no contact"),
    "other": lazy_gettext("other"),
}
#: The carrier's call statuses, as a person says them.
CALL_STATUS_NAMES = {
    "queued": lazy_gettext("starting"),
    "initiated": lazy_gettext("starting"),
    "ringing": lazy_gettext("ringing"),
    "in-progress": lazy_gettext("in progress"),
    "completed": lazy_gettext("ended"),
    "busy": lazy_gettext("busy"),
    "failed": lazy_gettext("failed"),
    "no-answer": lazy_gettext("not answered"),
    "canceled": lazy_gettext("cancelled"),
}
CASE_STATUS_NAMES = {
    "new": lazy_gettext("new"),
    "open": lazy_gettext("open"),
    "resolved": lazy_gettext("resolved"),
    "closed": lazy_gettext("closed"),
}
CHANNEL_NAMES = {
    "voice": lazy_gettext("call"),
    "sms": lazy_gettext("SMS"),
    "whatsapp": lazy_gettext("WhatsApp"),
    "telegram": lazy_gettext("Telegram"),
}
#: (channel, direction): what a person calls it.
CALL_CHANNEL_NAMES = {
    ("voice", "inbound"): lazy_gettext("incoming call"),
    ("voice", "outbound"): lazy_gettext("call-back"),
    ("sms", "inbound"): lazy_gettext("SMS received"),
    ("sms", "outbound"): lazy_gettext("SMS sent"),
    ("whatsapp", "inbound"): lazy_gettext("WhatsApp message received"),
    ("whatsapp", "outbound"): lazy_gettext("WhatsApp message sent"),
    ("telegram", "inbound"): lazy_gettext("Telegram message received"),
    ("telegram", "outbound"): lazy_gettext("Telegram message sent"),
}
RECORDING_KIND_NAMES = {
    "message": lazy_gettext("message left"),
    "conversation": lazy_gettext("conversation"),
}
RECORDING_STATE_NAMES = {
    "pending": lazy_gettext("waiting to be fetched"),
    "fetched": lazy_gettext("being stored"),
    "stored": lazy_gettext("stored"),
    "carrier_deleted": lazy_gettext("stored"),
    "failed": lazy_gettext("not stored yet"),
    "deleted": lazy_gettext("deleted (retention period over)"),
}
#: Why something happened: a break set by routing, a recording that failed, a queue left.
REASON_NAMES = {
    "missed offers": lazy_gettext("did not take offered calls"),
    "missed_offers": lazy_gettext("did not take offered calls"),
    "carrier_delete_failed": lazy_gettext("the carrier's copy could not be deleted yet"),
    "carrier_unavailable": lazy_gettext("the carrier could not be reached"),
    "encode_failed": lazy_gettext("the audio could not be converted"),
    "not_audio": lazy_gettext("the carrier sent no usable audio"),
    "store_failed": lazy_gettext("the store could not be written"),
    "too_large": lazy_gettext("larger than the allowed size"),
    "verify_failed": lazy_gettext("the stored copy did not read back"),
    "error": lazy_gettext("an unexpected error"),
}


#: The reason routing's core gives an automatic break.
MISSED_IN_A_ROW = re.compile(r"missed (\d{1,3}) offers in a row")


def readable(code: Any) -> str:
    """A code nobody named: words, not ``snake_case`` or ``kebab-case``."""
    return str(code).replace("_", " ").replace("-", " ")


def _name(names: dict[Any, Any], code: Any) -> Any:
    if code is None or code == "":
        return "—"
    found = names.get(code)
    return found if found is not None else readable(code)


@bp.app_template_filter("presence_name")
def presence_name(code: str | None) -> Any:
    return _name(PRESENCE_NAMES, code)


@bp.app_template_filter("kind_name")
def kind_name(code: str | None) -> Any:
    return _name(KIND_NAMES, code)


@bp.app_template_filter("language_name")
def language_name(code: str | None) -> Any:
    return _name(CALLER_LANGUAGE_NAMES, code)


@bp.app_template_filter("outcome_name")
def outcome_name(code: str | None) -> Any:
    return _name(OUTCOME_NAMES, code)


@bp.app_template_filter("call_status_name")
def call_status_name(code: str | None) -> Any:
    return _name(CALL_STATUS_NAMES, code)


@bp.app_template_filter("case_status_name")
def case_status_name(code: str | None) -> Any:
    return _name(CASE_STATUS_NAMES, code)


@bp.app_template_filter("channel_name")
def channel_name(code: str | None) -> Any:
    return _name(CHANNEL_NAMES, code)


@bp.app_template_filter("call_channel_name")
def call_channel_name(channel: str | None, direction: str | None = None) -> Any:
    """``incoming call``, ``call-back``, ``SMS received``… (channel and direction)."""
    found = CALL_CHANNEL_NAMES.get((channel, direction))  # type: ignore[arg-type]
    return found if found is not None else channel_name(channel)


@bp.app_template_filter("recording_kind_name")
def recording_kind_name(code: str | None) -> Any:
    return _name(RECORDING_KIND_NAMES, code)


@bp.app_template_filter("recording_state_name")
def recording_state_name(code: str | None) -> Any:
    return _name(RECORDING_STATE_NAMES, code)


@bp.app_template_filter("reason_name")
def reason_name(reason: str | None) -> Any:
    """A reason routing or the pipeline wrote (a code) is named; one a person typed (a break's
    reason) is shown as typed."""
    if reason is None or reason == "":
        return ""
    found = REASON_NAMES.get(reason)
    if found is not None:
        return found
    missed = MISSED_IN_A_ROW.fullmatch(reason)  # routing's automatic break (routing/lua/state.lua)
    if missed:
        return gettext("did not take %(n)s offered calls in a row", n=int(missed.group(1)))
    return reason


@bp.app_template_filter("mmss")
def mmss(seconds: float | None) -> str:
    """``1:05`` for 65 s (``1:02:05`` past an hour); a dash for None."""
    if seconds is None:
        return "—"
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _local(value: dt.datetime | None, pattern: str) -> str:
    """In the hotline's time zone (Flask-Babel's, set from ``HOTLINE_TIME_ZONE``); a stored
    time without a zone is UTC."""
    if value is None:
        return "—"
    return format_datetime(value, pattern)


@bp.app_template_filter("when")
def when(value: dt.datetime | None) -> str:
    """``8 Dec 2026, 14:05`` (``8 груд. 2026, 14:05``): a date nobody reads the wrong way."""
    return _local(value, "d MMM yyyy, HH:mm")


@bp.app_template_filter("when_s")
def when_s(value: dt.datetime | None) -> str:
    """``8 Dec 2026, 14:05:09``."""
    return _local(value, "d MMM yyyy, HH:mm:ss")


@bp.app_template_filter("clock")
def clock(value: dt.datetime | None) -> str:
    """``14:05:09``."""
    return _local(value, "HH:mm:ss")


@bp.app_template_filter("day")
def day(value: dt.datetime | None) -> str:
    """``8 Dec 2026``."""
    return _local(value, "d MMM yyyy")
