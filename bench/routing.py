"""Routing-core benchmark: decision latency and throughput against the raw Redis floor.

Run from the repository root (nothing to install, no root needed)::

    .venv/bin/python -m bench.routing             # about a minute
    .venv/bin/python -m bench.routing --quick     # a smoke check

A real redis-server (an embedded one in a temp dir, or ``REDIS_URL`` under a private key
prefix) holds 5,000 waiting callers and 500 handlers: three languages (some handlers bilingual,
a few take a second language as a fallback), one to three skills, three levels; the callers a
mix of languages, inquiry kinds and priorities, enqueued over the last half hour. First every
handler is put on a call, so the state is a busy hotline: everyone on a call, a long queue.

- decision latency: a call ends (complete, not timed), then the clock runs over what the
  event-driven job does when a handler becomes available: ``set_presence(available)`` with the
  dispatch in the same script (``dispatch=True``) until the offer is returned; p50/p99. The
  same with two calls (set_presence, then dispatch) is printed beside it.
- decisions per second, sustained: end the wrap-up (dispatching), accept the offer, complete the
  call; offers made ÷ wall time, everything timed. The queue is topped up to 5,000 between
  batches, outside the clock (a caller arriving is not part of a decision).
- the floor, same connection, one command at a time (no pipelining): PING and ZPOPMIN.

The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as ``python bench/routing.py`` as well as with ``-m``
    sys.path.insert(0, str(ROOT))

from devtools.services import EmbeddedRedis  # noqa: E402
from routing.core import HandlerProfile, RoutingCore  # noqa: E402

LANGUAGES = (("ru", 0.75), ("uk", 0.18), ("en", 0.07))
KINDS = (("other", 0.40, 0), ("family", 0.30, 30), ("pow_info", 0.20, 60), ("surrender", 0.10, 120))
T0 = 1_750_000_000.0  # the bench's clock: a fixed epoch, advanced by simulated time


def weighted(rng: random.Random, table) -> tuple:
    return rng.choices(table, weights=[row[1] for row in table])[0]


def make_handlers(rng: random.Random, n: int) -> list[HandlerProfile]:
    kinds = [kind for kind, *_ in KINDS]
    handlers = []
    for i in range(n):
        first = weighted(rng, LANGUAGES)[0]
        languages = [first]
        if first != "ru" or rng.random() < 0.3:  # uk/en speakers nearly all speak ru too
            languages.append("ru" if first != "ru" else "uk")
        fallback = ("en",) if "en" not in languages and rng.random() < 0.15 else ()
        skills = tuple(rng.sample(kinds, rng.randint(1, 3)))
        level = rng.choices((1, 2, 3), weights=(5, 3, 2))[0]
        handlers.append(
            HandlerProfile(f"h{i:04d}", tuple(dict.fromkeys(languages)), skills, level, i, fallback)
        )
    return handlers


class Callers:
    """Makes callers of a realistic mix, numbered in arrival order."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.made = 0

    def enqueue(self, core: RoutingCore, n: int, now: float) -> None:
        for _ in range(n):
            self.made += 1
            language = weighted(self.rng, LANGUAGES)[0]
            kind, _, priority = weighted(self.rng, KINDS)
            waited = self.rng.uniform(0, 1800)
            core.enqueue(
                f"c{self.made:07d}",
                language=language,
                kind=kind,
                priority=priority,
                enqueued_at=now - waited,
            )


def floor(client: redis.Redis, n: int) -> tuple[float, float, float]:
    """PING p50 (ms), PING/s and ZPOPMIN/s, one command at a time on one connection."""
    key = f"bench:zpop:{secrets.token_hex(4)}"
    for start in range(0, n, 10_000):
        client.zadd(key, {f"m{i}": i for i in range(start, min(n, start + 10_000))})
    pings = []
    t_start = time.perf_counter()
    for _ in range(n):
        t = time.perf_counter()
        client.ping()
        pings.append(time.perf_counter() - t)
    ping_per_s = n / (time.perf_counter() - t_start)
    t_start = time.perf_counter()
    for _ in range(n):
        client.zpopmin(key)
    zpop_per_s = n / (time.perf_counter() - t_start)
    client.delete(key)
    return statistics.median(pings) * 1000, ping_per_s, zpop_per_s


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def run(client: redis.Redis, args: argparse.Namespace) -> dict:
    rng = random.Random(args.seed)
    prefix = f"hl:bench:{secrets.token_hex(4)}:"
    core = RoutingCore(client, prefix=prefix, strategy=args.strategy, max_queue=args.callers * 2)
    now = T0
    try:
        # Setup: handlers, callers, everyone put on a call.
        for profile in make_handlers(rng, args.handlers):
            core.upsert_handler(profile, now=now)
        callers = Callers(rng)
        callers.enqueue(core, args.callers, now)
        on_call: dict[str, str] = {}  # handler -> caller
        for hid in sorted(core.snapshot()["handlers"]):
            core.set_presence(hid, "available", now=now)
        while offers := core.dispatch(now, max_offers=500):
            for offer in offers:
                core.accept(offer.caller_id, offer.handler_ids[0], now)
                on_call[offer.handler_ids[0]] = offer.caller_id
        idle = args.handlers - len(on_call)
        callers.enqueue(core, args.callers - len(core.waiting()), now)

        def next_call(offers) -> int:
            for offer in offers:
                core.accept(offer.caller_id, offer.handler_ids[0], now)
                on_call[offer.handler_ids[0]] = offer.caller_id
            return len(offers)

        def top_up() -> None:
            missing = args.callers - len(core.waiting())
            if missing > 0:
                callers.enqueue(core, missing, now)

        # (a) decision latency: available + dispatch in one script, then as two calls.
        fused: list[float] = []
        split: list[float] = []
        for i in range(args.latency_samples):
            hid = rng.choice(sorted(on_call))
            now += 0.05
            core.complete(on_call.pop(hid), hid, talk_s=rng.uniform(60, 900), now=now)
            t = time.perf_counter()
            if i % 2 == 0:
                offers = core.set_presence(hid, "available", now=now, dispatch=True).offers
                fused.append(time.perf_counter() - t)
            else:
                core.set_presence(hid, "available", now=now)
                offers = tuple(core.dispatch(now))
                split.append(time.perf_counter() - t)
            next_call(offers)
            if i % 200 == 199:
                top_up()

        # (b) sustained decisions: complete, end wrap-up (dispatching), accept.
        top_up()
        made = 0
        elapsed = 0.0
        batch = 200
        deadline = time.perf_counter() + args.seconds
        while time.perf_counter() < deadline:
            order = rng.sample(sorted(on_call), min(batch, len(on_call)))
            t = time.perf_counter()
            for hid in order:
                now += 0.01
                caller = on_call.pop(hid, None)
                if caller is None:
                    continue
                core.complete(caller, hid, talk_s=300.0, now=now)
                made += next_call(core.end_wrap_up(hid, now, dispatch=True).offers)
            elapsed += time.perf_counter() - t
            top_up()  # outside the clock
        snap_counts = core.snapshot()["counts"]
    finally:
        core.reset()
    return {
        "fused": fused,
        "split": split,
        "decisions": made,
        "elapsed": elapsed,
        "idle_handlers": idle,
        "counts": snap_counts,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--callers", type=int, default=5000)
    parser.add_argument("--handlers", type=int, default=500)
    parser.add_argument("--strategy", default="longest-idle", choices=RoutingCore.STRATEGIES)
    parser.add_argument("--latency-samples", type=int, default=4000)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--floor-ops", type=int, default=40_000)
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--quick", action="store_true", help="a smoke check: ~10 s")
    args = parser.parse_args(argv)
    if args.quick:
        args.latency_samples, args.seconds, args.floor_ops = 400, 2.0, 5000

    server = None
    url = os.environ.get("REDIS_URL")
    tmp = None
    if not url:
        tmp = tempfile.TemporaryDirectory(prefix="hl-bench-")
        server = EmbeddedRedis(Path(tmp.name) / "redis.sock").start()
        url = server.url
    client = redis.Redis.from_url(url)
    try:
        version = client.info("server")["redis_version"]
        ping_ms, ping_per_s, zpop_per_s = floor(client, args.floor_ops)
        result = run(client, args)
    finally:
        client.close()
        if server is not None:
            server.stop()
        if tmp is not None:
            tmp.cleanup()

    fused = result["fused"]
    decisions_per_s = result["decisions"] / result["elapsed"]
    summary = {
        "callers": args.callers,
        "handlers": args.handlers,
        "strategy": args.strategy,
        "decision_p50_ms": round(pct(fused, 0.50), 3),
        "decision_p99_ms": round(pct(fused, 0.99), 3),
        "decision_two_calls_p99_ms": round(pct(result["split"], 0.99), 3),
        "decisions_per_s": round(decisions_per_s, 1),
        "ping_p50_ms": round(ping_ms, 3),
        "ping_per_s": round(ping_per_s, 1),
        "zpopmin_per_s": round(zpop_per_s, 1),
        "ratio": round(decisions_per_s / zpop_per_s, 3),
    }
    print(f"redis-server {version} at {'REDIS_URL' if server is None else 'embedded socket'}")
    print(
        f"{args.callers} waiting callers, {args.handlers} handlers "
        f"({result['idle_handlers']} could take nobody at the start), strategy {args.strategy}"
    )
    print(
        f"decision (available + dispatch, one script): p50 {summary['decision_p50_ms']} ms, "
        f"p99 {summary['decision_p99_ms']} ms over {len(fused)} samples"
    )
    print(
        f"  as two calls (set_presence, dispatch): p50 {pct(result['split'], 0.5):.3f} ms, "
        f"p99 {summary['decision_two_calls_p99_ms']} ms"
    )
    print(
        f"decisions, sustained (complete + end wrap-up/dispatch + accept): "
        f"{result['decisions']} in {result['elapsed']:.2f} s = {decisions_per_s:,.0f}/s"
    )
    print(
        f"floor, one command at a time: PING p50 {ping_ms:.3f} ms ({ping_per_s:,.0f}/s), "
        f"ZPOPMIN {zpop_per_s:,.0f}/s"
    )
    target_p99 = summary["decision_p99_ms"] < 10
    target_ratio = summary["ratio"] >= 0.25
    print(
        f"ratio decisions/ZPOPMIN {summary['ratio']:.3f} (target ≥ 0.25: "
        f"{'met' if target_ratio else 'MISSED'}); p99 < 10 ms: "
        f"{'met' if target_p99 else 'MISSED'}"
    )
    print(f"end state: {result['counts']}")
    print(json.dumps(summary))
    return 0 if target_p99 and target_ratio else 1


if __name__ == "__main__":
    sys.exit(main())
