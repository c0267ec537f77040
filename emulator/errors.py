"""Twilio error codes the emulator reports (debugger log and REST error bodies)."""

from __future__ import annotations

MORE_INFO = "https://www.twilio.com/docs/errors/{code}"

GENERIC_ERROR_TEXT = "We are sorry, an application error has occurred. Goodbye."


class CarrierError(Exception):
    """A failure while fetching or executing TwiML, with its Twilio error code."""

    def __init__(self, code: int, message: str, url: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.url = url


class ApiError(Exception):
    """A REST API error rendered as Twilio's JSON error body."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict:
        return {
            "code": self.code,
            "message": self.message,
            "more_info": MORE_INFO.format(code=self.code),
            "status": self.status,
        }
