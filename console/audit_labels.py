"""The audit log in words: each action as a sentence ("Viewed a case", "Played a recording"),
the object it touched ("case 12", "the account of Olena"), and its details as readable pairs
("Full number shown: no · Rows: 3").

Every action the hotline writes (``grep -rn "audit.record(" .``) has a sentence here; one
without (a new action) is shown in words (``labels.readable``), never as its dotted code. The
code itself stays in the action filter's ``value`` and behind the row's details toggle.
"""

from __future__ import annotations

from typing import Any

from flask_babel import gettext, lazy_gettext

from console.blueprint import bp
from console.labels import (
    call_status_name,
    kind_name,
    language_name,
    mmss,
    outcome_name,
    presence_name,
    readable,
    reason_name,
)

ACTION_NAMES = {
    "login.success": lazy_gettext("Signed in"),
    "login.failure": lazy_gettext("Sign-in refused"),
    "logout": lazy_gettext("Signed out"),
    "staff.create": lazy_gettext("Created a staff account"),
    "staff.role": lazy_gettext("Changed a staff member's role"),
    "staff.enable": lazy_gettext("Enabled a staff account"),
    "staff.disable": lazy_gettext("Disabled a staff account"),
    "staff.reset": lazy_gettext("Reset a staff member's password and authenticator"),
    "staff.password_change": lazy_gettext("Changed their password"),
    "staff.totp_enrol": lazy_gettext("Set up their authenticator"),
    "inquiry.view": lazy_gettext("Viewed a case"),
    "inquiry.note": lazy_gettext("Added a note to a case"),
    "inquiry.outcome": lazy_gettext("Set a case's outcome"),
    "recording.play": lazy_gettext("Played a recording"),
    "recording.retry": lazy_gettext("Retried storing a recording"),
    "calllog.view": lazy_gettext("Viewed the call log"),
    "calllog.export": lazy_gettext("Exported the call log"),
    "dashboard.view": lazy_gettext("Viewed the dashboard"),
    "handler.presence": lazy_gettext("Changed a handler's presence"),
    "handler.wrap_up_more": lazy_gettext("Took more wrap-up time"),
    "blocklist.add": lazy_gettext("Blocked a number"),
    "blocklist.remove": lazy_gettext("Removed a number from the blocklist"),
    "blocklist.expire": lazy_gettext("A number's block ended"),
    "retention.change": lazy_gettext("Changed a retention period"),
    "retention.delete": lazy_gettext("Deleted data past its retention period"),
    "keys.reseal": lazy_gettext("Re-sealed the data keys"),
    "keys.rehash": lazy_gettext("Re-hashed the callers' numbers with a new key"),
}

OBJECT_NAMES = {
    "inquiry": lazy_gettext("case %(id)s"),
    "recording": lazy_gettext("recording %(id)s"),
    "staff_user": lazy_gettext("staff account %(id)s"),
    "handler": lazy_gettext("handler %(id)s"),
    "blocked_number": lazy_gettext("blocklist entry %(id)s"),
    "retention_setting": lazy_gettext("setting %(id)s"),
    "data_key": lazy_gettext("data key %(id)s"),
    "phone_hmac_key": lazy_gettext("number-hashing key"),
    "caller": lazy_gettext("caller %(id)s"),
    "note": lazy_gettext("note %(id)s"),
}

DETAIL_NAMES = {
    "full_number": lazy_gettext("Full number shown"),
    "full_numbers": lazy_gettext("Full numbers shown"),
    "rows": lazy_gettext("Rows"),
    "days": lazy_gettext("Days"),
    "via": lazy_gettext("From"),
    "note": lazy_gettext("Note"),
    "outcome": lazy_gettext("Outcome"),
    "previous": lazy_gettext("Before"),
    "presence": lazy_gettext("Presence"),
    "start": lazy_gettext("From byte"),
    "end": lazy_gettext("To byte"),
    "result": lazy_gettext("Result"),
    "hours": lazy_gettext("Hours"),
    "role": lazy_gettext("Role"),
    "old": lazy_gettext("Before"),
    "new": lazy_gettext("After"),
    "handler_id": lazy_gettext("Handler"),
    "step": lazy_gettext("Step"),
    "reason": lazy_gettext("Reason"),
    "sessions_ended": lazy_gettext("Sessions ended"),
    "old_source": lazy_gettext("Set by before"),
    "new_source": lazy_gettext("Set by after"),
    "environment": lazy_gettext("Server's value"),
    "kind": lazy_gettext("Topic"),
    "language": lazy_gettext("Language"),
    "status": lazy_gettext("Status"),
    "channel": lazy_gettext("Channel"),
    "since": lazy_gettext("From"),
    "until": lazy_gettext("To"),
    "handler": lazy_gettext("Handler"),
    "reencrypt_recordings": lazy_gettext("Recordings re-encrypted"),
    "added_s": lazy_gettext("Added"),
    "left_s": lazy_gettext("Wrap-up left"),
}

#: Coded values, by the detail they belong to.
VALUE_NAMES = {
    "via": {
        "handler_page": lazy_gettext("the handler's page"),
        "board": lazy_gettext("the queue board"),
    },
    "step": {
        "password": lazy_gettext("password"),
        "totp": lazy_gettext("authenticator code"),
        "enrol": lazy_gettext("authenticator set-up"),
        "password_change": lazy_gettext("choosing a password"),
    },
    "reason": {
        "password": lazy_gettext("wrong password"),
        "code": lazy_gettext("wrong code"),
        "unknown_user": lazy_gettext("unknown username"),
        "disabled": lazy_gettext("account disabled"),
        "enrolled": lazy_gettext("authenticator already set up"),
    },
    "old_source": {
        "console": lazy_gettext("this console"),
        "environment": lazy_gettext("the environment"),
    },
    "new_source": {
        "console": lazy_gettext("this console"),
        "environment": lazy_gettext("the environment"),
    },
}
#: Details whose value is a yes/no flag (stored as 0/1 or a boolean).
FLAGS = {"full_number", "full_numbers", "reencrypt_recordings"}


@bp.app_template_filter("audit_action_name")
def action_name(action: str | None) -> Any:
    if not action:
        return "—"
    found = ACTION_NAMES.get(action)
    return found if found is not None else readable(action).replace(".", " ").capitalize()


def object_name(
    object_type: str | None, object_id: str | None, names: dict[tuple[str, str], str]
) -> str:
    """``case 12``; a staff account or a handler by their name when known."""
    if not object_type:
        return ""
    known = names.get((object_type, str(object_id)))
    if known:
        return known
    pattern = OBJECT_NAMES.get(object_type)
    if pattern is None:
        return f"{readable(object_type)} {object_id or ''}".strip()
    return str(pattern) % {"id": object_id if object_id is not None else ""}


def _value(key: str, value: Any, handler_names: dict[int, str]) -> str:
    if value is None or value == "":
        return "—"
    if key in FLAGS or isinstance(value, bool):
        return gettext("yes") if value else gettext("no")
    if key in VALUE_NAMES:
        return str(VALUE_NAMES[key].get(value, readable(value)))
    if key in ("presence", "previous") and isinstance(value, str) and value in _PRESENCES:
        return str(presence_name(value))
    if key in ("outcome", "previous"):
        return str(outcome_name(value))
    if key == "kind":
        return str(kind_name(value))
    if key == "language":
        return str(language_name(value))
    if key == "status":
        return str(call_status_name(value))
    if key == "reason":
        return str(reason_name(value))
    if key in ("handler_id", "handler"):
        try:
            return handler_names.get(int(value)) or gettext("handler %(id)s", id=value)
        except (TypeError, ValueError):
            return readable(value)
    if key.endswith("_s") and isinstance(value, int | float):
        return mmss(value)
    if isinstance(value, list | tuple):
        return ", ".join(readable(v) for v in value)
    if isinstance(value, str):
        return readable(value)
    return str(value)


_PRESENCES = ("available", "break", "offline", "offered", "on_call", "wrap_up")


def detail_pairs(details: dict[str, Any] | None, handler_names: dict[int, str]) -> list[str]:
    """``Full number shown: no``, ``Rows: 3``… (a role through the role names)."""
    from console import ROLE_NAMES  # the console's own names of the roles

    pairs = []
    for key, value in (details or {}).items():
        name = DETAIL_NAMES.get(key)
        label = str(name) if name is not None else readable(key).capitalize()
        if key in ("role", "old", "new") and isinstance(value, str) and value in ROLE_NAMES:
            shown = str(ROLE_NAMES[value])
        else:
            shown = _value(key, value, handler_names)
        pairs.append(f"{label}: {shown}")
    return pairs
