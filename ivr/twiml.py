"""Pure TwiML builders for the IVR (twilio.twiml.voice_response); tests parse what they return."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from twilio.twiml.voice_response import Gather, VoiceResponse

from ivr.flow import Flow, Node

GATHER_TIMEOUT_S = 6
RECORD_SILENCE_TIMEOUT_S = 8


#: A language folder's WAV names, keyed by folder, with the folder's mtime when listed.
_LISTINGS: dict[str, tuple[int, frozenset[str]]] = {}


class PromptAudio:
    """Which prompts have a recorded audio file (then <Play> instead of <Say>).

    A folder is listed again only when its mtime changes (or changed in the last second): one
    ``stat`` per language and request instead of one per prompt. ``flask ivr import-prompt``
    renames the finished file into place, which changes the folder's mtime, so a running app
    sees a new prompt at once.
    """

    def __init__(self, root: Path):
        self.root = os.fspath(root)  # joined with a language per request: a str, not a Path
        self._names: dict[str, frozenset[str]] = {}

    def _listing(self, language: str) -> frozenset[str]:
        folder = os.path.join(self.root, language)
        if not os.access(folder, os.F_OK):  # usual: no recorded prompts (and no exception)
            return frozenset()
        try:
            mtime = os.stat(folder).st_mtime_ns
        except OSError:
            return frozenset()
        cached = _LISTINGS.get(folder)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        with os.scandir(folder) as entries:
            names = frozenset(e.name for e in entries if e.name.endswith(".wav") and e.is_file())
        # A change within the same clock tick may leave the mtime unchanged ("racy" listing):
        # a folder changed less than a second ago is listed again on every request.
        if time.time_ns() - mtime > 1_000_000_000:
            _LISTINGS[folder] = (mtime, names)
        return names

    def names(self, language: str) -> frozenset[str]:
        """The WAV files of ``language``'s folder (listed once per request)."""
        names = self._names.get(language)
        if names is None:
            names = self._names[language] = self._listing(language)
        return names

    def has(self, language: str, key: str) -> bool:
        return f"{key}.wav" in self.names(language)


class SharedResponse(VoiceResponse):
    """A response built once and shared by later requests: its XML is serialised once too.

    Never modify one (``concat`` copies the verbs into a new response, which is fine)."""

    def __init__(self, built: VoiceResponse):
        super().__init__()
        self.name = "Response"
        self.verbs.extend(built.verbs)
        self._xml: str | None = None

    def to_xml(self, xml_declaration: bool = True) -> str:
        if not xml_declaration:
            return super().to_xml(False)
        if self._xml is None:
            self._xml = super().to_xml(True)
        return self._xml


#: Shared responses kept per app at most; past that the cache starts again (a bound, not an LRU:
#: a flow has a few dozen distinct responses, so it is only reached after many prompt imports).
MAX_SHARED = 512


class Speaker:
    """Says prompt keys in a language: <Play> of the recorded file if there is one, else <Say>.

    With ``shared`` (a dict that lives as long as the app: its flow, base URL and settings are
    fixed), the menus, the message box and goodbyes are built once per set of arguments and
    state of the prompt audio folders, and then reused: they depend on nothing else.
    """

    def __init__(
        self,
        flow: Flow,
        audio: PromptAudio,
        base_url: str,
        message_max_seconds: int,
        shared: dict[tuple[Any, ...], SharedResponse] | None = None,
    ):
        self.flow = flow
        self.audio = audio
        self.base_url = base_url
        self.message_max_seconds = message_max_seconds
        self.shared = shared

    def reuse(
        self, key: tuple[Any, ...], languages: Iterable[str], build: Callable[[], VoiceResponse]
    ) -> VoiceResponse:
        """The response for ``key``, built by ``build`` the first time (see the class)."""
        if self.shared is None:
            return build()
        full = (key, *(self.audio.names(language) for language in languages))
        found = self.shared.get(full)
        if found is None:
            if len(self.shared) >= MAX_SHARED:
                self.shared.clear()
            found = self.shared[full] = SharedResponse(build())
        return found

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
    before = tuple(before)
    languages = {*(node.say_in or (language,)), *node.also_say}
    return speaker.reuse(
        ("menu", node.name, language, attempt, before),
        sorted(languages),
        lambda: _build_menu(speaker, node, language, attempt, before),
    )


def _build_menu(
    speaker: Speaker, node: Node, language: str, attempt: int, before: tuple[str, ...]
) -> VoiceResponse:
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
    intro = tuple(intro)
    return speaker.reuse(
        ("message_box", language, intro, attempt, callback),
        (language,),
        lambda: _build_message_box(speaker, language, intro, attempt, callback),
    )


def _build_message_box(
    speaker: Speaker, language: str, intro: tuple[str, ...], attempt: int, callback: bool
) -> VoiceResponse:
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
    keys = tuple(keys)
    return speaker.reuse(
        ("goodbye", language, keys), (language,), lambda: _build_goodbye(speaker, language, keys)
    )


def _build_goodbye(speaker: Speaker, language: str, keys: tuple[str, ...]) -> VoiceResponse:
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
