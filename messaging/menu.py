"""The text menu as data: its catalogs (``messaging/prompts/<lang>.toml``), validated at start-up
like the IVR's, and how an answer — a digit, a word, a Telegram button — is understood.

Pure: no Flask, no database. The menu asks two questions: the language (the greeting, in
Russian and Ukrainian, with the English option) and the topic; then it gives the advice on
deleting the chat and says that a person will answer there. A wrong answer asks again (up to
``MAX_ATTEMPTS``), then the menu moves on with the default: nobody is stuck in it.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from ivr.flow import tokens

PROMPTS_DIR = Path(__file__).resolve().parent / "prompts"
LANGUAGE, TOPIC = "language", "topic"
NODES = (LANGUAGE, TOPIC)
MAX_ATTEMPTS = 3
#: The greeting's languages, in order (the people who write are mostly these).
GREETING_LANGUAGES = ("ru", "uk")
#: (key, what it sets) per question; a digit is the key, a word is ``words.<node>_<value>``.
CHOICES: dict[str, tuple[tuple[str, str], ...]] = {
    LANGUAGE: (("1", "ru"), ("2", "uk"), ("3", "en")),
    TOPIC: (("1", "surrender"), ("2", "family"), ("3", "pow_info"), ("4", "other")),
}
#: Other digits that mean a choice (0, as on the phone menu, is "a person").
ALIASES = {TOPIC: {"0": "4"}}
#: When the answers run out: what is set.
DEFAULTS = {LANGUAGE: "ru", TOPIC: "other"}
TEXT_KEYS = (
    "greeting", "choose_language", "english_option", "topic_question", "invalid",
    "delete_advice", "person_will_answer",
    "button_ru", "button_uk", "button_en",
    "button_surrender", "button_family", "button_pow_info", "button_other",
)  # fmt: skip
WORD_KEYS = tuple(f"{node}_{value}" for node in NODES for _key, value in CHOICES[node])
#: Telegram ``callback_data``: ``menu:<node>:<key>`` (ASCII, far below 64 bytes).
_CALLBACK = re.compile(r"^menu:(language|topic):([0-9])$")


class MenuError(ValueError):
    """A catalog is missing, broken or incomplete."""


@dataclass(frozen=True)
class Answer:
    """An understood answer: the key chosen, what it sets, how it was given (kept on the
    interaction: the digit, ``word`` or ``button``, never the words typed)."""

    node: str
    key: str
    value: str
    given: str


@dataclass(frozen=True)
class TextMenu:
    texts: dict[str, dict[str, str]]
    words: dict[str, dict[str, tuple[str, ...]]]
    kind_priority: dict[str, int]
    default_language: str = "ru"

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(self.texts)

    def text(self, language: str | None, key: str) -> str:
        lang = language if language in self.texts else self.default_language
        return self.texts[lang][key]

    # -- what is said ----------------------------------------------------------------------
    def question(self, node: str, language: str | None, *, invalid: bool = False) -> str:
        """The text that asks ``node`` (after "not understood" when ``invalid``)."""
        if node == LANGUAGE:
            parts = [
                f"{self.text(lang, 'greeting')}\n{self.text(lang, 'choose_language')}"
                for lang in GREETING_LANGUAGES
            ]
            parts.append(self.text("en", "english_option"))
            body = "\n\n".join(parts)
            if invalid:
                body = " / ".join(self.text(lang, "invalid") for lang in GREETING_LANGUAGES) + (
                    "\n\n" + body
                )
            return body
        body = self.text(language, "topic_question")
        return f"{self.text(language, 'invalid')}\n{body}" if invalid else body

    def closing(self, language: str | None) -> str:
        """After the last answer: the advice on deleting the chat, then "a person will answer"."""
        advice, person = (
            self.text(language, "delete_advice"),
            self.text(language, "person_will_answer"),
        )
        return f"{advice}\n\n{person}"

    def buttons(self, node: str | None, language: str | None) -> list[list[dict[str, str]]]:
        """Telegram's inline keyboard for ``node``: one button a row."""
        if node not in CHOICES:
            return []
        rows = []
        for key, value in CHOICES[node]:
            label = self.text(language, f"button_{value}")
            rows.append([{"text": label, "callback_data": f"menu:{node}:{key}"}])
        return rows

    # -- what is understood ----------------------------------------------------------------
    def understand(self, node: str, reply: str) -> Answer | None:
        """A typed reply: one digit, or a word of any catalog's list for this question."""
        stripped = reply.strip().rstrip(".!)")
        key = ALIASES.get(node, {}).get(stripped, stripped)
        for choice_key, value in CHOICES[node]:
            if key == choice_key:
                return Answer(node, choice_key, value, choice_key)
        found = tokens(reply)
        matches = set()
        for choice_key, value in CHOICES[node]:
            for lang_words in self.words.values():
                for phrase in lang_words[f"{node}_{value}"]:
                    words = tokens(phrase)
                    if words and _contains(found, words):
                        matches.add((choice_key, value))
        if len(matches) == 1:
            choice_key, value = matches.pop()
            return Answer(node, choice_key, value, "word")
        return None

    def pressed(self, callback_data: str) -> Answer | None:
        """A Telegram button's ``callback_data``, if it is one of ours."""
        match = _CALLBACK.match(callback_data or "")
        if match is None:
            return None
        node, key = match.groups()
        value = dict(CHOICES[node]).get(key)
        return Answer(node, key, value, "button") if value else None

    def fallback(self, node: str) -> Answer:
        value = DEFAULTS[node]
        key = next(k for k, v in CHOICES[node] if v == value)
        return Answer(node, key, value, "none")


def _contains(words: list[str], phrase: list[str]) -> bool:
    n = len(phrase)
    return any(words[i : i + n] == phrase for i in range(len(words) - n + 1))


def load_menu(
    languages: tuple[str, ...], kind_priority: dict[str, int], prompts_dir: Path = PROMPTS_DIR
) -> TextMenu:
    """Load and validate the catalogs of ``languages`` (the IVR's); raise ``MenuError`` naming
    every problem: a missing file or key, a key no other catalog has, a word list that is not
    a list of words, a topic without a priority."""
    problems: list[str] = []
    texts: dict[str, dict[str, str]] = {}
    words: dict[str, dict[str, tuple[str, ...]]] = {}
    for lang in languages:
        path = prompts_dir / f"{lang}.toml"
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            problems.append(f"{path}: file not found (a missing translation)")
            continue
        except tomllib.TOMLDecodeError as exc:
            problems.append(f"{path}: not valid TOML: {exc}")
            continue
        raw_texts, raw_words = data.get("texts", {}), data.get("words", {})
        for key in sorted(set(TEXT_KEYS) - set(raw_texts)):
            problems.append(f"text {key!r} has no {lang} translation")
        for key in sorted(set(raw_texts) - set(TEXT_KEYS)):
            problems.append(f"{lang}: unknown text {key!r}")
        for key in sorted(set(WORD_KEYS) - set(raw_words)):
            problems.append(f"words {key!r} have no {lang} translation")
        for key, value in raw_texts.items():
            if not isinstance(value, str) or not value.strip():
                problems.append(f"{lang}: text {key!r} is empty or not text")
        for key, value in raw_words.items():
            if not isinstance(value, list) or not all(isinstance(w, str) and w for w in value):
                problems.append(f"{lang}: words {key!r} must be a list of words")
        texts[lang] = {k: str(v) for k, v in raw_texts.items()}
        words[lang] = {k: tuple(map(str, v)) for k, v in raw_words.items() if isinstance(v, list)}
    for lang in (*GREETING_LANGUAGES, "en"):
        if lang not in languages:
            problems.append(f"the greeting needs the {lang} catalog")
    for _key, value in CHOICES[TOPIC]:
        if value not in kind_priority:
            problems.append(f"topic {value!r} has no priority (the IVR's kind_priority)")
    if problems:
        raise MenuError("the text menu is invalid:\n  - " + "\n  - ".join(problems))
    return TextMenu(texts, words, dict(kind_priority))
