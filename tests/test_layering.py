"""DESIGN.md's layout, checked in the source.

- A package imports only the packages below it (anywhere in its modules, deferred imports and
  ``importlib.import_module("…")`` included). Infrastructure modules (settings, db, jobs,
  services, logs, dataprotection, webhooks) may be imported by all; the emulator by none.
- Nothing imports ``app`` (the composition root) back.
- No package reads another's state through ``current_app.extensions``: each reads its own key.
- Stock libraries, public API: no third-party name that starts with an underscore is imported
  or used as an attribute, and no library method whose name starts with one is overridden.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Top to bottom, as in DESIGN.md's layout table.
ORDER = [
    "console",
    "keyrotation",
    "messaging",
    "ivr",
    "routing",
    "recordings",
    "inquiries",
    "staff",
]
INFRASTRUCTURE = {"settings", "db", "jobs", "services", "logs", "dataprotection", "webhooks"}
#: ``app.extensions`` keys and who owns them.
EXTENSION_OWNERS = {
    "db": "db",
    "jobs": "jobs",
    "hotline": "services",
    "ivr_flow": "ivr",
    "ivr_shared_twiml": "ivr",
    "routing.prompts": "routing",
    "messaging_menu": "messaging",
}


def project_files() -> list[Path]:
    skip = {".venv", "instance", "node_modules", ".git"}
    return [p for p in sorted(ROOT.rglob("*.py")) if not skip & set(p.relative_to(ROOT).parts)]


def imported_names(tree: ast.AST) -> list[str]:
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
        elif (
            isinstance(node, ast.Call)
            and ast.unparse(node.func) in ("importlib.import_module", "import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names.append(node.args[0].value)
    return names


def imported_packages(package: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        for name in imported_names(ast.parse(path.read_text(), filename=str(path))):
            top = name.split(".")[0]
            if top != package:
                found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def test_no_package_imports_one_above_it():
    wrong = []
    for index, package in enumerate(ORDER):
        if not (ROOT / package).is_dir():
            continue
        above = set(ORDER[:index]) | {"emulator", "app"}
        for top, files in imported_packages(package).items():
            if top in above:
                wrong.append(f"{package} imports {top}: {sorted(files)}")
    assert not wrong, "\n".join(wrong)


def test_infrastructure_imports_no_package():
    wrong = []
    for name in sorted(INFRASTRUCTURE):
        tree = ast.parse((ROOT / f"{name}.py").read_text())
        for imported in imported_names(tree):
            if imported.split(".")[0] in {*ORDER, "app", "emulator"}:
                wrong.append(f"{name}.py imports {imported}")
    assert not wrong, "\n".join(wrong)


def test_nothing_imports_the_app_back_not_even_through_importlib():
    wrong = []
    for path in project_files():
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith(("tests/", "bench/", "devtools/", "migrations/")) or rel == "app.py":
            continue
        for imported in imported_names(ast.parse(path.read_text())):
            if imported.split(".")[0] == "app":
                wrong.append(rel)
    assert not wrong, wrong


def test_the_layering_test_sees_an_importlib_import():
    tree = ast.parse("import importlib\nimportlib.import_module('app').create_app()\n")
    assert "app" in imported_names(tree)


def test_each_package_reads_only_its_own_app_extensions():
    wrong = []
    for path in project_files():
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith(("tests/", "bench/", "emulator/")) or rel == "app.py":
            continue  # the composition root wires them; tests and benchmarks look inside
        owner = rel.split("/")[0].removesuffix(".py")
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Subscript)
                and isinstance(node.value, ast.Attribute)
                and node.value.attr == "extensions"
                and isinstance(node.slice, ast.Constant)
            ):
                key = node.slice.value
                if EXTENSION_OWNERS.get(key) != owner:
                    wrong.append(f"{rel}:{node.lineno} reads extensions[{key!r}]")
    assert not wrong, "\n".join(wrong)


def test_the_emulator_imports_no_app_package():
    app_packages = set(ORDER) | INFRASTRUCTURE | {"app"}
    assert not set(imported_packages("emulator")) & app_packages


def _third_party_names() -> set[str]:
    ours = {p.name.removesuffix(".py") for p in ROOT.iterdir() if p.suffix == ".py" or p.is_dir()}
    return set(sys.stdlib_module_names) | ours


def test_no_private_name_of_a_library_is_used():
    """Flask, werkzeug, RQ, SQLAlchemy, redis-py, twilio-python…: public API only."""
    own = _third_party_names()
    wrong = []
    for path in project_files():
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith("emulator/"):
            continue  # imports no library's internals either, but keeps private names of its own
        tree = ast.parse(path.read_text(), filename=rel)
        libraries: set[str] = set()  # local names bound to third-party modules or their objects
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                top = node.module.split(".")[0]
                if top in own:
                    continue
                if any(part.startswith("_") for part in node.module.split(".")):
                    wrong.append(f"{rel}:{node.lineno}: from {node.module}")
                for alias in node.names:
                    if alias.name.startswith("_"):
                        wrong.append(f"{rel}:{node.lineno}: {node.module}.{alias.name}")
                    libraries.add(alias.asname or alias.name)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] not in own:
                        libraries.add((alias.asname or alias.name).split(".")[0])
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and isinstance(node.value, ast.Name)
                and node.value.id in libraries
            ):
                wrong.append(f"{rel}:{node.lineno}: {node.value.id}.{node.attr}")
            if isinstance(node, ast.ClassDef) and any(
                isinstance(b, ast.Name | ast.Attribute)
                and ast.unparse(b).split(".")[0] in libraries
                for b in node.bases
            ):
                for item in node.body:
                    if (
                        isinstance(item, ast.FunctionDef)
                        and item.name.startswith("_")
                        and not item.name.startswith("__")
                    ):
                        wrong.append(f"{rel}:{item.lineno}: overrides {node.name}.{item.name}")
    assert not wrong, "\n".join(wrong)
