"""The messaging settings: typed, checked, required in production only for Telegram turned on."""

from __future__ import annotations

import base64
import os

import pytest

from settings import SettingsError, load_settings

KEY = base64.urlsafe_b64encode(os.urandom(32)).decode()
PRODUCTION = {
    "HOTLINE_ENV": "production", "SECRET_KEY": "s" * 40, "DATABASE_URL": "sqlite:///x.db",
    "REDIS_URL": "redis://localhost", "PUBLIC_BASE_URL": "https://hotline.example.org",
    "TWILIO_ACCOUNT_SID": "AC" + "1" * 32, "TWILIO_AUTH_TOKEN": "t" * 32,
    "HOTLINE_PHONE_HMAC_KEY": KEY, "HOTLINE_DATA_KEYS": "k1:" + KEY,
}  # fmt: skip
TOKEN = "123456789:AAH" + "x" * 32


def test_production_with_telegram_needs_its_token_and_secret():
    assert load_settings(PRODUCTION).messaging_channels == ("sms", "whatsapp")
    with pytest.raises(SettingsError, match="TELEGRAM_BOT_TOKEN, TELEGRAM_WEBHOOK_SECRET"):
        load_settings({**PRODUCTION, "MESSAGING_CHANNELS": "sms,telegram"})
    with pytest.raises(SettingsError, match="set TELEGRAM_WEBHOOK_SECRET"):
        load_settings({**PRODUCTION, "TELEGRAM_BOT_TOKEN": TOKEN})  # the token turns it on
    full = load_settings(
        {**PRODUCTION, "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_WEBHOOK_SECRET": "a" * 32}
    )
    assert full.telegram_webhook_secret == "a" * 32
    assert full.messaging_channels == ("sms", "whatsapp", "telegram")
    assert full.whatsapp_number == "whatsapp:+15005550006"
    assert TOKEN not in repr(full)


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("MESSAGING_CHANNELS", "sms,viber", "MESSAGING_CHANNELS"),
        ("TELEGRAM_WEBHOOK_SECRET", "short", "TELEGRAM_WEBHOOK_SECRET"),
        ("TELEGRAM_WEBHOOK_SECRET", "ü" * 20, "TELEGRAM_WEBHOOK_SECRET"),
        ("TELEGRAM_BOT_TOKEN", "not-a-token", "TELEGRAM_BOT_TOKEN"),
        ("TELEGRAM_API_BASE_URL", "ftp://x", "TELEGRAM_API_BASE_URL"),
        ("WHATSAPP_NUMBER", "12345", "WHATSAPP_NUMBER"),
    ],
)
def test_a_bad_messaging_setting_is_named(tmp_path, name, value, says):
    environ = {"HOTLINE_ENV": "test", "HOTLINE_INSTANCE_PATH": str(tmp_path), name: value}
    with pytest.raises(SettingsError, match=says):
        load_settings(environ)


def test_development_derives_a_webhook_secret_that_telegram_accepts(tmp_path):
    settings = load_settings({"HOTLINE_ENV": "development", "HOTLINE_INSTANCE_PATH": str(tmp_path)})
    secret = settings.telegram_webhook_secret
    assert 16 <= len(secret) <= 256 and secret.replace("-", "").replace("_", "").isalnum()
    again = load_settings({"HOTLINE_ENV": "development", "HOTLINE_INSTANCE_PATH": str(tmp_path)})
    assert again.telegram_webhook_secret == secret
