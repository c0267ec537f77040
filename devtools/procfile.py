"""The Procfile's commands, as the run command, the tests and the benchmarks start them.

``command("worker", env)`` is the ``worker:`` line split as a shell would split it, with
``$NAME`` and ``${NAME:-default}`` taken from ``env`` and the program taken from this Python's
environment (``.venv/bin``), so what runs here is what a Procfile host runs.
"""

from __future__ import annotations

import re
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path

PROCFILE = Path(__file__).resolve().parents[1] / "Procfile"
_VARIABLE = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}|\$(\w+)")


def lines(path: Path = PROCFILE) -> dict[str, str]:
    """Process name → command line."""
    found = {}
    for line in path.read_text().splitlines():
        name, sep, text = line.partition(":")
        if sep and name.strip() and not name.startswith("#"):
            found[name.strip()] = text.strip()
    return found


def command(name: str, env: Mapping[str, str], path: Path = PROCFILE) -> list[str]:
    """The Procfile's ``name`` line as an argument list (``KeyError`` if there is none)."""

    def value(match: re.Match[str]) -> str:
        variable = match.group(1) or match.group(3)
        default = match.group(2)
        found = env.get(variable) or (default if default is not None else "")
        return shlex.quote(found)

    argv = shlex.split(_VARIABLE.sub(value, lines(path)[name]))
    program = Path(sys.executable).with_name(argv[0])
    if program.exists():
        argv[0] = str(program)
    return argv
