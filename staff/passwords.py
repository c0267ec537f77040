"""Staff passwords: argon2id hashes and the rules a new password must meet.

The rules follow NIST SP 800-63B and OWASP ASVS 5.0 §6.2: a minimum length, a generous maximum,
no composition rules, and a refusal of passwords found in a list of common ones (and of the
username itself). The hash is argon2id with argon2-cffi's defaults (RFC 9106 "low memory"
profile); a hash made with older parameters is upgraded at the next successful login.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 12
MAX_LENGTH = 128
_COMMON = Path(__file__).with_name("common_passwords.txt")
_hasher = PasswordHasher()  # argon2id


class WeakPassword(ValueError):
    """A new password that breaks a rule; the message says which (never the password), and
    ``rule`` names it as a code for translated messages: ``short``, ``long``, ``common``,
    ``username``, ``unchanged``."""

    def __init__(self, message: str, rule: str):
        super().__init__(message)
        self.rule = rule


@cache
def common_passwords() -> frozenset[str]:
    lines = _COMMON.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().lower() for line in lines if line.strip())


def check_policy(password: str, username: str = "") -> None:
    """Raise ``WeakPassword`` unless ``password`` may be set."""
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"a password needs at least {MIN_LENGTH} characters", "short")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"a password has at most {MAX_LENGTH} characters", "long")
    folded = password.lower()
    if folded in common_passwords() or len(set(folded)) < 4:
        raise WeakPassword("that password is too common or too simple; choose another", "common")
    if username and username.lower() in folded:
        raise WeakPassword("a password must not contain the username", "username")


def hash_password(password: str) -> str:
    """An argon2id hash (PHC string) of ``password``."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True if ``password`` matches; false for a mismatch or a hash that does not parse."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


@cache
def _dummy_hash() -> str:
    return _hasher.hash("not a password of anyone: equalises the time of unknown users")


def spend_verify_time() -> None:
    """Do the work of one verification, for a username that does not exist (no timing oracle)."""
    verify_password(_dummy_hash(), "wrong")
