"""DESIGN.md's import order, checked: a package imports only the packages below it (anywhere in
its modules, deferred imports included). Infrastructure modules (settings, extensions,
dataprotection, webhooks) may be imported by all; the emulator by none."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Top to bottom, as in DESIGN.md's layout table.
ORDER = ["console", "messaging", "ivr", "routing", "recordings", "inquiries", "staff"]


def imported_packages(package: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top != package:
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def test_no_package_imports_one_above_it():
    wrong = []
    for index, package in enumerate(ORDER):
        if not (ROOT / package).is_dir():
            continue
        above = set(ORDER[:index]) | {"emulator"}
        for top, files in imported_packages(package).items():
            if top in above:
                wrong.append(f"{package} imports {top}: {sorted(files)}")
    assert not wrong, "\n".join(wrong)


def test_the_emulator_imports_no_app_package():
    app_packages = set(ORDER) | {"app", "settings", "extensions", "dataprotection", "webhooks"}
    assert not set(imported_packages("emulator")) & app_packages
