"""The menu definition is validated at start-up: every kind of mistake is a clear error."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from app import create_app
from ivr.flow import MENU_PATH, PROMPTS_DIR, FlowError, load_flow


@pytest.fixture
def menu_copy(tmp_path: Path) -> tuple[Path, Path]:
    prompts = tmp_path / "prompts"
    shutil.copytree(PROMPTS_DIR, prompts)
    menu = tmp_path / "menu.toml"
    shutil.copy(MENU_PATH, menu)
    return menu, prompts


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_the_shipped_menu_is_valid():
    flow = load_flow()
    assert flow.start == "language"
    assert set(flow.catalogs) == {"ru", "uk", "en"}


@pytest.mark.parametrize(
    ("target", "old", "new", "message"),
    [
        ("menu", 'prompts = ["main_menu"]', 'prompts = ["main_menu", "no_such_prompt"]',
         "node 'main' uses unknown prompt 'no_such_prompt'"),
        ("menu", 'next = "pow_info_offer"', 'next = "nowhere"',
         "node 'pow_info' leads to missing node 'nowhere'"),
        ("menu", '{ key = "2", speech = "words_goodbye", next = "goodbye" },\n]\n\n[nodes.operator]',
         ']\n\n[nodes.orphan]\ntype = "goodbye"\nprompts = ["goodbye"]\n\n[nodes.operator]',
         "node 'orphan' is unreachable"),
        ("menu", 'start = "language"', 'start = "lobby"', "start node 'lobby' does not exist"),
        ("menu", 'type = "say"', 'type = "dance"', "unknown type 'dance'"),
        ("menu", 'on_fail = "quiet_message"\n', "", "menu 'unsafe' needs on_fail"),
        ("menu", 'set = { kind = "family" }', 'set = { kind = "gossip" }', "unknown kind 'gossip'"),
        ("menu", 'set = { language = "uk" }', 'set = { language = "de" }', "unknown language 'de'"),
        ("menu", '{ key = "0", speech', '{ key = "10", speech', "key '10' is not one phone key"),
        ("uk", 'goodbye = "Дякуємо за дзвінок. До побачення."\n', "",
         "prompt 'goodbye' has no uk translation"),
        ("en", 'words_yes = ["yes", "one"]\n', "", "speech words 'words_yes' have no en translation"),
        ("ru", "[prompts]", "[prompts", "not valid TOML"),
    ],
)  # fmt: skip
def test_mistakes_are_clear_startup_errors(menu_copy, target, old, new, message):
    menu, prompts = menu_copy
    edit(menu if target == "menu" else prompts / f"{target}.toml", old, new)
    with pytest.raises(FlowError) as error:
        load_flow(menu, prompts)
    assert message in str(error.value)


def test_several_problems_are_reported_together(menu_copy):
    menu, prompts = menu_copy
    edit(menu, 'prompts = ["main_menu"]', 'prompts = ["nope"]')
    edit(menu, 'next = "pow_info_offer"', 'next = "gone"')
    with pytest.raises(FlowError) as error:
        load_flow(menu, prompts)
    assert "unknown prompt 'nope'" in str(error.value)
    assert "missing node 'gone'" in str(error.value)


def test_a_missing_catalog_stops_the_app(menu_copy, settings, monkeypatch):
    menu, prompts = menu_copy
    (prompts / "uk.toml").unlink()
    monkeypatch.setattr("ivr.flow.MENU_PATH", menu)
    monkeypatch.setattr("ivr.flow.PROMPTS_DIR", prompts)
    monkeypatch.setattr(load_flow, "__defaults__", (menu, prompts))
    with pytest.raises(FlowError, match=r"uk\.toml: file not found"):
        create_app(settings)
