"""Console benchmark: the call log and an inquiry page over 100,000 interactions.

Run from the repository root (nothing to install, no root needed)::

    .venv/bin/python -m bench.console                 # 100,000 interactions, a few minutes
    .venv/bin/python -m bench.console --quick         # 10,000, a smoke check

It builds the app on a fresh migrated SQLite file in a temp dir (or ``DATABASE_URL``; its
tables must be empty) and an embedded Redis, seeds ``--interactions`` calls (about 2.5 per
case, each with its IVR and queue events, most queued and answered by one of 40 handlers), logs
in a supervisor (password + TOTP, through the real login pages) and times, with the Flask test
client (the whole request: session, authorisation, audit row, query, decryption of the masked
numbers, template):

- the call log's first page with a filter (``kind`` and ``language``),
- an inquiry page (a random case: its calls, events, notes),

and, in the same run, the call log's query run bare through SQLAlchemy (the same SELECT with the
same filter and limit; no decryption, no template), alternating with the page's requests so that
both see the same machine. The last line is one JSON object:
``interactions``, ``calllog_p99_ms``, ``inquiry_p99_ms``, ``bare_p99_ms``, ``ratio`` (call log
p99 ÷ bare p99). Targets: p99 under 150 ms, and under 3× the bare query.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import insert  # noqa: E402

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
KINDS = ("surrender", "family", "pow_info", "other")
LANGUAGES = ("ru", "uk", "en")


def seed(app, interactions: int, rng: random.Random) -> dict[str, int]:
    """Bulk-insert the rows (Core executemany, batches of 5,000)."""
    from inquiries.models import Caller, CallEvent, Inquiry, Interaction
    from routing.models import Handler, QueueEntry

    protector = app.extensions["hotline"].protector
    cases = max(1, int(interactions / 2.5))
    span_s = 300 * 24 * 3600  # ten months
    with app.extensions["db"].engine.begin() as conn:
        conn.execute(
            insert(Handler),
            [{"display_name": f"Handler {i}", "languages": ["ru", "uk"], "skills": list(KINDS),
              "client_identity": f"handler-{i}", "presence": "offline"} for i in range(40)],
        )  # fmt: skip
        callers = []
        for i in range(cases):
            number = f"+7916{i:07d}"
            number_hash = protector.lookup_hash(number)
            sealed = protector.seal_text(number, associated=number_hash.encode())
            callers.append(dict(
                id=i + 1, number_hash=number_hash, created_at=T0,
                number_ciphertext=sealed.ciphertext, number_key_id=sealed.key_id,
            ))  # fmt: skip
        for start in range(0, cases, 5000):
            conn.execute(insert(Caller), callers[start : start + 5000])
        conn.execute(
            insert(Inquiry),
            [{"id": i + 1, "caller_id": i + 1, "kind": rng.choice(KINDS),
              "language": rng.choice(LANGUAGES), "status": rng.choice(("open", "resolved")),
              "priority": 0, "created_at": T0, "updated_at": T0} for i in range(cases)],
        )  # fmt: skip
        calls, events, entries = [], [], []
        for i in range(interactions):
            started = T0 + dt.timedelta(seconds=rng.randrange(span_s))
            iid = i + 1
            calls.append({"id": iid, "inquiry_id": rng.randrange(cases) + 1,
                          "provider_sid": f"CA{iid:032x}", "channel": "voice",
                          "direction": "inbound", "status": "completed", "started_at": started,
                          "duration_s": rng.randrange(30, 900), "ivr_path": []})  # fmt: skip
            for n, name in enumerate(("IVR_ENTER", "IVR_STEP", "IVR_STEP", "ENTERQUEUE")):
                events.append({"interaction_id": iid, "event": name, "data": {"n": n},
                               "time": started + dt.timedelta(seconds=5 * n)})  # fmt: skip
            if rng.random() < 0.7:
                entries.append(dict(
                    interaction_id=iid, state="done", language="ru", kind="other", priority=0,
                    enqueued_at=started, handler_id=rng.randrange(40) + 1, callback_attempts=0,
                    connected_at=started + dt.timedelta(seconds=rng.randrange(60)),
                ))  # fmt: skip
            if len(calls) >= 5000:
                _flush(conn, calls, events, entries, Interaction, CallEvent, QueueEntry)
        _flush(conn, calls, events, entries, Interaction, CallEvent, QueueEntry)
    return {"cases": cases}


def _flush(conn, calls, events, entries, Interaction, CallEvent, QueueEntry) -> None:
    for rows, model in ((calls, Interaction), (events, CallEvent), (entries, QueueEntry)):
        if rows:
            conn.execute(insert(model), rows)
            rows.clear()


def pct_ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def bare_statement(flt):
    """The call log's SELECT, with the same filter and limit as the page's first page."""
    from inquiries.calllog import PAGE_SIZE, _query

    return _query(flt, None, limit=PAGE_SIZE + 1)


def alternate(client, url: str, app, flt, samples: int) -> tuple[list[float], list[float]]:
    """The page and the bare query timed in alternation (page, bare, page, bare …), so that
    both see the same machine: on a shared VM, a slow spell during one phase of a
    one-then-the-other run moved the ratio by a third."""
    query, params = bare_statement(flt)
    page, bare = [], []
    with app.extensions["db"].engine.connect() as conn:
        for _ in range(samples):
            page += timed_get(client, url, 1, expect=b'id="call-log"')
            t = time.perf_counter()
            conn.execute(query, params).all()
            bare.append(time.perf_counter() - t)
            conn.commit()  # as the page's request does: no read transaction held across
    return page, bare


def timed_get(client, url: str, samples: int, *, expect: bytes = b"") -> list[float]:
    times = []
    for _ in range(samples):
        t = time.perf_counter()
        response = client.get(url)
        times.append(time.perf_counter() - t)
        if response.status_code != 200 or (expect and expect not in response.data):
            raise SystemExit(f"{url}: HTTP {response.status_code}")
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--interactions", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--seed", type=int, default=20261127)
    parser.add_argument("--quick", action="store_true", help="10,000 interactions, 50 samples")
    args = parser.parse_args(argv)
    if args.quick:
        args.interactions, args.samples = 10_000, 50
    rng = random.Random(args.seed)

    from bench.console_login import login_supervisor
    from devtools.services import EmbeddedRedis
    from inquiries.calllog import CallLogFilter

    with tempfile.TemporaryDirectory(prefix="hl-bench-console-") as tmp:
        tmp_path = Path(tmp)
        redis_server = None
        env = {
            "HOTLINE_ENV": "test",
            "HOTLINE_INSTANCE_PATH": str(tmp_path / "instance"),
            "DATABASE_URL": os.environ.get("DATABASE_URL")
            or f"sqlite:///{tmp_path / 'bench.sqlite3'}",
            "PUBLIC_BASE_URL": "https://hotline.example.org",
            "LOG_LEVEL": "WARNING",
        }
        if os.environ.get("REDIS_URL"):
            env["REDIS_URL"] = os.environ["REDIS_URL"]
        else:
            redis_server = EmbeddedRedis(tmp_path / "redis.sock").start()
            env["REDIS_URL"] = redis_server.url
        try:
            from app import create_app, run_migrations
            from settings import load_settings

            settings = load_settings(env)
            run_migrations(settings.database_url)
            app = create_app(settings)
            started = time.perf_counter()
            info = seed(app, args.interactions, rng)
            seeded_s = time.perf_counter() - started
            print(f"seeded {args.interactions:,} interactions in {info['cases']:,} cases "
                  f"in {seeded_s:.1f} s")  # fmt: skip
            client = app.test_client()
            login_supervisor(app, client)
            flt = CallLogFilter(kind="family", language="uk")
            url = "/console/calls?kind=family&language=uk"
            alternate(client, url, app, flt, 5)  # warm up
            calllog, bare = alternate(client, url, app, flt, args.samples)
            cases = [rng.randrange(info["cases"]) + 1 for _ in range(args.samples)]
            inquiry = []
            for case in cases:
                inquiry += timed_get(client, f"/console/inquiries/{case}", 1)
        finally:
            if redis_server is not None:
                redis_server.stop()

    out = {
        "interactions": args.interactions,
        "calllog_p50_ms": round(pct_ms(calllog, 0.5), 2),
        "calllog_p99_ms": round(pct_ms(calllog, 0.99), 2),
        "inquiry_p50_ms": round(pct_ms(inquiry, 0.5), 2),
        "inquiry_p99_ms": round(pct_ms(inquiry, 0.99), 2),
        "bare_p50_ms": round(pct_ms(bare, 0.5), 2),
        "bare_p99_ms": round(pct_ms(bare, 0.99), 2),
    }
    out["ratio"] = round(out["calllog_p99_ms"] / max(out["bare_p99_ms"], 1e-6), 2)
    mean_ms = statistics.mean(calllog) * 1000
    print(f"call log (kind=family, language=uk), first page: p50 {out['calllog_p50_ms']} ms, "
          f"p99 {out['calllog_p99_ms']} ms (mean {mean_ms:.1f} ms)")  # fmt: skip
    print(f"inquiry page: p50 {out['inquiry_p50_ms']} ms, p99 {out['inquiry_p99_ms']} ms")
    print(f"bare query: p50 {out['bare_p50_ms']} ms, p99 {out['bare_p99_ms']} ms")
    met = out["calllog_p99_ms"] < 150 and out["inquiry_p99_ms"] < 150 and out["ratio"] < 3
    print(f"targets: p99 < 150 ms and < 3x bare: {'met' if met else 'MISSED'}")
    print(json.dumps(out))
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
