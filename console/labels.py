"""Names shown for the codes that routing and the cases store: presences, inquiry kinds, caller
languages, case outcomes, and a short duration format.

Template filters (registered on the app with the console's blueprint): ``{{ p | presence_name }}``,
``{{ k | kind_name }}``, ``{{ lang | language_name }}``, ``{{ o | outcome_name }}``,
``{{ seconds | mmss }}``. A code without a name here (an outcome added to ``CASE_OUTCOMES``, say)
is shown as itself; None as a dash.
"""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext

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


def _name(names: dict[str, Any], code: Any) -> Any:
    if code is None or code == "":
        return "—"
    return names.get(code, code)


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


@bp.app_template_filter("mmss")
def mmss(seconds: float | None) -> str:
    """``1:05`` for 65 s (``1:02:05`` past an hour); a dash for None."""
    if seconds is None:
        return "—"
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
