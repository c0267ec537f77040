"""A local stand-in for Twilio: REST API, signed webhooks, a TwiML interpreter, and phones.

It imports no app package and talks to any app only over HTTP, as Twilio does. See README.md.
"""

from .phones import Phone, PhoneCall
from .server import Emulator
from .state import Heard

__all__ = ["Emulator", "Heard", "Phone", "PhoneCall"]
