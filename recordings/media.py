"""Download a recording's media from the carrier with the account's credentials."""

from __future__ import annotations

import requests

from settings import Settings

TIMEOUT_S = 30


class RecordingUnavailable(RuntimeError):
    """The carrier did not hand over the media (gone, not yet ready, or refused)."""


def media_url(settings: Settings, recording_sid: str, extension: str = "wav") -> str:
    """Twilio's media URL for a recording (``…/Recordings/{sid}.wav``) on the configured API."""
    return (
        f"{settings.twilio_api_base_url}/2010-04-01/Accounts/{settings.twilio_account_sid}"
        f"/Recordings/{recording_sid}.{extension}"
    )


def fetch_recording(settings: Settings, recording_sid: str, extension: str = "wav") -> bytes:
    """The recording's audio bytes. HTTP basic auth: "Enforce HTTP auth on media URLs" is on."""
    response = requests.get(
        media_url(settings, recording_sid, extension),
        auth=(settings.twilio_account_sid, settings.twilio_auth_token),
        timeout=TIMEOUT_S,
    )
    if response.status_code != 200:
        raise RecordingUnavailable(f"carrier answered {response.status_code} for the media")
    return response.content
