"""Download a recording's media from the carrier with the account's credentials.

The body is read in chunks and counted: one larger than ``RECORDING_MAX_BYTES`` (announced in
``Content-Length`` or not) is refused as soon as it is known to be, and nothing of it is kept.
Whatever answers at the carrier's address (the carrier, a proxy, someone who took over the
name) cannot fill the worker's memory or the store.
"""

from __future__ import annotations

import requests

from settings import Settings

TIMEOUT_S = 30
#: Bytes read from the socket at a time.
CHUNK_BYTES = 64 * 1024


class RecordingUnavailable(RuntimeError):
    """The carrier did not hand over the media (gone, not yet ready, or refused)."""


class RecordingTooLarge(RecordingUnavailable):
    """The media is larger than ``RECORDING_MAX_BYTES``: refused, nothing kept. Trying again
    gets the same answer, so the pipeline does not retry it by itself."""


def media_url(settings: Settings, recording_sid: str, extension: str = "wav") -> str:
    """Twilio's media URL for a recording (``…/Recordings/{sid}.wav``) on the configured API."""
    return (
        f"{settings.twilio_api_base_url}/2010-04-01/Accounts/{settings.twilio_account_sid}"
        f"/Recordings/{recording_sid}.{extension}"
    )


def fetch_recording(settings: Settings, recording_sid: str, extension: str = "wav") -> bytes:
    """The recording's audio bytes. HTTP basic auth: "Enforce HTTP auth on media URLs" is on.

    Raises ``RecordingTooLarge`` past ``settings.recording_max_bytes``, ``RecordingUnavailable``
    for any answer but 200, ``requests.RequestException`` when the transfer fails."""
    limit = settings.recording_max_bytes
    with requests.get(
        media_url(settings, recording_sid, extension),
        auth=(settings.twilio_account_sid, settings.twilio_auth_token),
        timeout=TIMEOUT_S,
        stream=True,
    ) as response:
        if response.status_code != 200:
            raise RecordingUnavailable(f"carrier answered {response.status_code} for the media")
        announced = response.headers.get("Content-Length", "").strip()
        digits = announced.isascii() and announced.isdigit()
        if digits and (len(announced) > 18 or int(announced) > limit):
            raise RecordingTooLarge("the media is larger than RECORDING_MAX_BYTES (announced)")
        chunks: list[bytes] = []
        received = 0
        for chunk in response.iter_content(CHUNK_BYTES):
            received += len(chunk)
            if received > limit:
                raise RecordingTooLarge("the media is larger than RECORDING_MAX_BYTES")
            chunks.append(chunk)
        return b"".join(chunks)
