"""Pure TwiML builders for the IVR (twilio.twiml.voice_response); tests parse what they return."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlencode

from twilio.twiml.voice_response import Gather, VoiceResponse

from ivr.flow import Flow, Node

GATHER_TIMEOUT_S = 6
RECORD_SILENCE_TIMEOUT_S = 8


class PromptAudio:
    """Which prompts have a recorded audio file (then <Play> instead of <Say>)."""

    def __init__(self, root: Path):
        self.root = root

    def has(self, language: str, key: str) -> bool:
        return (self.root / language / f"{key}.wav").is_file()


class Speaker:
    """Says prompt keys in a language: <Play> of the recorded file if there is one, else <Say>."""

    def __init__(self, flow: Flow, audio: PromptAudio, base_url: str, message_max_seconds: int):
        self.flow = flow
        self.audio = audio
        self.base_url = base_url
        self.message_max_seconds = message_max_seconds

    def prompt(self, target: VoiceResponse | Gather, language: str, key: str) -> None:
        if self.audio.has(language, key):
            target.play(f"{self.base_url}/voice/prompts/{language}/{key}.wav")
        else:
            voice = self.flow.voices[language]
            target.say(
                self.flow.text(language, key), language=voice.say_language, voice=voice.voice
            )

    def prompts(self, target: VoiceResponse | Gather, language: str, keys: Iterable[str]) -> None:
        for key in keys:
            self.prompt(target, language, key)

    def url(self, path: str, **query: object) -> str:
        return f"{self.base_url}{path}" + (f"?{urlencode(query)}" if query else "")


def node_url(speaker: Speaker, node: Node, attempt: int) -> str:
    return speaker.url(f"/voice/ivr/{node.name}", attempt=attempt)


def render_menu(
    speaker: Speaker, node: Node, language: str, attempt: int, before: Iterable[str] = ()
) -> VoiceResponse:
    """A menu: prompts inside <Gather>; with no input the <Redirect> brings us back to count it."""
    response = VoiceResponse()
    flow = speaker.flow
    speech_lang = node.speech_language or language
    hints = {
        word
        for choice in node.choices
        if choice.speech
        for word in flow.catalogs[speech_lang].speech.get(choice.speech, ())
    }
    action = node_url(speaker, node, attempt)
    gather = Gather(
        input="dtmf speech",
        num_digits=1,
        timeout=GATHER_TIMEOUT_S,
        speech_timeout="auto",
        action=action,
        method="POST",
        language=flow.voices[speech_lang].speech_language,
        hints=", ".join(sorted(hints)),
    )
    speak_in = node.say_in or (language,)
    for lang in speak_in:
        speaker.prompts(gather, lang, before)
        speaker.prompts(gather, lang, node.prompts)
    for lang, keys in node.also_say.items():
        speaker.prompts(gather, lang, keys)
    response.append(gather)
    response.redirect(action, method="POST")
    return response


def render_message_box(
    speaker: Speaker, language: str, intro: Iterable[str], attempt: int, callback: bool
) -> VoiceResponse:
    """The message box: a prompt, a <Record> whose status reaches us, a retry on silence."""
    response = VoiceResponse()
    speaker.prompts(response, language, intro)
    response.record(
        action=speaker.url("/voice/message/recorded"),
        method="POST",
        max_length=speaker.message_max_seconds,
        timeout=RECORD_SILENCE_TIMEOUT_S,
        play_beep=True,
        trim="trim-silence",
        recording_status_callback=speaker.url("/voice/recording"),
        recording_status_callback_method="POST",
        recording_status_callback_event="completed absent",
    )
    response.redirect(
        speaker.url("/voice/message/retry", attempt=attempt, callback=int(callback)), method="POST"
    )
    return response


def render_goodbye(speaker: Speaker, language: str, keys: Iterable[str]) -> VoiceResponse:
    response = VoiceResponse()
    speaker.prompts(response, language, keys)
    response.hangup()
    return response


def concat(*responses: VoiceResponse) -> VoiceResponse:
    """One response with the verbs of several, in order."""
    combined = VoiceResponse()
    for part in responses:
        for verb in part.verbs:
            combined.append(verb)
    return combined


def render_queue(
    speaker: Speaker,
    language: str,
    intro: Iterable[str],
    queue_name: str,
    wait_url: str,
    action_url: str,
) -> VoiceResponse:
    """The caller waits for a handler: a prompt, then <Enqueue> (routing's waitUrl and action)."""
    response = VoiceResponse()
    speaker.prompts(response, language, intro)
    response.enqueue(
        queue_name, wait_url=wait_url, wait_url_method="POST", action=action_url, method="POST"
    )
    return response
