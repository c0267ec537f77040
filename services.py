"""The app's connections to the outside: settings, Redis, the Twilio REST client, data sealing.

``init_app`` builds them for one app; Redis and Twilio connect on first use, nothing at import.
``services()`` is the current app's. Every package may import this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import redis
from flask import Flask, current_app
from twilio.rest import Client

from dataprotection import DataProtector
from settings import Settings


def redis_url_for(settings: Settings) -> str:
    """``REDIS_URL`` if set, else the embedded redis-server's socket under ``instance/``."""
    return settings.redis_url or f"unix://{settings.embedded_redis_socket}"


@dataclass
class Services:
    settings: Settings
    protector: DataProtector
    redis_client: redis.Redis | None = field(default=None, repr=False)
    twilio_client: Client | None = field(default=None, repr=False)

    @property
    def redis(self) -> redis.Redis:
        if self.redis_client is None:
            self.redis_client = redis.Redis.from_url(
                redis_url_for(self.settings), socket_timeout=5, socket_connect_timeout=2
            )
        return self.redis_client

    @property
    def twilio(self) -> Client:
        """twilio-python's REST client at ``TWILIO_API_BASE_URL`` (Twilio or the emulator)."""
        if self.twilio_client is None:
            client = Client(self.settings.twilio_account_sid, self.settings.twilio_auth_token)
            client.api.base_url = self.settings.twilio_api_base_url
            self.twilio_client = client
        return self.twilio_client

    def dispose(self) -> None:
        """Close the Redis pool (before a fork, and at shutdown)."""
        if self.redis_client is not None:
            self.redis_client.close()
            self.redis_client = None


def init_app(app: Flask, settings: Settings) -> Services:
    svc = Services(settings, DataProtector(settings.phone_hmac_key, settings.data_keys))
    app.extensions["hotline"] = svc
    return svc


def services() -> Services:
    """The current app's services."""
    return current_app.extensions["hotline"]  # type: ignore[no-any-return]
