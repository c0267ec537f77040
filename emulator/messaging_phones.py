"""Phones that write: an SMS or WhatsApp user texting a number of the account."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .messages import WHATSAPP, bare, inbound_message

if TYPE_CHECKING:
    from .carrier import Carrier


class MessagingPhone:
    """A person's phone number on one channel (``sms`` or ``whatsapp``)."""

    channel = "sms"

    def __init__(self, carrier: Carrier, number: str, profile_name: str | None = None) -> None:
        self.carrier = carrier
        self.number = bare(number)
        self.profile_name = profile_name
        self.default_to: str | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.number}>"

    @property
    def address(self) -> str:
        """How Twilio names this sender: ``+7…``, or ``whatsapp:+7…``."""
        return self.number

    def _target(self, to: str | None) -> str:
        if to is None:
            to = self.default_to
        if to is None:
            with self.carrier.lock:
                numbers = list(self.carrier.store.numbers)
            if len(numbers) != 1:
                raise ValueError("say which number to write to (to=…)")
            to = numbers[0]
        return bare(to)

    def send(
        self,
        text: str = "",
        media: list[tuple[bytes, str]] | None = None,
        *,
        to: str | None = None,
        duplicate: bool = False,
    ) -> str:
        """Write to a number of the account (the only one, unless ``to`` is given); the app's
        SMS URL gets the signed webhook (twice with ``duplicate``). The MessageSid."""
        target = self._target(to)
        sid = inbound_message(
            self.carrier,
            self.address,
            WHATSAPP + target if self.channel == "whatsapp" else target,
            text,
            media,
            profile_name=self.profile_name if self.channel == "whatsapp" else None,
            duplicate=duplicate,
        )
        self.carrier.clock.settle()
        return sid

    def inbox(self) -> list[dict[str, Any]]:
        """Messages delivered to this phone: ``{"sid", "from", "to", "body", "media_urls"}``."""
        device = self.carrier.device(self.address)
        with self.carrier.lock:
            return [dict(m) for m in device.messages]

    def received(self) -> list[str]:
        """The texts delivered to this phone, oldest first."""
        return [m["body"] for m in self.inbox()]

    def wait_for_message(self, max_seconds: float = 60.0) -> str:
        """Let (virtual) time pass until one more message is delivered; its text."""
        seen = len(self.inbox())
        clock = self.carrier.clock
        clock.settle()
        clock.advance_until(lambda: len(self.inbox()) > seen, max_seconds)
        found = self.inbox()
        if len(found) <= seen:
            raise AssertionError(f"no message reached {self.address} within {max_seconds}s")
        return found[seen]["body"]


class SmsPhone(MessagingPhone):
    channel = "sms"


class WhatsAppPhone(MessagingPhone):
    channel = "whatsapp"

    @property
    def address(self) -> str:
        return WHATSAPP + self.number
