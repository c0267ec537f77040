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
#: What an erased caller's ``number_hash`` starts with: never the start of a lookup hash (hex).
ERASED_PREFIX = "erased:"


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


#: What Twilio puts in ``From`` for a caller who withheld their number, from before it passed the
#: words through (2022): ANONYMOUS, RESTRICTED, UNAVAILABLE and BLOCKED spelt on a phone keypad.
#: They look like E.164 numbers and are shared by every such caller.
WITHHELD_PLACEHOLDERS = frozenset({"+266696687", "+7378742833", "+86282452253", "+2562533"})
_CLIENT = re.compile(r"^client:[A-Za-z0-9_.@-]{1,64}$")
_WHATSAPP = re.compile(r"^whatsapp:\+[1-9]\d{6,14}$")


def caller_address(raw: str | None) -> str | None:
    """The caller's address in canonical form when it names one person (an E.164 number that is
    not a withheld placeholder, a ``whatsapp:+…`` sender, a browser ``client:name``), else None:
    empty, ``anonymous``/``restricted``/``unknown``/``private`` in any case, a placeholder, any
    other text. None means "withheld": no two calls may be linked by it and it cannot be
    called back."""
    number = normalise_number(raw or "")
    if _E164.match(number):
        return None if number in WITHHELD_PLACEHOLDERS else number
    if _WHATSAPP.match(number) or _CLIENT.match(number):
        return number
    return None


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
        self._ciphers = {key_id: AESGCM(key) for key_id, key in self._keys.items()}

    @property
    def active_key_id(self) -> str:
        return self._active

    def lookup_hash(self, value: str, purpose: str = "phone") -> str:
        """A stable, keyed, non-reversible id for ``value`` (hex, 64 chars)."""
        message = purpose.encode() + b"\x00" + value.encode("utf-8")
        return hmac.new(self._hmac_key, message, hashlib.sha256).hexdigest()

    def seal(self, plaintext: bytes, associated: bytes = b"") -> Sealed:
        nonce = os.urandom(_NONCE_BYTES)
        ciphertext = self._ciphers[self._active].encrypt(nonce, plaintext, associated)
        return Sealed(self._active, nonce + ciphertext)

    def open(self, sealed: Sealed, associated: bytes = b"") -> bytes:
        cipher = self._ciphers.get(sealed.key_id)
        if cipher is None:
            raise DecryptionError(f"no data key with id {sealed.key_id!r}")
        blob = sealed.ciphertext
        try:
            return cipher.decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], associated)
        except Exception as exc:  # InvalidTag and short input alike
            raise DecryptionError("ciphertext does not open") from exc

    def seal_text(self, text: str, associated: bytes = b"") -> Sealed:
        return self.seal(text.encode("utf-8"), associated)

    def open_text(self, sealed: Sealed, associated: bytes = b"") -> str:
        return self.open(sealed, associated).decode("utf-8")


def erased_hash(row_id: int) -> str:
    """The lookup value of an erased row: its own id, unrelated to the number it replaces (so
    a dump and the HMAC key together cannot tell that a given number ever called); unique
    like the hashes, and never equal to one."""
    return f"{ERASED_PREFIX}{row_id}"


# Country calling codes by their first digit: 1 and 7 are one digit; otherwise two digits for the
# prefixes listed, three for the rest (ITU-T E.164 assignments).
_TWO_DIGIT_CODES = frozenset(
    re.findall(
        r"\d\d",
        "20 27 30 31 32 33 34 36 39 40 41 43 44 45 46 47 48 49 51 52 53 54 55 56 57 58 "
        "60 61 62 63 64 65 66 81 82 84 86 90 91 92 93 94 95 98",
    )
)


def country_code(number: str) -> str:
    """The country calling code of an E.164 number (``+380…`` → ``380``)."""
    digits = number.lstrip("+")
    if digits[:1] in ("1", "7"):
        return digits[:1]
    return digits[:2] if digits[:2] in _TWO_DIGIT_CODES else digits[:3]


def mask_address(address: str | None) -> str:
    """What staff may see of a caller's address without the right to the number: an E.164
    number as ``+7 ••• ••• 45 67`` (country code and last four digits), a browser client as
    ``browser``, anything else (withheld, anonymous) as ``withheld``."""
    if address and _E164.match(address):
        last = address[-4:]
        return f"+{country_code(address)} ••• ••• {last[:2]} {last[2:]}"
    if address and address.startswith("client:"):
        return "browser"
    return "withheld"
