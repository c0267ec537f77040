"""The words routing says to callers and handlers come from the IVR's prompt catalogs.

Routing sits below the IVR (DESIGN.md's import order), so it names what it needs of them here
(``CallerPrompts``: ``ivr.flow.Flow`` provides it) and ``app.py`` hands the IVR's flow in.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from flask import Flask, current_app


class CallerPrompts(Protocol):
    """What routing needs of the IVR's prompt catalogs: ``ivr.flow.Flow`` provides it and the
    app wires it in (``init_app``), so routing never imports the IVR above it."""

    voices: Mapping[str, Any]

    def language_or_default(self, language: str | None) -> str: ...

    def text(self, language: str, key: str) -> str: ...


def init_app(app: Flask, caller_prompts: CallerPrompts) -> None:
    app.extensions["routing.prompts"] = caller_prompts


def prompts() -> CallerPrompts:
    return current_app.extensions["routing.prompts"]  # type: ignore[no-any-return]


def voice_language(language: str | None) -> str:
    return prompts().language_or_default(language)
