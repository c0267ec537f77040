"""Command-line tools: import a recorded prompt, replay the fallback journal, configure a number."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from db import db_session
from ivr import journal
from services import services

ivr_cli = AppGroup("ivr", help="The voice menu: recorded prompts, the fallback journal.")
carrier_cli = AppGroup("carrier", help="The carrier account (Twilio or the local emulator).")

PROMPT_RATE_HZ = 8000
TARGET_DBFS = -16.0


def configure_ffmpeg() -> str:
    """Point pydub at ffmpeg: the system's if present, else the imageio-ffmpeg wheel's (the
    recordings pipeline's lookup)."""
    from pydub import AudioSegment

    from recordings.audio import ffmpeg_path

    found = ffmpeg_path()
    AudioSegment.converter = found
    return found


def convert_prompt(source: Path, target: Path) -> float:
    """Any audio ffmpeg reads → mono 8 kHz 16-bit WAV, loudness-normalised. Returns seconds.

    ffmpeg itself decodes (pydub would need ffprobe, which the imageio-ffmpeg wheel lacks);
    pydub then measures and normalises the decoded WAV.
    """
    from pydub import AudioSegment

    ffmpeg = configure_ffmpeg()
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as work:
        decoded = Path(work) / "decoded.wav"
        result = subprocess.run(
            [ffmpeg, "-nostdin", "-hide_banner", "-v", "error", "-i", str(source), "-vn",
             "-ac", "1", "-ar", str(PROMPT_RATE_HZ), "-sample_fmt", "s16", "-f", "wav",
             str(decoded)],
            capture_output=True, timeout=300, check=False,
        )  # fmt: skip
        if result.returncode != 0 or not decoded.exists():
            reason = (result.stderr.decode(errors="replace").strip().splitlines() or ["?"])[-1]
            raise click.ClickException(f"{source}: not audio that ffmpeg can read ({reason})")
        with decoded.open("rb") as fh:
            audio = AudioSegment.from_file(fh, format="wav")
        if len(audio) == 0 or audio.dBFS == float("-inf"):
            raise click.ClickException(f"{source}: the audio is empty or silent")
        audio = audio.apply_gain(TARGET_DBFS - audio.dBFS)
        if audio.max_dBFS > -1.0:  # keep peaks from clipping after the gain
            audio = audio.apply_gain(-1.0 - audio.max_dBFS)
        staged = Path(work) / "prompt.wav"
        audio.export(staged, format="wav").close()
        staged.replace(target)
    return len(audio) / 1000


@ivr_cli.command("import-prompt")
@click.argument("language")
@click.argument("key")
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_prompt(language: str, key: str, source: Path) -> None:
    """Use a recorded file for prompt KEY in LANGUAGE (played instead of the synthesised text)."""
    flow = current_app.extensions["ivr_flow"]
    if language not in flow.catalogs:
        raise click.ClickException(
            f"unknown language {language!r}; one of {', '.join(sorted(flow.catalogs))}"
        )
    if key not in flow.catalogs[language].prompts:
        raise click.ClickException(f"unknown prompt key {key!r} (see ivr/prompts/{language}.toml)")
    target = services().settings.prompt_audio_path / language / f"{key}.wav"
    seconds = convert_prompt(source, target)
    click.echo(f"{language}/{key}: {seconds:.1f} s, mono 8 kHz WAV, normalised → {target}")


@ivr_cli.command("replay-journal")
def replay_journal() -> None:
    """Move what the fallback URL journalled (DB or Redis down) into the database now."""
    svc = services()
    applied = journal.replay(svc.settings.journal_path, svc.protector, db_session())
    click.echo(f"{applied} journal entries applied")


@carrier_cli.command("configure-number")
@click.option("--number", default=None, help="E.164 number to configure (default HOTLINE_NUMBER)")
@click.option("--base-url", default=None, help="public URL of this app (default PUBLIC_BASE_URL)")
def configure_number(number: str | None, base_url: str | None) -> None:
    """Point the number's voice webhooks at this app (call, fallback, status) and its SMS URL
    at ``/messaging/incoming`` via the REST API; the SMS fallback URL is cleared (Twilio's demo
    URL would answer texts with a sample reply; docs/SECURITY.md)."""
    settings = services().settings
    number = number or settings.hotline_number
    base = (base_url or settings.public_base_url).rstrip("/")
    client = services().twilio
    found = client.incoming_phone_numbers.list(phone_number=number, limit=1)
    if not found:
        raise click.ClickException("that number is not on this carrier account")
    found[0].update(
        voice_url=f"{base}/voice/incoming",
        voice_method="POST",
        voice_fallback_url=f"{base}/voice/fallback",
        voice_fallback_method="POST",
        status_callback=f"{base}/voice/status",
        status_callback_method="POST",
        sms_url=f"{base}/messaging/incoming",
        sms_method="POST",
        sms_fallback_url="",  # not Twilio's auto-replying demo URL
    )
    click.echo(f"configured the number's voice and SMS webhooks to {base}")
