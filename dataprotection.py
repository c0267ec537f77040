"""Pseudonymisation and encryption of personal data (phone numbers, journal entries).

A phone number is stored as a keyed HMAC (for lookups; the key lives in settings, never in the
database) plus AES-256-GCM ciphertext sealed with the active data key, whose id is stored
beside it so keys can be rotated: new data uses the first key, old data still opens.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_NONCE_BYTES = 12
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


class DecryptionError(ValueError):
    """Ciphertext that does not open with the key it names."""


def normalise_number(raw: str) -> str:
    """Return the carrier's address in a canonical form for hashing.

    E.164 numbers keep their ``+``; ``whatsapp:+…`` and ``client:name`` addresses keep their
    prefix so a WhatsApp sender and a caller are different identities unless linked on purpose.
    Anything else (withheld numbers, "anonymous", garbage) is kept as given, trimmed.
    """
    value = (raw or "").strip()
    digits = re.sub(r"[\s\-().]", "", value)
    if _E164.match(digits):
        return digits
    return value[:64]


@dataclass(frozen=True)
class Sealed:
    key_id: str
    ciphertext: bytes


class DataProtector:
    """Keyed HMAC for lookups and AES-GCM sealing with key ids."""

    def __init__(self, hmac_key: bytes, data_keys: dict[str, bytes]):
        if not data_keys:
            raise ValueError("at least one data key is needed")
        self._hmac_key = hmac_key
        self._keys = dict(data_keys)
        self._active = next(iter(self._keys))

    @property
    def active_key_id(self) -> str:
        return self._active

    def lookup_hash(self, value: str, purpose: str = "phone") -> str:
        """A stable, keyed, non-reversible id for ``value`` (hex, 64 chars)."""
        message = purpose.encode() + b"\x00" + value.encode("utf-8")
        return hmac.new(self._hmac_key, message, hashlib.sha256).hexdigest()

    def seal(self, plaintext: bytes, associated: bytes = b"") -> Sealed:
        nonce = os.urandom(_NONCE_BYTES)
        ciphertext = AESGCM(self._keys[self._active]).encrypt(nonce, plaintext, associated)
        return Sealed(self._active, nonce + ciphertext)

    def open(self, sealed: Sealed, associated: bytes = b"") -> bytes:
        key = self._keys.get(sealed.key_id)
        if key is None:
            raise DecryptionError(f"no data key with id {sealed.key_id!r}")
        blob = sealed.ciphertext
        try:
            return AESGCM(key).decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], associated)
        except Exception as exc:  # InvalidTag and short input alike
            raise DecryptionError("ciphertext does not open") from exc

    def seal_text(self, text: str, associated: bytes = b"") -> Sealed:
        return self.seal(text.encode("utf-8"), associated)

    def open_text(self, sealed: Sealed, associated: bytes = b"") -> str:
        return self.open(sealed, associated).decode("utf-8")
