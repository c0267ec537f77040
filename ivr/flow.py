"""The IVR flow as data: load ``menu.toml`` and the prompt catalogs, validate them, match answers.

Pure: no Flask, no database. ``load_flow`` raises ``FlowError`` naming every problem at once, so
a broken menu stops the app at start-up rather than a caller mid-call.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

IVR_DIR = Path(__file__).resolve().parent
MENU_PATH = IVR_DIR / "menu.toml"
PROMPTS_DIR = IVR_DIR / "prompts"

NODE_TYPES = ("menu", "say", "handover", "message_box", "goodbye")
SETTABLE = {"language", "kind"}
KINDS = ("surrender", "family", "pow_info", "other")
#: Prompt keys the code itself says (retries, the message box); every catalog must have them.
SYSTEM_PROMPTS = (
    "no_input",
    "invalid",
    "operators_busy",
    "already_waiting",
    "operators_busy_no_callback",
    "message_thanks",
    "message_retry",
    "goodbye",
    "queue_wait",
    "queue_position",
    "queue_estimate",
    "queue_estimate_seconds",
    "queue_leave_option",
    "queue_callback_option",
    "callback_confirmed",
    "callback_greeting",
)
_WORD = re.compile(r"[^\W_]+(?:[-'’][^\W_]+)*", re.UNICODE)


class FlowError(ValueError):
    """The menu definition or a prompt catalog is inconsistent."""


@dataclass(frozen=True)
class Voice:
    say_language: str
    voice: str
    speech_language: str


@dataclass(frozen=True)
class Choice:
    key: str
    next: str
    speech: str | None = None
    set: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Node:
    name: str
    type: str
    prompts: tuple[str, ...]
    choices: tuple[Choice, ...] = ()
    next: str | None = None
    on_fail: str | None = None
    say_in: tuple[str, ...] = ()
    also_say: dict[str, tuple[str, ...]] = field(default_factory=dict)
    speech_language: str | None = None

    def successors(self) -> list[str]:
        names = [c.next for c in self.choices]
        names += [n for n in (self.next, self.on_fail) if n]
        return names

    def choice_for_key(self, digits: str) -> Choice | None:
        return next((c for c in self.choices if c.key == digits), None)


@dataclass(frozen=True)
class Catalog:
    language: str
    prompts: dict[str, str]
    speech: dict[str, tuple[str, ...]]


@dataclass(frozen=True)
class Flow:
    start: str
    default_language: str
    max_attempts: int
    kind_priority: dict[str, int]
    voices: dict[str, Voice]
    nodes: dict[str, Node]
    catalogs: dict[str, Catalog]

    def node(self, name: str) -> Node | None:
        return self.nodes.get(name)

    def text(self, language: str, key: str) -> str:
        return self.catalogs[language].prompts[key]

    def language_or_default(self, language: str | None) -> str:
        return language if language in self.catalogs else self.default_language

    def match_speech(self, node: Node, language: str, speech: str) -> Choice | None:
        """The choice whose phrase best matches what was said (longest phrase wins; ties: none)."""
        words = tokens(speech)
        if not words:
            return None
        best: tuple[int, Choice | None] = (0, None)
        tie = False
        for choice in node.choices:
            if choice.speech is None:
                continue
            for phrase in self.catalogs[language].speech.get(choice.speech, ()):
                length = _contains(words, tokens(phrase))
                if length > best[0]:
                    best, tie = (length, choice), False
                elif length and length == best[0] and best[1] is not choice:
                    tie = True
        return None if tie else best[1]


def tokens(text: str) -> list[str]:
    return [w.casefold() for w in _WORD.findall(text or "")]


def _contains(words: list[str], phrase: list[str]) -> int:
    """Length of ``phrase`` if it occurs contiguously in ``words``, else 0."""
    n = len(phrase)
    if n == 0:
        return 0
    for i in range(len(words) - n + 1):
        if words[i : i + n] == phrase:
            return sum(len(w) for w in phrase) + n
    return 0


def _load_toml(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FlowError(f"{path}: file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise FlowError(f"{path}: not valid TOML: {exc}") from None


def load_flow(menu_path: Path = MENU_PATH, prompts_dir: Path = PROMPTS_DIR) -> Flow:
    """Load and validate the menu and its catalogs; raise FlowError listing every problem."""
    raw = _load_toml(menu_path)
    problems: list[str] = []

    voices = {}
    for lang, cfg in raw.get("languages", {}).items():
        try:
            voices[lang] = Voice(cfg["say_language"], cfg["voice"], cfg["speech_language"])
        except (KeyError, TypeError):
            problems.append(f"language {lang!r} needs say_language, voice and speech_language")
    if not voices:
        problems.append("no [languages] defined")

    catalogs: dict[str, Catalog] = {}
    for lang in voices:
        data = _load_toml(prompts_dir / f"{lang}.toml")
        catalogs[lang] = Catalog(
            lang,
            {k: str(v) for k, v in data.get("prompts", {}).items()},
            {k: tuple(str(w) for w in v) for k, v in data.get("speech", {}).items()},
        )

    nodes: dict[str, Node] = {}
    for name, cfg in raw.get("nodes", {}).items():
        try:
            nodes[name] = _node(name, cfg)
        except (KeyError, TypeError, ValueError) as exc:
            problems.append(f"node {name!r}: {exc}")

    flow = Flow(
        start=str(raw.get("start", "")),
        default_language=str(raw.get("default_language", "")),
        max_attempts=int(raw.get("max_attempts", 3)),
        kind_priority={str(k): int(v) for k, v in raw.get("kind_priority", {}).items()},
        voices=voices,
        nodes=nodes,
        catalogs=catalogs,
    )
    problems += list(_check(flow))
    if problems:
        raise FlowError("the IVR menu is invalid:\n  - " + "\n  - ".join(problems))
    return flow


def _node(name: str, cfg: dict) -> Node:
    node_type = cfg["type"]
    if node_type not in NODE_TYPES:
        raise ValueError(f"unknown type {node_type!r} (one of {', '.join(NODE_TYPES)})")
    choices = tuple(
        Choice(
            key=str(c["key"]),
            next=str(c["next"]),
            speech=c.get("speech"),
            set={str(k): str(v) for k, v in c.get("set", {}).items()},
        )
        for c in cfg.get("choices", [])
    )
    return Node(
        name=name,
        type=node_type,
        prompts=tuple(cfg.get("prompts", [])),
        choices=choices,
        next=cfg.get("next"),
        on_fail=cfg.get("on_fail"),
        say_in=tuple(cfg.get("say_in", [])),
        also_say={k: tuple(v) for k, v in cfg.get("also_say", {}).items()},
        speech_language=cfg.get("speech_language"),
    )


def _check(flow: Flow) -> Iterable[str]:
    langs = set(flow.voices)
    if flow.default_language not in langs:
        yield f"default_language {flow.default_language!r} is not a defined language"
    if flow.max_attempts < 1:
        yield "max_attempts must be at least 1"
    if flow.start not in flow.nodes:
        yield f"start node {flow.start!r} does not exist"
    for kind in KINDS:
        if kind not in flow.kind_priority:
            yield f"kind_priority has no entry for {kind!r}"

    # Missing translations: every catalog has the same keys as the others.
    all_prompts = set().union(*(set(c.prompts) for c in flow.catalogs.values())) if langs else set()
    all_speech = set().union(*(set(c.speech) for c in flow.catalogs.values())) if langs else set()
    for lang, cat in sorted(flow.catalogs.items()):
        for key in sorted(all_prompts - set(cat.prompts)):
            yield f"prompt {key!r} has no {lang} translation"
        for key in sorted(all_speech - set(cat.speech)):
            yield f"speech words {key!r} have no {lang} translation"
    for key in SYSTEM_PROMPTS:
        if key not in all_prompts:
            yield f"system prompt {key!r} is missing from the catalogs"

    for node in flow.nodes.values():
        used = list(node.prompts) + [k for keys in node.also_say.values() for k in keys]
        for key in used:
            if key not in all_prompts:
                yield f"node {node.name!r} uses unknown prompt {key!r}"
        for lang in (*node.say_in, *node.also_say, *filter(None, [node.speech_language])):
            if lang not in langs:
                yield f"node {node.name!r} names unknown language {lang!r}"
        for target in node.successors():
            if target not in flow.nodes:
                yield f"node {node.name!r} leads to missing node {target!r}"
        yield from _check_node_shape(node, all_speech)
        for choice in node.choices:
            if "language" in choice.set and choice.set["language"] not in langs:
                yield f"menu {node.name!r}: unknown language {choice.set['language']!r}"

    reachable = _reachable(flow)
    for name in sorted(set(flow.nodes) - reachable):
        yield f"node {name!r} is unreachable from {flow.start!r}"


def _check_node_shape(node: Node, speech_keys: set[str]) -> Iterable[str]:
    if node.type == "menu":
        if not node.choices:
            yield f"menu {node.name!r} has no choices"
        if not node.on_fail:
            yield f"menu {node.name!r} needs on_fail (never hang up on silence)"
        keys = [c.key for c in node.choices]
        if len(keys) != len(set(keys)):
            yield f"menu {node.name!r} has duplicate keys"
        for choice in node.choices:
            if not re.fullmatch(r"[0-9*#]", choice.key):
                yield f"menu {node.name!r}: key {choice.key!r} is not one phone key"
            if choice.speech is not None and choice.speech not in speech_keys:
                yield f"menu {node.name!r}: unknown speech words {choice.speech!r}"
            for attr, value in choice.set.items():
                if attr not in SETTABLE:
                    yield f"menu {node.name!r}: cannot set {attr!r}"
                if attr == "kind" and value not in KINDS:
                    yield f"menu {node.name!r}: unknown kind {value!r}"
    elif node.type == "say" and not node.next:
        yield f"say node {node.name!r} needs next"
    if node.type not in ("menu", "say") and node.successors():
        yield f"{node.type} node {node.name!r} ends the flow and cannot have next/choices"


def _reachable(flow: Flow) -> set[str]:
    seen: set[str] = set()
    todo = [flow.start] if flow.start in flow.nodes else []
    while todo:
        name = todo.pop()
        if name in seen or name not in flow.nodes:
            continue
        seen.add(name)
        todo.extend(flow.nodes[name].successors())
    return seen
