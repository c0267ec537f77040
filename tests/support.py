"""What tests reach inside an app: its database, its services and its job queue, in one handle."""

from __future__ import annotations

from typing import Any

from flask import Flask
from rq import Queue

import jobs


class Handles:
    """An app's ``db.Database`` (engine, session factory), ``services.Services`` (settings,
    protector, Redis, Twilio) and RQ queue."""

    def __init__(self, app: Flask):
        object.__setattr__(self, "app", app)
        object.__setattr__(self, "database", app.extensions["db"])
        object.__setattr__(self, "services", app.extensions["hotline"])

    def __getattr__(self, name: str) -> Any:
        return getattr(self.services, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.services, name, value)  # e.g. ``handles(app).settings = …`` for one test

    @property
    def engine(self) -> Any:
        return self.database.engine

    @property
    def session_factory(self) -> Any:
        return self.database.session_factory

    @property
    def queue(self) -> Queue:
        return self.app.extensions["jobs"].queue(self.services.redis)

    @property
    def urgent_queue(self) -> Queue:
        return self.app.extensions["jobs"].queue(self.services.redis, urgent=True)

    def queued(self) -> int:
        """Jobs waiting in both queues."""
        return self.queue.count + self.urgent_queue.count

    def dispose(self) -> None:
        self.database.dispose()
        self.services.dispose()


def handles(app: Flask) -> Handles:
    return Handles(app)


def run_jobs(app: Flask, **options: Any) -> bool:
    """Run the queued jobs in this process with the app's worker class (burst); whether any ran."""
    return jobs.run_queued_jobs(app, **options)
