"""Half-finished logins, kept on the server (Redis), never in the browser's signed cookie.

After the password is accepted the browser gets a random token (256 bits, in its own HttpOnly
cookie); Redis keeps, under the token's SHA-256, what the login has reached: the account, the
stage it is at (``totp``, ``password``, ``enrol``), whether the code was given, the page to go to
afterwards, and a stamp of the account's password (``password_changed_at``) so a reset or a
password change elsewhere voids it. A pending login lives ``PENDING_S`` from its last step.
Holding ``SECRET_KEY`` gives no way into it: there is nothing to forge, only a token to guess.

A stage moves on only from the stage it is at (a Lua compare-and-set), and the last stage ends
the pending login by deleting it: of two parallel requests at most one finishes a login.

The TOTP secret of an enrolment is made here, at the first view of the enrolment page, sealed
(AES-GCM, bound to this pending login and the account) and stored in the pending login only;
``reveal_new_secret`` hands it out once. The account gets it when the owner confirms a code.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

import redis

from dataprotection import DataProtector, Sealed
from staff.models import StaffUser

KEY_PREFIX = "staff:pending:"
#: Seconds to finish the next step of a login (each step gives this much again).
PENDING_S = 300
STAGES = ("totp", "password", "enrol")

# KEYS: the record. ARGV: the stage it must be at, the TTL, then field/value pairs to set.
_ADVANCE = """
if redis.call('HGET', KEYS[1], 'stage') ~= ARGV[1] then return 0 end
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1
"""
# KEYS: the record. ARGV: the stage it must be at. Deletes it: the login is complete.
_FINISH = """
if redis.call('HGET', KEYS[1], 'stage') ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
"""
# KEYS: the record. ARGV: the stage it must be at, the sealed secret. Set only once.
_KEEP_SEALED_KEY = """
if redis.call('HGET', KEYS[1], 'stage') ~= ARGV[1] then return 0 end
return redis.call('HSETNX', KEYS[1], 'secret', ARGV[2])
"""


def password_stamp(user: StaffUser) -> str:
    """What voids a pending login when it changes: the account's last password change."""
    changed = user.password_changed_at
    return "" if changed is None else changed.astimezone(dt.UTC).isoformat()


@dataclass(frozen=True)
class Pending:
    """A pending login as read from Redis."""

    key: str
    user_id: int
    stage: str
    next_url: str
    stamp: str
    code_given: bool
    #: The limiter's keys charged by the password step (to clear the pair at the end).
    attempt_keys: tuple[str, ...]
    has_secret: bool


class PendingLogins:
    def __init__(self, client: redis.Redis, protector: DataProtector):
        self._redis = client
        self._protector = protector
        self._advance = client.register_script(_ADVANCE)
        self._finish = client.register_script(_FINISH)
        self._keep_secret = client.register_script(_KEEP_SEALED_KEY)

    @staticmethod
    def _key(token: str) -> str:
        return KEY_PREFIX + hashlib.sha256(token.encode()).hexdigest()

    def begin(
        self,
        user: StaffUser,
        stage: str,
        *,
        next_url: str | None,
        attempt_keys: tuple[str, ...],
        replaces: str | None = None,
    ) -> str:
        """Start a pending login at ``stage``; the token for the browser's cookie.
        ``replaces``: the token the browser presented, if any (that pending login ends)."""
        if stage not in STAGES:
            raise ValueError(f"unknown login stage {stage!r}")
        if replaces:
            self.discard(replaces)
        token = secrets.token_urlsafe(32)
        key = self._key(token)
        fields = {
            "uid": str(user.id),
            "stage": stage,
            "next": next_url or "",
            "stamp": password_stamp(user),
            "code": "",
            "attempt": "\n".join(attempt_keys),
        }
        with self._redis.pipeline() as pipe:
            pipe.hset(key, mapping=fields)
            pipe.expire(key, PENDING_S)
            pipe.execute()
        return token

    def load(self, token: str | None) -> Pending | None:
        if not token or len(token) > 100:
            return None
        key = self._key(token)
        raw = self._redis.hgetall(key)
        if not raw:
            return None
        data = {k.decode(): v.decode() for k, v in raw.items()}
        if data.get("stage") not in STAGES or not data.get("uid", "").isdigit():
            return None
        return Pending(
            key=key,
            user_id=int(data["uid"]),
            stage=data["stage"],
            next_url=data.get("next", ""),
            stamp=data.get("stamp", ""),
            code_given=data.get("code") == "1",
            attempt_keys=tuple(k for k in data.get("attempt", "").split("\n") if k),
            has_secret=bool(data.get("secret")),
        )

    def advance(
        self,
        pending: Pending,
        stage: str,
        *,
        code_given: bool | None = None,
        stamp: str | None = None,
    ) -> bool:
        """Move ``pending`` from the stage it was read at to ``stage``, if no other request
        moved it first; True if this request did."""
        if stage not in STAGES:
            raise ValueError(f"unknown login stage {stage!r}")
        args: list[str | int] = [pending.stage, PENDING_S, "stage", stage]
        if code_given is not None:
            args += ["code", "1" if code_given else ""]
        if stamp is not None:
            args += ["stamp", stamp]
        return bool(int(self._advance(keys=[pending.key], args=args)))

    def finish(self, pending: Pending) -> bool:
        """End ``pending`` (the login is complete) if it is still at the stage it was read at;
        True for the one request that did."""
        return bool(int(self._finish(keys=[pending.key], args=[pending.stage])))

    def discard(self, token: str | None) -> None:
        if token and len(token) <= 100:
            self._redis.delete(self._key(token))

    def _associated(self, pending: Pending) -> bytes:
        return f"{pending.key}:staff_user:{pending.user_id}:totp".encode()

    def reveal_new_secret(self, pending: Pending, secret: str) -> bool:
        """Keep ``secret`` (sealed) as this enrolment's, if it has none yet and is still at the
        stage it was read at: True if it was stored, and may be shown now; False otherwise (a
        secret is made once per pending login and never shown twice)."""
        sealed = self._protector.seal_text(secret, associated=self._associated(pending))
        value = sealed.key_id + ":" + base64.b64encode(sealed.ciphertext).decode()
        return bool(int(self._keep_secret(keys=[pending.key], args=[pending.stage, value])))

    def enrolment_secret(self, pending: Pending) -> str | None:
        """The secret this enrolment made (to check a code against), if any."""
        raw = self._redis.hget(pending.key, "secret")
        if not raw:
            return None
        key_id, _, encoded = raw.decode().partition(":")
        sealed = Sealed(key_id, base64.b64decode(encoded))
        return self._protector.open_text(sealed, associated=self._associated(pending))
