"""What staff read in place of the codes the hotline stores: presences, topics, languages,
statuses, channels, outcomes, recording states, reasons, menu answers, and times in the
hotline's time zone.

Every name is translated when shown (marked ``N_``; the page's language decides). Template filters,
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

from flask import has_request_context
from flask_babel import format_datetime, get_timezone, gettext

from console.blueprint import bp
from console.i18n import request_translations


def N_(message: str) -> str:
    """Marks a name for translation (Babel extracts ``N_``); ``_name`` translates it when shown,
    through the request's catalog looked up once (``i18n.request_translations``): a lazy string
    per name went through Flask-Babel's whole lookup for every cell of a page."""
    return message


def translated(message: str) -> str:
    return request_translations().ugettext(message) if has_request_context() else message


PRESENCE_NAMES = {
    "available": N_("available"),
    "break": N_("on a break"),
    "offline": N_("offline"),
    "offered": N_("call offered"),
    "on_call": N_("on a call"),
    "wrap_up": N_("wrap-up"),
    "unknown": N_("unknown"),
}
KIND_NAMES = {
    "surrender": N_("surrender"),
    "family": N_("a relative"),
    "pow_info": N_("prisoners of war"),
    "other": N_("other"),
}
CALLER_LANGUAGE_NAMES = {
    "ru": N_("Russian"),
    "uk": N_("Ukrainian"),
    "en": N_("English"),
}
OUTCOME_NAMES = {
    "advised": N_("advised"),
    "referred": N_("referred elsewhere"),
    "callback_arranged": N_("call-back arranged"),
    "no_contact": N_("no contact"),
    "other": N_("other"),
}
#: The carrier's call statuses, as a person says them.
CALL_STATUS_NAMES = {
    "queued": N_("starting"),
    "initiated": N_("starting"),
    "ringing": N_("ringing"),
    "in-progress": N_("in progress"),
    "completed": N_("ended"),
    "busy": N_("busy"),
    "failed": N_("failed"),
    "no-answer": N_("not answered"),
    "canceled": N_("cancelled"),
}
CASE_STATUS_NAMES = {
    "new": N_("new"),
    "open": N_("open"),
    "resolved": N_("resolved"),
    "closed": N_("closed"),
}
CHANNEL_NAMES = {
    "voice": N_("call"),
    "sms": N_("SMS"),
    "whatsapp": N_("WhatsApp"),
    "telegram": N_("Telegram"),
}
#: (channel, direction): what a person calls it.
CALL_CHANNEL_NAMES = {
    ("voice", "inbound"): N_("incoming call"),
    ("voice", "outbound"): N_("call-back"),
    ("sms", "inbound"): N_("SMS received"),
    ("sms", "outbound"): N_("SMS sent"),
    ("whatsapp", "inbound"): N_("WhatsApp message received"),
    ("whatsapp", "outbound"): N_("WhatsApp message sent"),
    ("telegram", "inbound"): N_("Telegram message received"),
    ("telegram", "outbound"): N_("Telegram message sent"),
}
RECORDING_KIND_NAMES = {
    "message": N_("message left"),
    "conversation": N_("conversation"),
}
RECORDING_STATE_NAMES = {
    "pending": N_("waiting to be fetched"),
    "fetched": N_("being stored"),
    "stored": N_("stored"),
    "carrier_deleted": N_("stored"),
    "failed": N_("not stored yet"),
    "deleted": N_("deleted (retention period over)"),
}
#: Why something happened: a break set by routing, a recording that failed, a queue left.
REASON_NAMES = {
    "missed offers": N_("did not take offered calls"),
    "missed_offers": N_("did not take offered calls"),
    "carrier_delete_failed": N_("the carrier's copy could not be deleted yet"),
    "carrier_unavailable": N_("the carrier could not be reached"),
    "encode_failed": N_("the audio could not be converted"),
    "not_audio": N_("the carrier sent no usable audio"),
    "store_failed": N_("the store could not be written"),
    "too_large": N_("larger than the allowed size"),
    "verify_failed": N_("the stored copy did not read back"),
    "error": N_("an unexpected error"),
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
    return translated(found) if found is not None else readable(code)


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
    return translated(found) if found is not None else channel_name(channel)


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
        return translated(found)
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


def when_s_all(values: list[dt.datetime]) -> list[str]:
    """``when_s`` of each time, for a page of many (the call log): each date named once
    (Babel), the time of day by ``strftime``, the zone looked up once."""
    if not values:
        return []
    zone = get_timezone()
    days: dict[dt.date, str] = {}
    shown = []
    for value in values:
        local = (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).astimezone(zone)
        named = days.get(local.date())
        if named is None:
            named = days[local.date()] = day(local)
        shown.append(f"{named}, {local:%H:%M:%S}")
    return shown


@bp.app_template_filter("clock")
def clock(value: dt.datetime | None) -> str:
    """``14:05:09``."""
    return _local(value, "HH:mm:ss")


@bp.app_template_filter("day")
def day(value: dt.datetime | None) -> str:
    """``8 Dec 2026``."""
    return _local(value, "d MMM yyyy")
