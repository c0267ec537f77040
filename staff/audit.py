"""The append-only audit log: who did what, when, from where.

``record(action, object_type, object_id, **details)`` is the one way to write it, for every
package. In a request it fills in the signed-in staff member and the request's address. Details
are ids and short codes only: a string that looks like a phone number is refused (ValueError),
so a programming mistake fails in the tests instead of writing personal data into a log that
can never be edited. Nothing in the app updates or deletes a row; the database refuses to.

Actions are dotted names, ``<area>.<verb>``: ``login.success``, ``login.failure``, ``logout``,
``staff.create``, ``staff.role``, ``staff.disable``, ``staff.enable``, ``staff.reset``,
``staff.totp_enrol``, ``staff.password_change``; other packages add theirs (``inquiry.view``,
``recording.play``, ``retention.change``, …).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from flask import has_request_context, request
from sqlalchemy import insert
from sqlalchemy.orm import Session

from db import db_session, utcnow
from staff.models import AuditEvent

_PHONE_LIKE = re.compile(r"(?<![\w.])\+?\d[\d\s().\-]{5,}\d(?![\w.])")
_PLUS_DIGIT = re.compile(r"\+\s*\d")
_ACTION = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*")
MAX_STRING = 200
MAX_ITEMS = 50
_UNSET: Any = object()


def looks_like_a_phone_number(text: str) -> bool:
    """Whether ``text`` holds something shaped like a phone number (what ``record`` refuses)."""
    return bool(_PHONE_LIKE.search(text) or _PLUS_DIGIT.search(text))


def _checked(name: str, value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        if len(value) > MAX_STRING:
            raise ValueError(f"audit detail {name!r} is longer than {MAX_STRING} characters")
        if looks_like_a_phone_number(value):
            raise ValueError(f"audit detail {name!r} looks like a phone number: pass ids only")
        return value
    if isinstance(value, list | tuple) and len(value) <= MAX_ITEMS:
        return [_checked(name, item) for item in value if not isinstance(item, list | tuple)]
    raise ValueError(f"audit detail {name!r}: only numbers, short codes and lists of them")


#: The longest address the ``ip`` columns hold (an IPv6 address in full).
MAX_ADDRESS = 45


def request_address() -> str | None:
    """The request's client address, if it is an IP address (None otherwise).

    Behind trusted proxies (``TRUSTED_PROXIES``) it comes from ``X-Forwarded-For``; a proxy
    that passes on whatever a client wrote must not put arbitrary text into the audit log or
    the throttle's keys, so anything that does not parse as an address is dropped.
    """
    if not has_request_context() or not request.remote_addr:
        return None
    try:
        address = str(ipaddress.ip_address(request.remote_addr.strip()))
    except ValueError:
        return None
    return address if len(address) <= MAX_ADDRESS else None


#: Built once (the values are parameters): every console page writes one.
_INSERT = insert(AuditEvent.__table__)


def record(
    action: str,
    object_type: str | None = None,
    object_id: int | str | None = None,
    *,
    using: Session | None = None,
    actor: int | None = _UNSET,
    ip: str | None = _UNSET,
    **details: Any,
) -> None:
    """Append one audit event.

    ``using``: a connection or session whose transaction the event joins (the caller commits:
    the change and its audit row land together or not at all). Without it, the event is written
    through the app context's session, which is committed at once (with what it holds).
    ``actor`` (a staff user id) and ``ip`` default to the signed-in staff member and the
    request's address.
    """
    if not _ACTION.fullmatch(action) or len(action) > 64:
        raise ValueError(f"audit action {action!r}: dotted lower-case names, like inquiry.view")
    if actor is _UNSET:
        from staff.authz import current_staff  # authz builds on this module

        user = current_staff() if has_request_context() else None
        actor = user.id if user is not None else None
    values = {
        "time": utcnow(),
        "staff_user_id": actor,
        "action": action,
        "object_type": object_type,
        "object_id": None if object_id is None else str(object_id),
        "ip": request_address() if ip is _UNSET else ip,
        "details": {key: _checked(key, value) for key, value in details.items()},
    }
    if object_type is not None and not _ACTION.fullmatch(object_type):
        raise ValueError(f"audit object type {object_type!r}: a lower-case name")
    if isinstance(object_id, str):
        _checked("object_id", object_id)
    if using is not None:
        using.execute(_INSERT, values)
        return
    session = db_session()
    session.execute(_INSERT, values)
    session.commit()
