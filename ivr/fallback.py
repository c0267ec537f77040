"""The carrier's fallback URL and the app's own last resort: works with the database and Redis down.

Everything here touches only settings and the local disk: a short apology in Russian and
Ukrainian, a <Record> so the caller can still leave a message, and a sealed journal entry of
every request, replayed into the database when it is reachable again (``ivr.journal.replay``).
"""

from __future__ import annotations

import logging

from flask import request
from twilio.twiml.voice_response import VoiceResponse

from ivr import journal
from services import services
from webhooks import carrier_signed

log = logging.getLogger(__name__)

# Fixed texts: the fallback must not depend on anything that can be broken (catalogs included).
APOLOGY = (
    (
        "ru-RU",
        "Polly.Tatyana",
        "Извините, у нас технические неполадки. "
        "Пожалуйста, оставьте сообщение после сигнала, и мы вам перезвоним.",
    ),
    (
        "uk-UA",
        "Google.uk-UA-Standard-A",
        "Вибачте, у нас технічні негаразди. "
        "Будь ласка, залиште повідомлення після сигналу, і ми вам передзвонимо.",
    ),
)
THANKS = (
    ("ru-RU", "Polly.Tatyana", "Спасибо, ваше сообщение записано. До свидания."),
    ("uk-UA", "Google.uk-UA-Standard-A", "Дякуємо, ваше повідомлення записано. До побачення."),
)
GOODBYE = (
    ("ru-RU", "Polly.Tatyana", "Мы не услышали сообщения. Позвоните нам позже. До свидания."),
    (
        "uk-UA",
        "Google.uk-UA-Standard-A",
        "Ми не почули повідомлення. Зателефонуйте пізніше. До побачення.",
    ),
)
STEPS = ("entered", "recorded", "recording", "error")  # journal.STEPS: what a replay accepts
JOURNALLED_PARAMS = (
    "CallSid", "AccountSid", "From", "To", "Direction", "CallStatus", "ErrorCode", "ErrorUrl",
    "RecordingSid", "RecordingUrl", "RecordingDuration", "RecordingStatus", "Digits",
)  # fmt: skip


def _say_all(response: VoiceResponse, texts: tuple[tuple[str, str, str], ...]) -> None:
    for language, voice, text in texts:
        response.say(text, language=language, voice=voice)


def message_box_twiml(base_url: str, max_seconds: int) -> VoiceResponse:
    """Apology in both languages and a <Record> whose callbacks come back to the fallback URL."""
    response = VoiceResponse()
    _say_all(response, APOLOGY)
    response.record(
        action=f"{base_url}/voice/fallback?step=recorded",
        method="POST",
        max_length=max_seconds,
        timeout=8,
        play_beep=True,
        recording_status_callback=f"{base_url}/voice/fallback?step=recording",
        recording_status_callback_method="POST",
    )
    _say_all(response, GOODBYE)  # reached only when nothing was recorded
    response.hangup()
    return response


def thanks_twiml() -> VoiceResponse:
    response = VoiceResponse()
    _say_all(response, THANKS)
    response.hangup()
    return response


def journal_request(step: str) -> None:
    """Seal what the carrier sent into the local journal (never raises). Only a request whose
    carrier signature was verified is kept: nothing else may become a caller or a case."""
    if not carrier_signed():
        log.error("refused to journal a request whose signature was not verified")
        return
    settings = services().settings
    params = {name: request.form.get(name, "")[: journal.MAX_VALUE] for name in JOURNALLED_PARAMS}
    try:
        journal.append(
            settings.journal_path, services().protector, step, params, settings.journal_max_bytes
        )
    except journal.JournalFull:
        log.error(
            "the fallback journal is full (FALLBACK_JOURNAL_MAX_BYTES=%d): a %s request from the "
            "carrier was not kept; the database must come back or the journal be replayed",
            settings.journal_max_bytes, step,
        )  # fmt: skip
    except OSError:
        log.exception("could not append to the fallback journal")


def handle_fallback() -> VoiceResponse:
    """The body of POST /voice/fallback (signature already checked)."""
    settings = services().settings
    step = request.args.get("step", "entered")
    if step not in STEPS:
        step = "entered"
    journal_request(step)
    if step == "recording":
        return VoiceResponse()
    if step == "recorded":
        return thanks_twiml()
    return message_box_twiml(settings.public_base_url, settings.message_max_seconds)
