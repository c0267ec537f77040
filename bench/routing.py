"""Routing-core benchmark: decision latency and throughput beside the raw Redis floor.

Run from the repository root (nothing to install, no root needed)::

    .venv/bin/python -m bench.routing             # about a minute
    .venv/bin/python -m bench.routing --quick     # a smoke check, about 15 s

A real redis-server (an embedded one in a temp dir, or ``REDIS_URL`` under a private key prefix,
removed afterwards) holds 5,000 waiting callers and 500 handlers: three languages (most handlers
speak Russian, some are bilingual, a few take English as a fallback), one to three skills, three
levels; callers a mix of languages, inquiry kinds and priorities, enqueued over the last half
hour. Every handler is first put on a call: a busy hotline, everyone talking, a long queue.

- decision latency: a call ends (complete, untimed); the clock runs over what the event-driven
  job does when a handler becomes available, ``set_presence(available)`` with the dispatch in the
  same script (``dispatch=True``), until the offer is returned; p50/p99. The same as two calls
  (set_presence, then dispatch) is printed beside it.
- decisions per second, sustained, one call at a time on one connection: a decision is "a
  handler becomes available → the offer is chosen", ``end_wrap_up(dispatch=True)``, timed alone
  (the calls ending and the handlers answering are other events, untimed). Beside it, whole
  cycles with everything timed but the queue top-up (a caller arriving is not part of it):
  with wrap-up: complete → end_wrap_up(dispatch=True) → accept (3 calls per decision);
  auto-ready:   complete(wrap_up=False, dispatch=True) → accept (2 calls per decision).
  Redis CPU per decision (INFO commandstats) gives what Redis alone could sustain.
- the floor, same connection, one command at a time (no pipelining): PING and ZPOPMIN.

Floor and throughput are measured in alternating rounds (medians reported) so that a noisy
machine shifts both alike. The last line printed is one JSON object: ``decisions_per_s`` and
``ratio`` are the decision alone; ``ratio_cycle_*`` the whole cycles.
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


def make_handlers(rng: random.Random, n: int) -> list[HandlerProfile]:
    kinds = [kind for kind, *_ in KINDS]
    handlers = []
    for i in range(n):
        first = rng.choices([lang for lang, _ in LANGUAGES], [w for _, w in LANGUAGES])[0]
        languages = [first]
        if first != "ru" or rng.random() < 0.3:  # uk/en speakers here nearly all speak ru too
            languages.append("ru" if first != "ru" else "uk")
        fallback = ("en",) if "en" not in languages and rng.random() < 0.15 else ()
        skills = tuple(rng.sample(kinds, rng.randint(1, 3)))
        level = rng.choices((1, 2, 3), weights=(5, 3, 2))[0]
        handlers.append(HandlerProfile(f"h{i:04d}", tuple(languages), skills, level, i, fallback))
    return handlers


class Hotline:
    """The bench's simulated hotline: callers arriving, handlers on calls."""

    def __init__(self, core: RoutingCore, rng: random.Random, callers: int):
        self.core, self.rng, self.target = core, rng, callers
        self.now = T0
        self.made = 0
        self.on_call: dict[str, str] = {}  # handler -> caller

    def arrive(self, n: int) -> None:
        for _ in range(n):
            self.made += 1
            language = self.rng.choices([x for x, _ in LANGUAGES], [w for _, w in LANGUAGES])[0]
            kind, _, priority = self.rng.choices(KINDS, [w for _, w, _ in KINDS])[0]
            self.core.enqueue(
                f"c{self.made:07d}",
                language=language,
                kind=kind,
                priority=priority,
                enqueued_at=self.now - self.rng.uniform(0, 1800),
            )

    def top_up(self) -> None:
        self.arrive(max(0, self.target - self.core.waiting_count()))

    def answer(self, offers) -> int:
        """Each offer's first handler answers (accept); returns the number of offers."""
        for offer in offers:
            self.core.accept(offer.caller_id, offer.handler_ids[0], self.now)
            self.on_call[offer.handler_ids[0]] = offer.caller_id
        return len(offers)

    def busy_handlers(self, n: int) -> list[str]:
        return self.rng.sample(sorted(self.on_call), min(n, len(self.on_call)))

    def cycle(self, seconds: float, *, mode: str, batch: int = 200) -> tuple[int, float, float]:
        """Calls end and handlers take the next caller for ``seconds``: (decisions, elapsed s,
        Redis script time s). ``decide``: only the decision is timed (the wrap-up ends, the next
        caller is chosen); ``wrap``/``auto``: the whole cycle with/without wrap-up."""
        core, made, elapsed, server = self.core, 0, 0.0, 0.0
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            handlers = self.busy_handlers(batch)
            if mode == "decide":
                for hid in handlers:  # the calls end and wrap-up starts: not timed
                    self.now += 0.01
                    core.complete(self.on_call.pop(hid), hid, talk_s=300.0, now=self.now)
                usec = evalsha_usec(core.redis)
                t = time.perf_counter()
                decided = [core.end_wrap_up(h, self.now, dispatch=True).offers for h in handlers]
                elapsed += time.perf_counter() - t
                server += (evalsha_usec(core.redis) - usec) / 1e6
                for offers in decided:  # the handlers answer: not timed
                    made += self.answer(offers)
                self.top_up()
                continue
            usec = evalsha_usec(core.redis)
            t = time.perf_counter()
            for hid in handlers:
                self.now += 0.01
                caller = self.on_call.pop(hid)
                if mode == "wrap":
                    core.complete(caller, hid, talk_s=300.0, now=self.now)
                    offers = core.end_wrap_up(hid, self.now, dispatch=True).offers
                else:
                    offers = core.complete(
                        caller, hid, talk_s=300.0, now=self.now, wrap_up=False, dispatch=True
                    ).offers
                made += self.answer(offers)
            elapsed += time.perf_counter() - t
            server += (evalsha_usec(core.redis) - usec) / 1e6
            self.top_up()  # outside the clock
        return made, elapsed, server


def floor(client: redis.Redis, key: str, n: int) -> tuple[list[float], float, float, float]:
    """PING round trips (s), PING/s, ZPOPMIN/s and empty-script calls/s (the core's argument
    and answer shapes, no work): one command at a time on one connection."""
    client.zadd(key, {f"m{i}": i for i in range(n)})
    empty = client.register_script("return '[{},{}]'")
    argv = ("hl:r: longest-idle 60.0 2 10 500 0.0 1750000000.0 0 50", "h0001")
    empty(args=argv)
    pings = []
    start = time.perf_counter()
    for _ in range(n):
        t = time.perf_counter()
        client.ping()
        pings.append(time.perf_counter() - t)
    ping_per_s = n / (time.perf_counter() - start)
    start = time.perf_counter()
    for _ in range(n):
        client.zpopmin(key)
    zpop_per_s = n / (time.perf_counter() - start)
    start = time.perf_counter()
    for _ in range(n):
        json.loads(client.evalsha(empty.sha, 0, *argv))
    empty_per_s = n / (time.perf_counter() - start)
    return pings, ping_per_s, zpop_per_s, empty_per_s


def evalsha_usec(client: redis.Redis) -> float:
    return float(client.info("commandstats").get("cmdstat_evalsha", {}).get("usec", 0))


def pct_ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def run(client: redis.Redis, args: argparse.Namespace) -> dict:
    rng = random.Random(args.seed)
    prefix = f"hl:bench:{secrets.token_hex(4)}:"
    core = RoutingCore(client, prefix=prefix, strategy=args.strategy, max_queue=args.callers * 2)
    line = Hotline(core, rng, args.callers)
    out: dict = {"floor": [], "decide": [], "wrap": [], "auto": [], "pings": []}
    try:
        for profile in make_handlers(rng, args.handlers):
            core.upsert_handler(profile, now=line.now)
        line.arrive(args.callers)
        for profile in make_handlers(random.Random(args.seed), args.handlers):
            core.set_presence(profile.handler_id, "available", now=line.now)
        while offers := core.dispatch(line.now, max_offers=500):
            line.answer(offers)
        out["idle"] = args.handlers - len(line.on_call)
        line.top_up()

        fused: list[float] = []
        split: list[float] = []
        for i in range(args.latency_samples):
            (hid,) = line.busy_handlers(1)
            line.now += 0.05
            core.complete(line.on_call.pop(hid), hid, talk_s=rng.uniform(60, 900), now=line.now)
            t = time.perf_counter()
            if i % 2 == 0:
                offers = core.set_presence(hid, "available", now=line.now, dispatch=True).offers
                fused.append(time.perf_counter() - t)
            else:
                core.set_presence(hid, "available", now=line.now)
                offers = tuple(core.dispatch(line.now))
                split.append(time.perf_counter() - t)
            line.answer(offers)
            if i % 200 == 199:
                line.top_up()
        out["fused"], out["split"] = fused, split

        for _ in range(args.rounds):
            pings, ping_per_s, zpop_per_s, empty_per_s = floor(
                client, prefix + "zpop", args.floor_ops
            )
            out["pings"] += pings
            out["floor"].append((ping_per_s, zpop_per_s, empty_per_s))
            for mode in ("decide", "wrap", "auto"):
                out[mode].append(line.cycle(args.seconds, mode=mode))
        out["counts"] = core.snapshot()["counts"]
    finally:
        core.reset()
    return out


def summarise(args: argparse.Namespace, out: dict) -> dict:
    zpop = statistics.median(z for _, z, _ in out["floor"])
    empty = statistics.median(e for _, _, e in out["floor"])
    rates = {}
    for name in ("decide", "wrap", "auto"):
        made = sum(m for m, _, _ in out[name])
        rates[name] = statistics.median(m / e for m, e, _ in out[name])
        rates[name + "_redis_us"] = sum(s for _, _, s in out[name]) / max(1, made) * 1e6
    return {
        "callers": args.callers,
        "handlers": args.handlers,
        "strategy": args.strategy,
        "decision_p50_ms": round(pct_ms(out["fused"], 0.50), 3),
        "decision_p99_ms": round(pct_ms(out["fused"], 0.99), 3),
        "decision_two_calls_p99_ms": round(pct_ms(out["split"], 0.99), 3),
        "decisions_per_s": round(rates["decide"], 1),
        "cycles_per_s_with_wrap_up": round(rates["wrap"], 1),
        "cycles_per_s_auto_ready": round(rates["auto"], 1),
        "redis_us_per_decision": round(rates["decide_redis_us"], 1),
        "ping_p50_ms": round(pct_ms(out["pings"], 0.5), 3),
        "ping_per_s": round(statistics.median(p for p, _, _ in out["floor"]), 1),
        "zpopmin_per_s": round(zpop, 1),
        "ratio": round(rates["decide"] / zpop, 3),
        "ratio_cycle_with_wrap_up": round(rates["wrap"] / zpop, 3),
        "ratio_cycle_auto_ready": round(rates["auto"] / zpop, 3),
        "empty_script_per_s": round(empty, 1),
        "ratio_bound_1_call": round(empty / zpop, 3),
        "ratio_bound_3_calls": round(empty / 3 / zpop, 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--callers", type=int, default=5000)
    parser.add_argument("--handlers", type=int, default=500)
    parser.add_argument("--strategy", default="longest-idle", choices=RoutingCore.STRATEGIES)
    parser.add_argument("--latency-samples", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0, help="per cycle and round")
    parser.add_argument("--floor-ops", type=int, default=10_000, help="per command and round")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--quick", action="store_true", help="a smoke check")
    args = parser.parse_args(argv)
    if args.quick:
        args.latency_samples, args.rounds, args.seconds, args.floor_ops = 600, 2, 1.0, 3000

    server = tmp = None
    url = os.environ.get("REDIS_URL")
    if not url:
        tmp = tempfile.TemporaryDirectory(prefix="hl-bench-")
        server = EmbeddedRedis(Path(tmp.name) / "redis.sock").start()
        url = server.url
    client = redis.Redis.from_url(url)
    try:
        version = client.info("server")["redis_version"]
        out = run(client, args)
    finally:
        client.close()
        if server is not None:
            server.stop()
        if tmp is not None:
            tmp.cleanup()

    s = summarise(args, out)
    where = "REDIS_URL" if server is None else "an embedded unix socket"
    print(f"redis-server {version} on {where}; strategy {args.strategy}")
    print(
        f"{args.callers} waiting callers, {args.handlers} handlers, all on calls "
        f"({out['idle']} could take none of the callers at the start)"
    )
    print(
        f"decision latency (available + dispatch, one script): p50 {s['decision_p50_ms']:.3f} ms"
        f", p99 {s['decision_p99_ms']:.3f} ms over {len(out['fused'])} decisions"
    )
    print(
        f"  as two calls (set_presence, then dispatch): p50 {pct_ms(out['split'], 0.5):.3f} ms"
        f", p99 {s['decision_two_calls_p99_ms']:.3f} ms"
    )
    print(
        f"decisions/s sustained, median of {args.rounds} rounds of {args.seconds:g} s, one call "
        f"at a time:\n  the decision alone (end_wrap_up+dispatch): "
        f"{s['decisions_per_s']:,.0f}/s; Redis time {s['redis_us_per_decision']:.0f} µs per "
        f"decision (≈ {1e6 / max(1.0, s['redis_us_per_decision']):,.0f}/s with enough workers)"
        f"\n  whole cycle with wrap-up (complete, end_wrap_up+dispatch, accept): "
        f"{s['cycles_per_s_with_wrap_up']:,.0f}/s (ratio {s['ratio_cycle_with_wrap_up']:.3f})"
        f"\n  whole cycle auto-ready (complete+dispatch, accept): "
        f"{s['cycles_per_s_auto_ready']:,.0f}/s (ratio {s['ratio_cycle_auto_ready']:.3f})"
    )
    print(
        f"floor, one command at a time, same connection: PING p50 {s['ping_p50_ms']:.3f} ms "
        f"({s['ping_per_s']:,.0f}/s), ZPOPMIN {s['zpopmin_per_s']:,.0f}/s"
    )
    print(
        f"  an empty script with the core's argument/answer shapes: {s['empty_script_per_s']:,.0f}"
        f"/s, so a decision (one round trip) cannot pass a ratio of "
        f"{s['ratio_bound_1_call']:.3f}, a 3-call cycle {s['ratio_bound_3_calls']:.3f}, even "
        f"doing no work"
    )
    met_p99 = s["decision_p99_ms"] < 10
    met_ratio = s["ratio"] >= 0.25
    print(
        f"targets: p99 decision < 10 ms: {'met' if met_p99 else 'MISSED'}; decisions/ZPOPMIN "
        f"{s['ratio']:.3f} ≥ 0.25: "
        f"{'met' if met_ratio else 'MISSED'}"
    )
    print(f"end state: {out['counts']}")
    print(json.dumps(s))
    return 0 if met_p99 and met_ratio else 1


if __name__ == "__main__":
    sys.exit(main())
