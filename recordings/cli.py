"""``flask recordings …``: list the pipeline's rows, retry one, re-seal keys, apply retention.

Prints ids, kinds, states and times only: never audio, numbers or anything personal.
"""

from __future__ import annotations

import click
from flask.cli import AppGroup

from db import db_session
from recordings import retention, service
from recordings.models import STATES
from recordings.store import recording_store
from services import services

recordings_cli = AppGroup("recordings", help="Recordings: their pipeline state, retries, keys.")


@recordings_cli.command("list")
@click.option("--state", type=click.Choice(STATES), default=None, help="only this state")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
def list_command(state: str | None, limit: int) -> None:
    """The newest recordings: id, call (interaction id), kind, state, attempts, duration."""
    rows = service.list_recordings(db_session(), state=state, limit=limit)
    if not rows:
        click.echo("no recordings")
        return
    click.echo(
        f"{'id':>6} {'call':>7} {'kind':12} {'state':15} {'tries':>5} {'length':>7}  "
        f"{'created (UTC)':19}  last error"
    )
    for row in rows:
        length = f"{row['duration_ms'] / 1000:.1f}s" if row["duration_ms"] is not None else "-"
        error = row["failure_reason"] or ""
        if row["last_error"] and row["failure_reason"]:
            error = row["last_error"]
        created = row["created_at"].strftime("%Y-%m-%d %H:%M:%S")
        click.echo(
            f"{row['id']:>6} {row['interaction_id']:>7} {row['kind']:12} {row['state']:15} "
            f"{row['attempts']:>5} {length:>7}  {created}  {error}"
        )


@recordings_cli.command("retry")
@click.argument("recording_id", type=int)
def retry_command(recording_id: int) -> None:
    """Run recording ID's pipeline again now (a failed or stuck one)."""
    try:
        result = service.retry(recording_id)
    except LookupError:
        raise click.ClickException(f"no recording {recording_id}") from None
    messages = {
        "enqueued": "enqueued: a worker runs it now",
        "running": "a run is in progress already",
        "done": "nothing to do: it is stored and gone at the carrier (or deleted)",
    }
    click.echo(f"recording {recording_id}: {messages[result]}")


@recordings_cli.command("rewrap-keys")
def rewrap_command() -> None:
    """Re-seal every recording's data key with the first HOTLINE_DATA_KEYS key (rotation;
    `flask keys reseal` does this and every other sealed column)."""
    done = service.rewrap_keys(db_session(), services().protector)
    click.echo(f"{done} recording key(s) sealed again with {services().protector.active_key_id!r}")


@recordings_cli.command("apply-retention")
def retention_command() -> None:
    """Delete expired recordings and personal data now (the clock does it hourly)."""
    svc = services()
    counts = retention.apply(db_session(), svc, recording_store(svc.settings))
    click.echo(", ".join(f"{name}: {value}" for name, value in counts.items()))
