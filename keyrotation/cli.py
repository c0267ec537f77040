"""``flask keys …``: which data keys are in use, re-sealing with the active one, rehashing
phone numbers under a new HMAC key.

Prints counts, key ids and row ids only: never a key, a number or anything sealed. ``reseal``
and ``rehash`` are audited (``keys.reseal``, ``keys.rehash``, no actor: the command line).
"""

from __future__ import annotations

from collections import Counter

import click
from flask.cli import AppGroup
from sqlalchemy.exc import IntegrityError

from db import db_session
from keyrotation import rehash as rehashing
from keyrotation import sealed
from recordings.store import recording_store
from services import services
from staff import audit

keys_cli = AppGroup(
    "keys", help="Data keys (HOTLINE_DATA_KEYS) and the phone HMAC key: usage and rotation."
)
_batch = click.option(
    "--batch", type=click.IntRange(1, 10_000), default=sealed.BATCH, show_default=True,
    help="rows per transaction",
)  # fmt: skip


def _progress(what: str, done: int, total: int) -> None:
    click.echo(f"  {what}: {done}/{total}")


def _ids(ids: list[int], limit: int = 20) -> str:
    shown = ", ".join(str(i) for i in ids[:limit])
    return shown + (f" … ({len(ids)} in all)" if len(ids) > limit else "")


def print_usage() -> set[str]:
    """The key ids each sealed column uses, and what that means for each configured key; the
    ids of the configured keys still needed."""
    svc = services()
    configured = list(svc.settings.data_keys)
    active = svc.protector.active_key_id
    found = sealed.usage(db_session(), svc.settings.journal_path)
    db_session().commit()
    total: Counter[str] = Counter()
    click.echo(f"{'sealed values':18} {'key id':12} {'count':>8}")
    for what, counts in found.items():
        for key_id, count in sorted(counts.items()):
            mark = " (active)" if key_id == active else ""
            click.echo(f"{what:18} {key_id + mark:12} {count:>8}")
            total[key_id] += count
        if not counts:
            click.echo(f"{what:18} {'-':12} {0:>8}")
    for key_id in configured:
        if key_id == active:
            click.echo(f"key {key_id!r}: active (seals new data)")
        elif total[key_id]:
            click.echo(
                f"key {key_id!r}: still seals {total[key_id]} value(s): run `flask keys reseal` "
                "(and replay the journal) before removing it"
            )
        else:
            click.echo(f"key {key_id!r}: not in use: it may be removed from HOTLINE_DATA_KEYS")
    for key_id in sorted(set(total) - set(configured)):
        click.echo(f"key {key_id!r}: NOT CONFIGURED: {total[key_id]} value(s) sealed with it do "
                   "not open")  # fmt: skip
    old_key = svc.settings.phone_hmac_key_old
    if old_key is not None:
        status = rehashing.key_status(db_session(), svc.protector, old_key)
        db_session().commit()
        for what, counts in status.items():
            click.echo(f"phone hashes, {what}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return {key_id for key_id in configured if key_id == active or total[key_id]}


@keys_cli.command("usage")
def usage_command() -> None:
    """How many values each data key seals, and which keys may be removed."""
    print_usage()


@keys_cli.command("reseal")
@_batch
@click.option(
    "--reencrypt-recordings", is_flag=True,
    help="encrypt each recording's audio again under a new file key (when the old data key may "
    "have leaked with a copy of the database), not only re-seal its file key",
)  # fmt: skip
def reseal_command(batch: int, reencrypt_recordings: bool) -> None:
    """Seal again with the first HOTLINE_DATA_KEYS key everything sealed with another one
    (caller numbers, handler phones, case notes, TOTP secrets, recording keys). Idempotent:
    run it again after an interruption; it carries on."""
    svc = services()
    db = db_session()
    active = svc.protector.active_key_id
    click.echo(f"re-sealing with {active!r}, {batch} rows per transaction")
    results = sealed.reseal(db, svc.protector, recording_store(svc.settings), batch=batch,
                            reencrypt=reencrypt_recordings, progress=_progress)  # fmt: skip
    failed = False
    for what, outcome in results.items():
        line = f"{what}: {outcome.resealed} re-sealed"
        if outcome.changed:
            line += f", {outcome.changed} changed meanwhile (left as they are now)"
        click.echo(line)
        if outcome.failed:
            failed = True
            click.echo(f"{what}: {len(outcome.failed)} do not open with any configured key "
                       f"(ids {_ids(outcome.failed)})", err=True)  # fmt: skip
    audit.record(
        "keys.reseal", "data_key", active, using=db, actor=None, ip=None,
        reencrypt_recordings=reencrypt_recordings,
        **{f"{what}_resealed": o.resealed for what, o in results.items()},
        **{f"{what}_failed": len(o.failed) for what, o in results.items()},
    )  # fmt: skip
    db.commit()
    click.echo("")
    print_usage()
    if failed:
        raise click.ClickException("some values did not open: they keep their old key")


@keys_cli.command("rehash")
@_batch
@click.option("--dry-run", is_flag=True, help="count what would change, change nothing")
def rehash_command(batch: int, dry_run: bool) -> None:
    """Recompute the phone numbers' keyed hashes under HOTLINE_PHONE_HMAC_KEY (the new key),
    from the sealed numbers; HOTLINE_PHONE_HMAC_KEY_OLD names the key being replaced. Callers
    who called meanwhile (a new row under the new key) are merged with their old row."""
    svc = services()
    old_key = svc.settings.phone_hmac_key_old
    if old_key is None:
        raise click.ClickException(
            "set HOTLINE_PHONE_HMAC_KEY_OLD to the key being replaced, for this command (every "
            "process has the new one in HOTLINE_PHONE_HMAC_KEY): see docs/SECURITY.md, "
            "'Erasure and key rotation'"
        )
    db = db_session()
    try:
        results = rehashing.rehash(db, svc.protector, old_key, batch=batch, dry_run=dry_run,
                                   progress=_progress)  # fmt: skip
    except IntegrityError:
        db.rollback()
        raise click.ClickException(
            "a caller called with a number being rehashed: run the command again"
        ) from None
    attention = False
    for what, o in results.items():
        verb = "would be rehashed" if dry_run else "rehashed"
        click.echo(f"{what}: {o.rehashed} {verb}, {o.merged} merged into a newer row, "
                   f"{o.current} already under the new key, {o.left} not hashed from their "
                   "number (left)")  # fmt: skip
        if o.failed:
            attention = True
            click.echo(f"{what}: {len(o.failed)} numbers do not open (ids {_ids(o.failed)})",
                       err=True)  # fmt: skip
        if o.conflicts:
            attention = True
            click.echo(
                f"{what}: {len(o.conflicts)} have the number of another row under the new key "
                f"(ids {_ids(o.conflicts)}): remove one of each pair",
                err=True,
            )
    if not dry_run:
        audit.record(
            "keys.rehash", "phone_hmac_key", None, using=db, actor=None, ip=None,
            **{f"{what}_rehashed": o.rehashed for what, o in results.items()},
            **{f"{what}_merged": o.merged for what, o in results.items()},
        )  # fmt: skip
        db.commit()
    if attention:
        raise click.ClickException("some rows need a person (above); the others are done")
    if not dry_run:
        click.echo("done: the old key is no longer needed; destroy it")
