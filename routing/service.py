"""Call handlers: create them, change their presence (database first, then the routing core).

The database is the truth; the Redis routing core follows it. A presence change is committed
to the ``handler`` row (with a ``CallEvent``) before the core hears of it, so a crash between
the two leaves the core behind, never ahead: ``routing.reconcile`` brings it back.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import redis
from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from dataprotection import DataProtector, Sealed, mask_address, normalise_number
from inquiries.models import INQUIRY_KINDS, LANGUAGES, CallEvent, utcnow
from routing.core import RoutingCore
from routing.models import PERSON_PRESENCES, Handler
from routing.strategies import HandlerProfile, PresenceChange
from settings import Settings

_E164 = re.compile(r"\+[1-9]\d{6,14}")
_CLIENT = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")
MAX_LEVEL = 99
MAX_POSITION = 10**9 - 1
MAX_WRAP_UP_S = 3600
MAX_REASON = 200

_handler = Handler.__table__
_event = CallEvent.__table__


class HandlerNotFound(LookupError):
    """No active handler with that id."""


def routing_core(settings: Settings, redis_client: redis.Redis) -> RoutingCore:
    """The routing core configured by the ROUTING_* settings."""
    return RoutingCore(
        redis_client,
        strategy=settings.routing_strategy,
        language_fallback_after_s=float(settings.routing_language_fallback_after_s),
        max_misses=settings.routing_max_misses,
        max_queue=settings.routing_max_queue,
        chat_capacity=settings.routing_chat_capacity,
        call_max_chats=settings.routing_call_max_chats,
    )


def _choices(values: Iterable[str], known: Sequence[str], what: str) -> list[str]:
    chosen = list(dict.fromkeys(v.strip() for v in values if v.strip()))
    unknown = [v for v in chosen if v not in known]
    if unknown:
        raise ValueError(f"unknown {what} {', '.join(unknown)}; known: {', '.join(known)}")
    return chosen


def _bounded(value: int, low: int, high: int, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"{what} must be a whole number from {low} to {high}")
    return value


def e164(raw: str) -> str:
    """The number in E.164 (``+380…``), else ValueError (the error never repeats the input)."""
    number = normalise_number(raw)
    if not _E164.fullmatch(number):
        raise ValueError("phone must be an E.164 number: + country code and digits, like +380…")
    return number


def create_handler(
    conn_or_session: Session,
    protector: DataProtector,
    *,
    display_name: str,
    languages: Iterable[str],
    skills: Iterable[str],
    phone: str | None = None,
    client: str | None = None,
    level: int = 1,
    position: int = 0,
    wrap_up_s: int = 30,
    fallback_languages: Iterable[str] | None = None,
    settings: Settings | None = None,
) -> int:
    """Insert a handler (offline) and return its id; the caller commits.

    Exactly one of ``phone`` (E.164; sealed exactly like a caller's number) and ``client`` (a
    browser client name). ``fallback_languages`` defaults to what ROUTING_FALLBACK_LANGUAGES
    gives for ``languages`` (when ``settings`` is passed; otherwise none). Bad input: ValueError.
    """
    name = (display_name or "").strip()
    if not name or len(name) > 80:
        raise ValueError("name must be 1 to 80 characters")
    langs = _choices(languages, LANGUAGES, "language")
    if not langs:
        raise ValueError(f"at least one language is needed ({', '.join(LANGUAGES)})")
    kinds = _choices(skills, INQUIRY_KINDS, "skill")
    if not kinds:
        raise ValueError(f"at least one skill is needed ({', '.join(INQUIRY_KINDS)})")
    if fallback_languages is None:
        fallback_languages = settings.fallback_languages_for(langs) if settings else ()
    fallback = [
        lang
        for lang in _choices(fallback_languages, LANGUAGES, "fallback language")
        if lang not in langs
    ]
    _bounded(level, 0, MAX_LEVEL, "level")
    _bounded(position, 0, MAX_POSITION, "position")
    _bounded(wrap_up_s, 0, MAX_WRAP_UP_S, "wrap-up")
    if (phone is None) == (client is None):
        raise ValueError("give exactly one of a phone number and a browser client name")

    values: dict[str, object] = {}
    if phone is not None:
        number = e164(phone)
        number_hash = protector.lookup_hash(number)
        taken = conn_or_session.execute(
            select(_handler.c.id).where(_handler.c.phone_hash == number_hash)
        ).scalar()
        if taken is not None:
            raise ValueError(f"handler {taken} already has that phone number")
        sealed = protector.seal_text(number, associated=number_hash.encode())
        values.update(
            phone_hash=number_hash,
            phone_ciphertext=sealed.ciphertext,
            phone_key_id=sealed.key_id,
        )
    else:
        identity = (client or "").strip()
        if not _CLIENT.fullmatch(identity):
            raise ValueError("client: a letter, then letters, digits or _.- (at most 64)")
        taken = conn_or_session.execute(
            select(_handler.c.id).where(_handler.c.client_identity == identity)
        ).scalar()
        if taken is not None:
            raise ValueError(f"handler {taken} already has the client name {identity!r}")
        values["client_identity"] = identity

    now = utcnow()
    statement = insert(_handler).returning(_handler.c.id)
    return conn_or_session.execute(
        statement,
        {
            "display_name": name,
            "languages": langs,
            "fallback_languages": fallback,
            "skills": kinds,
            "level": level,
            "position": position,
            "wrap_up_s": wrap_up_s,
            "presence": "offline",
            "presence_reason": None,
            "presence_changed_at": now,
            "active": True,
            "created_at": now,
            **values,
        },
    ).scalar_one()


def handler_phone(protector: DataProtector, handler: Handler) -> str | None:
    """Decrypt a handler's number (to place their calls; never to show it)."""
    if handler.phone_hash is None or handler.phone_ciphertext is None or not handler.phone_key_id:
        return None
    sealed = Sealed(handler.phone_key_id, handler.phone_ciphertext)
    return protector.open_text(sealed, associated=handler.phone_hash.encode())


def profile(handler: Handler) -> HandlerProfile:
    """What the routing core knows of a handler (ids, languages, skills; no number)."""
    return HandlerProfile(
        handler_id=str(handler.id),
        languages=tuple(handler.languages),
        skills=tuple(handler.skills),
        level=handler.level,
        order=handler.position,
        fallback_languages=tuple(handler.fallback_languages or ()),
    )


@dataclass(frozen=True)
class PresenceResult:
    handler_id: int
    previous: str
    current: str
    core: PresenceChange


def set_presence(
    session: Session,
    core: RoutingCore,
    handler_id: int,
    presence: str,
    reason: str | None = None,
    *,
    now: float | None = None,
) -> PresenceResult:
    """A person sets a handler offline / available / break (``reason``: for supervisors).

    The row and a ``CallEvent`` (``HANDLER_PAUSED`` for a break, else ``HANDLER_PRESENCE``) are
    committed first; then the core gets the profile and the presence. If the core is
    unreachable the error propagates after the commit; ``flask routing reconcile`` catches up.
    While the handler is offered or on a call the core withdraws or defers the change (see
    ``RoutingCore.set_presence``); the row records what was asked for.
    """
    if presence not in PERSON_PRESENCES:
        raise ValueError(f"presence must be one of {', '.join(PERSON_PRESENCES)}, not {presence!r}")
    reason = (reason or "").strip()[:MAX_REASON] or None
    handler = session.get(Handler, handler_id)
    if handler is None or not handler.active:
        raise HandlerNotFound(f"no active handler with id {handler_id}")
    previous = handler.presence
    changed_at = utcnow()
    session.execute(
        update(_handler)
        .where(_handler.c.id == handler_id)
        .values(presence=presence, presence_reason=reason, presence_changed_at=changed_at)
    )
    data: dict[str, object] = {"handler_id": handler_id, "from": previous, "to": presence}
    if reason is not None:
        data["reason"] = reason
    session.execute(
        insert(_event).values(
            time=changed_at,
            interaction_id=None,
            event="HANDLER_PAUSED" if presence == "break" else "HANDLER_PRESENCE",
            data=data,
        )
    )
    session.commit()
    session.refresh(handler)
    core.upsert_handler(profile(handler), now=now)
    change = core.set_presence(
        str(handler_id), presence, reason=reason, now=time.time() if now is None else now
    )
    return PresenceResult(handler_id, previous, presence, change)


def masked_phone(number: str) -> str:
    """``+7 ••• ••• 45 67``: the country code and the last four digits only."""
    return mask_address(e164(number))
