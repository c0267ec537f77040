"""`flask ivr import-prompt LANG KEY FILE`: real audio in, a mono 8 kHz WAV out, then <Play>."""

from __future__ import annotations

import gc
import os
import subprocess
import warnings
import wave
from pathlib import Path

import pytest

from ivr.cli import TARGET_DBFS, configure_ffmpeg
from tests.conftest import PUBLIC_BASE_URL, call_params, new_call_sid, path_of
from tests.support import handles

# pydub warns at import (audioop is deprecated; no ffmpeg/ffprobe on PATH) and leaks file
# handles: in production these are printed warnings, not errors (the leak is its own test).
pytestmark = [
    pytest.mark.filterwarnings("ignore:'audioop' is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:Couldn't find ff:RuntimeWarning"),
]
ESPEAK = "/usr/bin/espeak-ng"


def pydub():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pydub.generators

    configure_ffmpeg()
    return pydub


def quiet_stereo_tone(seconds: float = 1.5):
    """A 440 Hz tone, stereo 44.1 kHz, far quieter than the target loudness."""
    tone = (
        pydub()
        .generators.Sine(440, sample_rate=44100)
        .to_audio_segment(duration=seconds * 1000, volume=-30.0)
    )
    stereo = tone.set_channels(2)
    assert (stereo.channels, stereo.frame_rate) == (2, 44100)
    assert stereo.dBFS < TARGET_DBFS - 10
    return stereo


def export(audio, path: Path, fmt: str) -> Path:
    audio.export(path, format=fmt).close()
    assert path.stat().st_size > 0
    return path


@pytest.fixture
def runner(app):
    yield app.test_cli_runner()
    gc.collect()  # pydub's leaked file objects go now, under this module's warning filters


def import_prompt(runner, language: str, key: str, source: Path):
    return runner.invoke(args=["ivr", "import-prompt", language, key, str(source)])


def prompt_file(app, language: str, key: str) -> Path:
    return handles(app).settings.prompt_audio_path / language / f"{key}.wav"


def assert_telephone_wav(path: Path, seconds: float) -> None:
    with wave.open(str(path), "rb") as wav:
        assert wav.getnchannels() == 1
        assert wav.getframerate() == 8000
        assert wav.getsampwidth() == 2
        assert wav.getnframes() / 8000 == pytest.approx(seconds, abs=0.15)
    with path.open("rb") as fh:
        loudness = pydub().AudioSegment.from_wav(fh).dBFS
    assert loudness == pytest.approx(TARGET_DBFS, abs=1.5)


def espeak(text: str, language: str, path: Path) -> Path:
    subprocess.run([ESPEAK, "-v", language, "-w", str(path), text], check=True, timeout=60)
    return path


@pytest.mark.parametrize(
    "fmt",
    [
        "wav",
        "mp3",
        "ogg",
    ],
)
def test_import_makes_a_normalised_telephone_wav(app, runner, tmp_path, fmt) -> None:
    source = export(quiet_stereo_tone(1.5), tmp_path / f"tone.{fmt}", fmt)
    result = import_prompt(runner, "ru", "welcome", source)
    assert result.exit_code == 0, result.output
    assert "ru/welcome" in result.output
    assert_telephone_wav(prompt_file(app, "ru", "welcome"), 1.5)


@pytest.mark.skipif(not os.path.exists(ESPEAK), reason="espeak-ng is not installed")
def test_import_of_synthesised_speech(app, runner, tmp_path) -> None:
    source = espeak("Спасибо за звонок. До свидания.", "ru", tmp_path / "goodbye.wav")
    with wave.open(str(source), "rb") as wav:
        seconds = wav.getnframes() / wav.getframerate()
        assert wav.getframerate() != 8000
    result = import_prompt(runner, "ru", "goodbye", source)
    assert result.exit_code == 0, result.output
    assert_telephone_wav(prompt_file(app, "ru", "goodbye"), seconds)


def welcome_gather(carrier):
    root = carrier.twiml("/voice/incoming", call_params(new_call_sid()))
    gathers = root.findall("Gather")
    assert len(gathers) == 1
    return list(gathers[0])


def test_imported_prompt_is_played_instead_of_said(app, runner, carrier, client, tmp_path):
    before = welcome_gather(carrier)
    assert [verb.tag for verb in before].count("Play") == 0
    assert before[0].tag == "Say"
    assert before[0].attrib["language"] == "ru-RU"

    source = export(quiet_stereo_tone(1.0), tmp_path / "welcome.wav", "wav")
    assert import_prompt(runner, "ru", "welcome", source).exit_code == 0

    after = welcome_gather(carrier)
    plays = [verb for verb in after if verb.tag == "Play"]
    url = f"{PUBLIC_BASE_URL}/voice/prompts/ru/welcome.wav"
    assert [play.text for play in plays] == [url]
    assert after[0] is plays[0]  # in the welcome's place: the first thing the caller hears
    assert len(after) == len(before)  # every other prompt is still said
    said = [(verb.attrib["language"], verb.text) for verb in after if verb.tag == "Say"]
    assert ("uk-UA", app.extensions["ivr_flow"].text("uk", "welcome")) in said

    response = client.get(path_of(url))
    assert response.status_code == 200
    assert response.mimetype == "audio/wav"
    assert response.data == prompt_file(app, "ru", "welcome").read_bytes()
    response.close()


@pytest.mark.parametrize(
    ("name", "content"),
    [("noise.mp3", os.urandom(4096)), ("noise.wav", os.urandom(4096)), ("empty.mp3", b"")],
)
def test_unreadable_audio_is_refused(app, runner, tmp_path, name, content) -> None:
    source = tmp_path / name
    source.write_bytes(content)
    result = import_prompt(runner, "ru", "welcome", source)
    assert result.exit_code != 0
    assert name in result.output
    assert "not audio" in result.output
    assert not prompt_file(app, "ru", "welcome").exists()


def test_silent_audio_is_refused(app, runner, tmp_path) -> None:
    source = export(pydub().AudioSegment.silent(duration=1000), tmp_path / "silence.wav", "wav")
    result = import_prompt(runner, "ru", "welcome", source)
    assert result.exit_code != 0
    assert "silent" in result.output
    assert not prompt_file(app, "ru", "welcome").exists()


@pytest.mark.parametrize(
    ("language", "key", "expected"),
    [
        ("de", "welcome", "unknown language 'de'"),
        ("RU", "welcome", "unknown language 'RU'"),
        ("ru", "welcom", "unknown prompt key 'welcom'"),
        ("ru", "words_russian", "unknown prompt key 'words_russian'"),  # speech words, not a prompt
    ],
)
def test_unknown_language_or_key_is_refused(app, runner, tmp_path, language, key, expected):
    source = export(quiet_stereo_tone(0.5), tmp_path / "tone.wav", "wav")
    result = import_prompt(runner, language, key, source)
    assert result.exit_code != 0
    assert expected in result.output
    assert list(handles(app).settings.prompt_audio_path.rglob("*.wav")) == []


def test_missing_source_file_is_refused(runner, tmp_path) -> None:
    result = import_prompt(runner, "ru", "welcome", tmp_path / "nowhere.mp3")
    assert result.exit_code != 0
    assert "nowhere.mp3" in result.output


@pytest.mark.parametrize(
    "path",
    [
        "/voice/prompts/ru/no_such_prompt.wav",
        "/voice/prompts/de/welcome.wav",
        "/voice/prompts/ru/goodbye.wav",  # a real prompt with no recording imported
        "/voice/prompts/ru/..%2F..%2Fsecrets.wav",
        "/voice/prompts/ru/welcome.mp3",
    ],
)
def test_unknown_prompt_audio_is_404(client, path) -> None:
    assert client.get(path).status_code == 404


def test_import_closes_its_files(runner, tmp_path) -> None:
    source = export(quiet_stereo_tone(0.5), tmp_path / "tone.wav", "wav")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        result = import_prompt(runner, "ru", "welcome", source)
        gc.collect()
    assert result.exit_code == 0, result.output
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []
