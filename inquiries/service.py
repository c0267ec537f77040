"""The call log's write side: find or open a caller's case, record each step of a call.

This runs inside every carrier webhook: its statements are SQLAlchemy Core, built once as module
constants and run through the request's session, a handful of them in one short transaction
(on SQLite every transaction holds the database's only write lock).

A caller is found by the keyed hash of their number, so a repeat caller's calls join their open
case. A call without a usable number (withheld, ``anonymous``, a carrier placeholder, an empty
From: ``dataprotection.caller_address``) is a caller and a case of its own, keyed on its CallSid:
linking such calls would put strangers in one case, each readable by whoever takes another.

Every method is safe under carrier retries: the same webhook delivered twice finds the rows the
first delivery made (``INSERT … ON CONFLICT DO NOTHING`` on the unique keys, then a re-read),
and status changes only ever move a call forward (a conditional UPDATE).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    Connection,
    Executable,
    Result,
    Table,
    Update,
    bindparam,
    case,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from dataprotection import DataProtector, Sealed, caller_address, erased_hash
from db import insert_ignoring_duplicates
from inquiries.models import (
    CALL_STATUS_RANK,
    FINAL_CALL_STATUSES,
    Caller,
    CallEvent,
    Inquiry,
    Interaction,
    utcnow,
)

OPEN_INQUIRY_STATUSES = ("new", "open")
RECORDING_STATUS_RANK = {"in-progress": 0, "completed": 1, "absent": 1, "failed": 1}

_caller: Table = Caller.__table__  # type: ignore[assignment]
_inquiry: Table = Inquiry.__table__  # type: ignore[assignment]
_interaction: Table = Interaction.__table__  # type: ignore[assignment]
_event: Table = CallEvent.__table__  # type: ignore[assignment]

_FIND_CALL = (
    select(
        _interaction.c.id,
        _interaction.c.inquiry_id,
        _interaction.c.provider_sid,
        _interaction.c.status,
        _interaction.c.direction,
        _interaction.c.ivr_path,
        _interaction.c.recording_sid,
        _interaction.c.recording_status,
        _interaction.c.recording_url,
        _interaction.c.recording_duration_s,
        _inquiry.c.language,
        _inquiry.c.kind,
        _inquiry.c.status.label("inquiry_status"),
        _inquiry.c.callback_requested,
        _caller.c.withheld,
    )
    .select_from(_interaction.join(_inquiry).join(_caller))
    .where(_interaction.c.provider_sid == bindparam("sid"))
)
_FIND_CALLER = select(_caller.c.id, _caller.c.number_ciphertext.is_(None).label("erased")).where(
    _caller.c.number_hash == bindparam("hash")
)
_FIND_CALLER_ID = select(_caller.c.id).where(_caller.c.number_hash == bindparam("hash"))
#: The keyed hash of a withheld caller is of its CallSid, under this purpose (never a number's).
WITHHELD_PURPOSE = "withheld-call"
#: A caller erased while their hash was kept (before erasure replaced it too): the hash is
#: erased now, so that the number, calling again, becomes a new caller unlinked from the old.
_UNLINK_ERASED = (
    update(_caller)
    .where(
        _caller.c.id == bindparam("caller"),
        _caller.c.number_hash == bindparam("hash"),
        _caller.c.number_ciphertext.is_(None),
    )
    .values(number_hash=bindparam("erased"))
)
_OPEN_INQUIRY = (
    select(_inquiry.c.id)
    .where(_inquiry.c.caller_id == bindparam("caller"))
    .where(or_(*(_inquiry.c.status == s for s in OPEN_INQUIRY_STATUSES)))
    .order_by(_inquiry.c.id.desc())
    .limit(1)
)
_NEW_INQUIRY = _inquiry.insert().returning(_inquiry.c.id)
_REOPEN_INQUIRY = (
    update(_inquiry)
    .where(_inquiry.c.id == bindparam("inquiry"), _inquiry.c.status == "new")
    .values(status="open", updated_at=bindparam("now"))
)
_SET_PATH = (
    update(_interaction)
    .where(_interaction.c.id == bindparam("interaction"))
    .values(ivr_path=bindparam("path"))
)
_SET_LANGUAGE = (
    update(_inquiry)
    .where(_inquiry.c.id == bindparam("inquiry"))
    .values(language=bindparam("new_language"), updated_at=bindparam("now"))
)
_SET_KIND = (
    update(_inquiry)
    .where(_inquiry.c.id == bindparam("inquiry"))
    .values(
        kind=bindparam("new_kind"), priority=bindparam("new_priority"), updated_at=bindparam("now")
    )
)
_REQUEST_CALLBACK = (
    update(_inquiry)
    .where(_inquiry.c.id == bindparam("inquiry"))
    .values(callback_requested=True, callback_requested_at=bindparam("now"))
)
#: The same for a new case, which it also opens: one statement, not two.
_REQUEST_CALLBACK_AND_OPEN = (
    update(_inquiry)
    .where(_inquiry.c.id == bindparam("inquiry"))
    .values(
        callback_requested=True,
        callback_requested_at=bindparam("now"),
        status=case((_inquiry.c.status == "new", "open"), else_=_inquiry.c.status),
        updated_at=bindparam("now"),
    )
)
#: A recording that holds nothing (Twilio's ``absent``: silence; ``failed``): the message box
#: offers another try, and the next recording takes its place on the interaction.
NOTHING_RECORDED = ("absent", "failed")
_REPLACE_RECORDING = (
    update(_interaction)
    .where(
        _interaction.c.id == bindparam("interaction"),
        or_(*(_interaction.c.recording_status == s for s in NOTHING_RECORDED)),
    )
    .values(
        recording_sid=bindparam("sid"),
        recording_url=bindparam("url"),
        recording_duration_s=bindparam("duration"),
        recording_status=bindparam("new_status"),
    )
)
_STORE_RECORDING = (
    update(_interaction)
    .where(_interaction.c.id == bindparam("interaction"))
    .values(
        recording_sid=bindparam("sid"),
        recording_url=func.coalesce(bindparam("url"), _interaction.c.recording_url),
        recording_duration_s=func.coalesce(
            bindparam("duration"), _interaction.c.recording_duration_s
        ),
        recording_status=bindparam("new_status"),
    )
)


def _status_update(status: str) -> Update | None:
    """The conditional UPDATE to ``status``: only from a lower-ranked status; None when no
    status ranks lower (nothing can move to it)."""
    rank = CALL_STATUS_RANK[status]
    lower = [s for s, r in CALL_STATUS_RANK.items() if r < rank]
    if not lower:
        return None
    values: dict[str, Any] = {"status": status}
    if status in FINAL_CALL_STATUSES:
        values["ended_at"] = bindparam("now")
        values["duration_s"] = func.coalesce(bindparam("duration"), _interaction.c.duration_s)
    elif status == "in-progress":
        values["answered_at"] = bindparam("now")
    return (
        update(_interaction)
        .where(
            _interaction.c.id == bindparam("interaction"),
            or_(*(_interaction.c.status == s for s in lower)),
        )
        .values(**values)
    )


_STATUS_UPDATES = {status: _status_update(status) for status in CALL_STATUS_RANK}


def caller_number(protector: DataProtector, caller: Caller) -> str | None:
    """Decrypt a caller's number (for roles allowed to see it; callers must audit the view)."""
    if caller.number_ciphertext is None or caller.number_key_id is None:
        return None
    sealed = Sealed(caller.number_key_id, caller.number_ciphertext)
    return protector.open_text(sealed, associated=caller.number_hash.encode())


@dataclass
class CallState:
    """What a webhook needs to know about one call (interaction + its inquiry)."""

    interaction_id: int
    inquiry_id: int
    provider_sid: str
    status: str
    direction: str
    ivr_path: list[dict[str, Any]] = field(default_factory=list)
    recording_sid: str | None = None
    recording_status: str | None = None
    recording_url: str | None = None
    recording_duration_s: int | None = None
    language: str | None = None
    kind: str = "other"
    inquiry_status: str = "new"
    callback_requested: bool = False
    #: The caller withheld their number: nobody can call them back, nothing links their calls.
    withheld: bool = False


class CallLog:
    """The write side of the call log over one Core connection (one webhook's transaction)."""

    def __init__(self, conn: Session, protector: DataProtector):
        self.conn = conn
        self.protector = protector
        self._connection: Connection | None = None

    def run(self, statement: Executable, params: dict[str, Any] | None = None) -> Result[Any]:
        """A Core statement on the session's connection, in the session's transaction (the
        session commits it), without the ORM's per-statement layer. The connection is asked of
        the session again once its transaction ended (a commit closes it)."""
        return self.connection().execute(statement, params)

    def connection(self) -> Connection:
        """The session's connection for its current transaction."""
        connection = self._connection
        if connection is None or connection.closed or not connection.in_transaction():
            connection = self._connection = self.conn.connection()
        return connection

    # -- reads ---------------------------------------------------------------------------
    def find(self, call_sid: str) -> CallState | None:
        row = self.run(_FIND_CALL, {"sid": call_sid}).first()
        if row is None:
            return None
        (
            interaction_id,
            inquiry_id,
            provider_sid,
            status,
            direction,
            ivr_path,
            recording_sid,
            recording_status,
            recording_url,
            recording_duration_s,
            language,
            kind,
            inquiry_status,
            callback_requested,
            withheld,
        ) = row
        return CallState(
            interaction_id=interaction_id,
            inquiry_id=inquiry_id,
            provider_sid=provider_sid,
            status=status,
            direction=direction,
            ivr_path=list(ivr_path or []),
            recording_sid=recording_sid,
            recording_status=recording_status,
            recording_url=recording_url,
            recording_duration_s=recording_duration_s,
            language=language,
            kind=kind,
            inquiry_status=inquiry_status,
            callback_requested=bool(callback_requested),
            withheld=bool(withheld),
        )

    # -- callers, cases, calls -------------------------------------------------------------
    def insert_ignoring_duplicates(self, table: Table, values: dict[str, Any], unique: str) -> Any:
        """INSERT unless a row with the same ``unique`` value exists; the new id, else None."""
        return insert_ignoring_duplicates(self.connection(), table, values, unique)

    def find_or_create_caller(self, raw_number: str, call_sid: str) -> tuple[int, bool]:
        """The pseudonymous caller's id for a number (keyed hash; the number kept encrypted),
        and whether this call created it. The INSERT comes first: a new caller costs one
        statement; a known one (the INSERT ignored) one more to find the row. Without a usable
        number: the call's own caller (see ``withheld_caller``)."""
        number = caller_address(raw_number)
        if number is None:
            return self.withheld_caller(call_sid)
        caller_id, created, _hash = self.caller_by_identity(number)
        return caller_id, created

    def caller_by_identity(self, identity: str) -> tuple[int, bool, str]:
        """The caller whose keyed hash is that of ``identity`` (an E.164 number, for calls, SMS
        and WhatsApp alike; ``telegram:<id>``), created with the identity sealed if new: (id,
        created now, hash)."""
        number_hash = self.protector.lookup_hash(identity)
        sealed = self.protector.seal_text(identity, associated=number_hash.encode())
        values = {
            "number_hash": number_hash,
            "number_ciphertext": sealed.ciphertext,
            "number_key_id": sealed.key_id,
            "created_at": utcnow(),
        }
        for _attempt in range(3):
            new_id = self.insert_ignoring_duplicates(_caller, values, "number_hash")
            if new_id is not None:
                return new_id, True, number_hash
            found = self.run(_FIND_CALLER, {"hash": number_hash}).first()
            if found is not None and not found.erased:
                return found.id, False, number_hash
            if found is not None:  # erased by retention, hash kept: never linked again
                self.run(
                    _UNLINK_ERASED,
                    {"caller": found.id, "hash": number_hash, "erased": erased_hash(found.id)},
                )
            # else retention erased it between the INSERT and the SELECT: insert again
        raise RuntimeError("no caller row after three attempts")  # pragma: no cover

    def withheld_caller(self, call_sid: str) -> tuple[int, bool]:
        """The caller of one call without a usable number: keyed on the CallSid (a retried
        webhook finds it again), no number kept, marked ``withheld``; (id, created now)."""
        number_hash = self.protector.lookup_hash(call_sid, purpose=WITHHELD_PURPOSE)
        values = {"number_hash": number_hash, "withheld": True, "created_at": utcnow()}
        new_id = self.insert_ignoring_duplicates(_caller, values, "number_hash")
        if new_id is not None:
            return new_id, True
        found = self.run(_FIND_CALLER_ID, {"hash": number_hash}).scalar()
        if found is None:  # pragma: no cover - the INSERT conflicted with this very row
            raise RuntimeError("caller vanished after insert")
        return found, False

    def open_inquiry_for(self, caller_id: int, *, new_caller: bool = False) -> tuple[int, bool]:
        """The caller's open case, or a new one: a repeat caller's call joins their open case.
        A caller created by this call has no case yet: no need to look."""
        if not new_caller:
            inquiry_id = self.run(_OPEN_INQUIRY, {"caller": caller_id}).scalar()
            if inquiry_id is not None:
                return inquiry_id, False
        now = utcnow()
        values = {
            "caller_id": caller_id,
            "status": "new",
            "kind": "other",
            "priority": 0,
            "callback_requested": False,
            "created_at": now,
            "updated_at": now,
        }
        return self.run(_NEW_INQUIRY, values).scalar(), True

    def find_or_open(
        self,
        call_sid: str,
        from_number: str,
        *,
        direction: str = "inbound",
        channel: str = "voice",
        status: str = "ringing",
    ) -> tuple[CallState, bool]:
        """The call's state, its interaction (and caller, case) created on first sight."""
        existing = self.find(call_sid)
        if existing is not None:
            return existing, False
        caller_id, new_caller = self.find_or_create_caller(from_number, call_sid)
        inquiry_id, new_case = self.open_inquiry_for(caller_id, new_caller=new_caller)
        now = utcnow()
        values = {
            "inquiry_id": inquiry_id,
            "provider_sid": call_sid,
            "channel": channel,
            "direction": "inbound" if direction in ("", "inbound") else "outbound",
            "status": status if status in CALL_STATUS_RANK else "ringing",
            "started_at": now,
            "answered_at": now if status == "in-progress" else None,
            "ivr_path": [],
        }
        interaction_id = self.insert_ignoring_duplicates(_interaction, values, "provider_sid")
        created = interaction_id is not None
        if created and new_case:  # everything was written just now: nothing to read back
            state = CallState(
                interaction_id=interaction_id,
                inquiry_id=inquiry_id,
                provider_sid=call_sid,
                status=values["status"],
                direction=values["direction"],
                withheld=caller_address(from_number) is None,
            )
            return state, True
        if created:  # a repeat call: the case is being worked on
            self.run(_REOPEN_INQUIRY, {"inquiry": inquiry_id, "now": now})
        state = self.find(call_sid)
        if state is None:  # pragma: no cover - the row was just written or found
            raise RuntimeError("interaction vanished after insert")
        return state, created

    # -- what happens on a call -----------------------------------------------------------
    def add_event(
        self,
        state: CallState | None,
        event: str,
        data: dict[str, Any] | None = None,
        *,
        dedupe_key: str | None = None,
        time: dt.datetime | None = None,
    ) -> bool:
        """Append an event; with ``dedupe_key`` a second write of it is a no-op (returns False)."""
        values = {
            "interaction_id": state.interaction_id if state is not None else None,
            "event": event,
            "data": data or {},
            "dedupe_key": dedupe_key,
            "time": time or utcnow(),
        }
        return self.insert_ignoring_duplicates(_event, values, "dedupe_key") is not None

    def record_ivr_step(
        self, state: CallState, node: str, answer: str | None, *, dedupe_key: str, **extra: Any
    ) -> bool:
        """Append one IVR step to the call's path and to the event log, once per dedupe key."""
        at = utcnow()
        step: dict[str, Any] = {"node": node, "answer": answer, "at": at.isoformat()}
        step.update(extra)
        if not self.add_event(state, "IVR_STEP", step, dedupe_key=dedupe_key, time=at):
            return False
        state.ivr_path = [*state.ivr_path, step]
        self.run(_SET_PATH, {"interaction": state.interaction_id, "path": state.ivr_path})
        return True

    def set_language(self, state: CallState, language: str) -> None:
        self.run(
            _SET_LANGUAGE, {"inquiry": state.inquiry_id, "new_language": language, "now": utcnow()}
        )
        state.language = language

    def set_kind(self, state: CallState, kind: str, priority: int) -> None:
        self.run(
            _SET_KIND,
            {
                "inquiry": state.inquiry_id,
                "new_kind": kind,
                "new_priority": priority,
                "now": utcnow(),
            },
        )
        state.kind = kind

    def request_callback(self, state: CallState, reason: str) -> bool:
        """Note on the case that the caller wants to be called back (idempotent); the case is
        opened. A withheld caller cannot be called back: the case is only opened (False)."""
        now = utcnow()
        params = {"inquiry": state.inquiry_id, "now": now}
        if not state.callback_requested and not state.withheld:
            opens = state.inquiry_status == "new"
            self.run(_REQUEST_CALLBACK_AND_OPEN if opens else _REQUEST_CALLBACK, params)
            state.callback_requested = True
            if opens:
                state.inquiry_status = "open"
            self.add_event(
                state,
                "CALLBACK_REQUESTED",
                {"reason": reason},
                dedupe_key=f"callback:{state.provider_sid}",
            )
        if state.inquiry_status == "new":
            self.run(_REOPEN_INQUIRY, params)
            state.inquiry_status = "open"
        return state.callback_requested

    def apply_call_status(
        self, state: CallState, status: str, *, duration_s: int | None = None
    ) -> bool:
        """Move a call's status forward; a late or duplicate callback changes nothing.

        One conditional UPDATE (only from a lower-ranked status): atomic across processes.
        """
        statement = _STATUS_UPDATES.get(status)
        if statement is None:  # unknown, or nothing ranks below it
            return False
        params = {"interaction": state.interaction_id, "now": utcnow(), "duration": duration_s}
        changed = self.run(statement, params).rowcount > 0
        if changed:
            state.status = status
        return changed

    def store_recording(
        self,
        state: CallState,
        recording_sid: str,
        *,
        url: str | None,
        duration_s: int | None,
        status: str | None,
    ) -> None:
        """Keep a recording's metadata on the interaction (one message per call; status only
        moves forward). A recording that held nothing gives its place to the caller's next try.
        Nothing is written when the row already says all of it (the recording status callback
        after the <Record> action, as a rule)."""
        if not recording_sid:
            return
        if state.recording_sid not in (None, recording_sid):
            if state.recording_status not in NOTHING_RECORDED:
                return  # the call's message is kept; a later one is the recording table's
            new_status = status or "completed"
            changed = self.run(
                _REPLACE_RECORDING,
                {
                    "interaction": state.interaction_id,
                    "sid": recording_sid,
                    "url": url or None,
                    "duration": duration_s,
                    "new_status": new_status,
                },
            ).rowcount
            if changed:
                state.recording_sid, state.recording_status = recording_sid, new_status
                state.recording_url, state.recording_duration_s = url or None, duration_s
            return
        new_status = state.recording_status
        current = RECORDING_STATUS_RANK.get(state.recording_status or "", -1)
        if status is not None and RECORDING_STATUS_RANK.get(status, -1) > current:
            new_status = status
        elif status is None and state.recording_status is None:
            new_status = "completed"
        new_url = url or state.recording_url
        new_duration = duration_s if duration_s is not None else state.recording_duration_s
        stored = (
            state.recording_sid,
            state.recording_status,
            state.recording_url,
            state.recording_duration_s,
        )
        if stored == (recording_sid, new_status, new_url, new_duration):
            return
        self.run(
            _STORE_RECORDING,
            {
                "interaction": state.interaction_id,
                "sid": recording_sid,
                "url": url or None,
                "duration": duration_s,
                "new_status": new_status,
            },
        )
        state.recording_sid = recording_sid
        state.recording_status = new_status
        state.recording_url, state.recording_duration_s = new_url, new_duration
