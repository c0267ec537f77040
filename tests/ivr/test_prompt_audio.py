"""Which prompts have a recorded file: the folder listing is cached by its mtime, and a prompt
added or removed while the app runs is seen by the next request."""

from __future__ import annotations

import os
import time
from pathlib import Path

from ivr.twiml import PromptAudio
from tests.conftest import call_params, new_call_sid
from tests.support import handles


def _age(folder: Path, seconds: float) -> None:
    past = time.time() - seconds
    os.utime(folder, (past, past))


def test_a_missing_folder_has_no_prompts(tmp_path: Path) -> None:
    assert not PromptAudio(tmp_path).has("ru", "welcome")


def test_an_added_and_a_removed_prompt_are_seen_by_the_next_request(tmp_path: Path) -> None:
    folder = tmp_path / "ru"
    folder.mkdir()
    (folder / "welcome.wav").write_bytes(b"RIFF")
    (folder / "notes.txt").write_text("not a prompt")
    _age(folder, 10)  # an old listing is the one that is kept and reused
    first = PromptAudio(tmp_path)
    assert first.has("ru", "welcome")
    assert not first.has("ru", "goodbye")
    assert not first.has("ru", "notes")

    (folder / "goodbye.wav").write_bytes(b"RIFF")  # the folder's mtime moves
    assert PromptAudio(tmp_path).has("ru", "goodbye")

    _age(folder, 10)
    assert PromptAudio(tmp_path).has("ru", "goodbye")  # listed again at the new mtime
    (folder / "welcome.wav").unlink()
    second = PromptAudio(tmp_path)
    assert not second.has("ru", "welcome")
    assert second.has("ru", "goodbye")


def test_a_folder_changed_within_the_last_second_is_listed_every_time(tmp_path: Path) -> None:
    folder = tmp_path / "uk"
    folder.mkdir()
    mtime = folder.stat().st_mtime_ns
    assert not PromptAudio(tmp_path).has("uk", "welcome")
    (folder / "welcome.wav").write_bytes(b"RIFF")
    os.utime(folder, ns=(mtime, mtime))  # a change in the same clock tick: mtime unchanged
    assert PromptAudio(tmp_path).has("uk", "welcome")


def _welcome_verbs(carrier) -> list[str]:
    root = carrier.twiml("/voice/incoming", call_params(new_call_sid()))
    return [verb.tag for verb in root.find("Gather")]


def test_a_shared_menu_follows_the_prompt_folder(app, carrier) -> None:
    """Menus are built once and reused; a prompt file added or removed rebuilds them."""
    folder = handles(app).settings.prompt_audio_path / "ru"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "goodbye.wav").write_bytes(b"RIFF")
    _age(folder, 10)
    first = _welcome_verbs(carrier)
    assert first[0] == "Say"
    assert _welcome_verbs(carrier) == first  # the shared one

    (folder / "welcome.wav").write_bytes(b"RIFF")
    _age(folder, 10)  # an old mtime, but a new one: the listing and the menu are rebuilt
    played = _welcome_verbs(carrier)
    assert played[0] == "Play"
    assert len(played) == len(first)

    (folder / "welcome.wav").unlink()
    assert _welcome_verbs(carrier) == first
