"""The schedule for ``rq cron cron.py`` (the Procfile's ``clock``; ``./scripts/run`` starts it).

Periodic jobs are safety nets and housekeeping, never the main path: routing is event-driven,
and ``routing.jobs.tick`` only catches what a lost job, a dead worker or a flushed Redis missed.
Each job is idempotent, so two schedulers running at once cost work, not correctness.
"""

from __future__ import annotations

from rq import cron

from recordings.jobs import apply_retention, resume_stalled
from routing.jobs import tick
from settings import load_settings

settings = load_settings()

if settings.routing_tick_s:
    cron.register(
        tick, settings.rq_queue, interval=settings.routing_tick_s, job_timeout=60,
        result_ttl=600, ttl=max(60, 4 * settings.routing_tick_s),  # no backlog of stale ticks
        name="routing-tick",
    )  # fmt: skip
# Recordings: retention hourly (expired audio deleted here and at the carrier, expired personal
# data erased); every 10 minutes, recordings whose job was lost are enqueued again.
cron.register(
    apply_retention, settings.rq_queue, interval=3600, job_timeout=1800, result_ttl=3600,
    ttl=3600, name="recordings-retention",
)  # fmt: skip
cron.register(
    resume_stalled, settings.rq_queue, interval=600, job_timeout=120, result_ttl=600, ttl=600,
    name="recordings-resume",
)  # fmt: skip
