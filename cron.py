"""The schedule for ``rq cron cron.py`` (the Procfile's ``clock``; ``./scripts/run`` starts it).

Periodic jobs are safety nets and housekeeping, never the main path: routing is event-driven,
and ``routing.jobs.tick`` only catches what a lost job, a dead worker or a flushed Redis missed.
Each job is idempotent, so two schedulers running at once cost work, not correctness.
"""

from __future__ import annotations

from rq import cron

from routing.jobs import tick
from settings import load_settings

settings = load_settings()

if settings.routing_tick_s:
    cron.register(
        tick, settings.rq_queue, interval=settings.routing_tick_s, job_timeout=60,
        result_ttl=600, ttl=max(60, 4 * settings.routing_tick_s),  # no backlog of stale ticks
        name="routing-tick",
    )  # fmt: skip
