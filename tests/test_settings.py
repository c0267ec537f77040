"""Settings: production fails loudly and names every gap; development makes its secrets once."""

from __future__ import annotations

import base64
import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from dataprotection import DataProtector, DecryptionError
from settings import PRODUCTION_REQUIRED, ROOT, SettingsError, load_settings


def b64key(byte: int, length: int = 32) -> str:
    return base64.urlsafe_b64encode(bytes([byte]) * length).decode()


KEY_NEW, KEY_OLD = b64key(0xA1), b64key(0xB2)
PRODUCTION = {
    "HOTLINE_ENV": "production",
    "SECRET_KEY": "production-secret-key-" + "s" * 40,
    "DATABASE_URL": "postgresql+psycopg://hotline:db-password-x7@db.internal/hotline",
    "REDIS_URL": "redis://:redis-password-y8@redis.internal:6379/0",
    "PUBLIC_BASE_URL": "https://hotline.example.org/",
    "TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
    "TWILIO_AUTH_TOKEN": "twilio-auth-token-" + "9" * 14,
    "HOTLINE_PHONE_HMAC_KEY": b64key(0xC3),
    "HOTLINE_DATA_KEYS": f"k2:{KEY_NEW},k1:{KEY_OLD}",
}


@pytest.fixture
def production(tmp_path: Path) -> dict[str, str]:
    return {**PRODUCTION, "HOTLINE_INSTANCE_PATH": str(tmp_path / "instance")}


def named_settings(message: str) -> set[str]:
    return {name for name in PRODUCTION_REQUIRED if re.search(rf"\b{name}\b", message)}


@pytest.mark.parametrize(
    "missing",
    [
        PRODUCTION_REQUIRED,
        *[(name,) for name in PRODUCTION_REQUIRED],
        ("SECRET_KEY", "HOTLINE_DATA_KEYS"),
        ("DATABASE_URL", "REDIS_URL", "TWILIO_AUTH_TOKEN"),
    ],
    ids=lambda names: "+".join(names) if len(names) < len(PRODUCTION_REQUIRED) else "all",
)
def test_production_names_every_missing_setting_at_once(production, missing) -> None:
    environ = {k: v for k, v in production.items() if k not in missing}
    with pytest.raises(SettingsError) as raised:
        load_settings(environ)
    assert named_settings(str(raised.value)) == set(missing)


def test_production_treats_empty_values_as_missing(production) -> None:
    environ = {**production, "SECRET_KEY": "", "TWILIO_AUTH_TOKEN": ""}
    with pytest.raises(SettingsError) as raised:
        load_settings(environ)
    assert named_settings(str(raised.value)) == {"SECRET_KEY", "TWILIO_AUTH_TOKEN"}


def test_complete_production_environment_loads(production) -> None:
    settings = load_settings(production)
    assert settings.env == "production"
    assert settings.secret_key == PRODUCTION["SECRET_KEY"]
    assert settings.database_url == PRODUCTION["DATABASE_URL"]
    assert settings.redis_url == PRODUCTION["REDIS_URL"]
    assert settings.public_base_url == "https://hotline.example.org"
    assert settings.twilio_auth_token == PRODUCTION["TWILIO_AUTH_TOKEN"]
    assert settings.phone_hmac_key == bytes([0xC3]) * 32
    assert list(settings.data_keys) == ["k2", "k1"]
    assert settings.active_key_id == "k2"
    # Production never generates secrets of its own.
    assert not (Path(production["HOTLINE_INSTANCE_PATH"]) / "secrets.json").exists()


@pytest.mark.parametrize("url", ["http://hotline.example.org", "hotline.example.org"])
def test_production_refuses_a_public_url_without_https(production, url) -> None:
    with pytest.raises(SettingsError, match="PUBLIC_BASE_URL"):
        load_settings({**production, "PUBLIC_BASE_URL": url})


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"HOTLINE_ENV": "prod"}, "HOTLINE_ENV"),
        ({"HOTLINE_ENV": "Production"}, "HOTLINE_ENV"),
        ({"IVR_MAX_ATTEMPTS": "three"}, "IVR_MAX_ATTEMPTS"),
        ({"MESSAGE_MAX_SECONDS": "12.5"}, "MESSAGE_MAX_SECONDS"),
        ({"HOTLINE_DATA_KEYS": KEY_NEW}, "HOTLINE_DATA_KEYS"),  # no id
        ({"HOTLINE_DATA_KEYS": "k1:"}, "HOTLINE_DATA_KEYS"),
        ({"HOTLINE_DATA_KEYS": "k1:" + b64key(1, 16)}, "32 bytes"),
        ({"HOTLINE_DATA_KEYS": "k1:ключ-не-base64"}, "not base64"),
        ({"HOTLINE_DATA_KEYS": " , "}, "HOTLINE_DATA_KEYS"),
        ({"HOTLINE_PHONE_HMAC_KEY": b64key(1, 8)}, "HOTLINE_PHONE_HMAC_KEY"),
        ({"CALL_LIMIT_PER_NUMBER": "-1"}, "CALL_LIMIT_PER_NUMBER"),
        ({"CALL_LIMIT_WITHHELD": "many"}, "CALL_LIMIT_WITHHELD"),
        ({"CALL_LIMIT_WINDOW_S": "0"}, "CALL_LIMIT_WINDOW_S"),
        ({"CALL_LIMIT_WINDOW_S": "86401"}, "CALL_LIMIT_WINDOW_S"),
        ({"ROUTING_MAX_WAITING_PER_NUMBER": "one"}, "ROUTING_MAX_WAITING_PER_NUMBER"),
        ({"BLOCKLIST_MAX_DAYS": "0"}, "BLOCKLIST_MAX_DAYS"),
        ({"BLOCKLIST_MAX_DAYS": "3651"}, "BLOCKLIST_MAX_DAYS"),
        ({"HOTLINE_SERVE": "web"}, "HOTLINE_SERVE must be one of all, webhooks, console"),
        ({"STAFF_MAX_PASSWORD_HASHES": "0"}, "STAFF_MAX_PASSWORD_HASHES"),
        ({"STAFF_MAX_PASSWORD_HASHES": "two"}, "STAFF_MAX_PASSWORD_HASHES"),
        ({"HOTLINE_TIME_ZONE": "Kyiv"}, "HOTLINE_TIME_ZONE must be an IANA time zone"),
        ({"HOTLINE_TIME_ZONE": "../../etc/passwd"}, "HOTLINE_TIME_ZONE"),
        ({"HOTLINE_TIME_ZONE": ""}, "HOTLINE_TIME_ZONE"),
    ],
)
def test_bad_values_are_clear_errors(production, changes, named) -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings({**production, **changes})
    assert named in str(raised.value)


def test_the_time_zone_is_the_hotlines_and_kyiv_by_default(production) -> None:
    assert load_settings(production).time_zone == "Europe/Kyiv"
    assert load_settings({**production, "HOTLINE_TIME_ZONE": "UTC"}).time_zone == "UTC"


def test_the_flood_limits_are_read_from_the_environment(production) -> None:
    settings = load_settings(
        {**production, "CALL_LIMIT_PER_NUMBER": "3", "CALL_LIMIT_WITHHELD": "0",
         "CALL_LIMIT_WINDOW_S": "3600", "ROUTING_MAX_WAITING_PER_NUMBER": "2",
         "BLOCKLIST_MAX_DAYS": "30"}
    )  # fmt: skip
    assert (settings.call_limit_per_number, settings.call_limit_withheld) == (3, 0)
    assert settings.call_limit_window_s == 3600 and settings.blocklist_max_days == 30
    assert settings.routing_max_waiting_per_number == 2
    defaults = load_settings(production)
    assert (defaults.call_limit_per_number, defaults.call_limit_withheld) == (6, 30)
    assert (defaults.call_limit_window_s, defaults.routing_max_waiting_per_number) == (600, 1)
    assert defaults.blocklist_max_days == 90


def test_a_bad_value_is_an_error_outside_production_too(tmp_path: Path) -> None:
    environ = {"HOTLINE_INSTANCE_PATH": str(tmp_path), "IVR_MAX_ATTEMPTS": "3x"}
    with pytest.raises(SettingsError, match="IVR_MAX_ATTEMPTS"):
        load_settings(environ)


@pytest.mark.parametrize("env", ["development", "test"])
def test_development_generates_secrets_once(tmp_path: Path, env: str) -> None:
    instance = tmp_path / "instance"
    environ = {"HOTLINE_ENV": env, "HOTLINE_INSTANCE_PATH": str(instance)}
    first = load_settings(environ)
    secrets_file = instance / "secrets.json"
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    stored = json.loads(secrets_file.read_text())
    assert stored["SECRET_KEY"] == first.secret_key
    assert len(first.secret_key) >= 32
    assert len(first.phone_hmac_key) == 32
    assert all(len(key) == 32 for key in first.data_keys.values())

    before = secrets_file.read_bytes()
    second = load_settings(environ)
    assert secrets_file.read_bytes() == before
    for attr in ("secret_key", "phone_hmac_key", "data_keys", "twilio_auth_token"):
        assert getattr(second, attr) == getattr(first, attr)
    # A new instance folder gets secrets of its own.
    other = load_settings({**environ, "HOTLINE_INSTANCE_PATH": str(tmp_path / "other")})
    assert other.secret_key != first.secret_key
    assert other.phone_hmac_key != first.phone_hmac_key


def test_rotated_key_still_opens_old_data_and_new_data_uses_the_first(production) -> None:
    hmac_key = bytes([0xC3]) * 32
    before_rotation = DataProtector(hmac_key, {"k1": base64.urlsafe_b64decode(KEY_OLD)})
    old = before_rotation.seal_text("+79161234567", associated=b"caller")
    assert old.key_id == "k1"

    settings = load_settings(production)  # HOTLINE_DATA_KEYS = k2 (new), k1 (old)
    protector = DataProtector(settings.phone_hmac_key, settings.data_keys)
    assert protector.open_text(old, associated=b"caller") == "+79161234567"
    new = protector.seal_text("+79161234567", associated=b"caller")
    assert new.key_id == "k2"
    assert new.ciphertext != old.ciphertext
    assert protector.open_text(new, associated=b"caller") == "+79161234567"
    # The old key alone cannot open the new data; nor can the wrong associated data.
    with pytest.raises(DecryptionError):
        before_rotation.open_text(new, associated=b"caller")
    with pytest.raises(DecryptionError):
        protector.open_text(old, associated=b"another caller")
    # Lookups keep working across the rotation: the HMAC key did not change.
    assert protector.lookup_hash("+79161234567") == before_rotation.lookup_hash("+79161234567")


def test_repr_shows_no_secret(production) -> None:
    settings = load_settings(production)
    shown = repr(settings) + str(settings) + f"{settings}"
    secrets = [
        PRODUCTION["SECRET_KEY"],
        PRODUCTION["TWILIO_AUTH_TOKEN"],
        PRODUCTION["HOTLINE_PHONE_HMAC_KEY"],
        KEY_NEW,
        KEY_OLD,
        "db-password-x7",
        "redis-password-y8",
        repr(settings.phone_hmac_key),
        repr(settings.data_keys["k1"]),
    ]
    for secret in secrets:
        assert secret not in shown


def test_importing_app_does_no_work(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file: nothing can be created below it")
    environ = {
        key: value for key, value in os.environ.items() if not key.startswith(("HOTLINE_", "TEST_"))
    }
    environ.update(
        HOTLINE_ENV="production",
        HOTLINE_INSTANCE_PATH=str(blocker / "instance"),
        DATABASE_URL="bogus+nodriver://nobody@127.0.0.1:1/nothing",
        REDIS_URL="redis://127.0.0.1:1/0",
        PYTHONDONTWRITEBYTECODE="1",
    )
    before = sorted(tmp_path.rglob("*"))
    instance_before = sorted((ROOT / "instance").rglob("*"))
    done = subprocess.run(
        [sys.executable, "-c", "import app; print(sorted(k for k in vars(app) if k == 'app'))"],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"  # the WSGI app was not built
    assert sorted(tmp_path.rglob("*")) == before
    assert sorted((ROOT / "instance").rglob("*")) == instance_before


def _secret_key_of(instance: str, start, results) -> None:
    start.wait()  # all at once
    environ = {"HOTLINE_ENV": "development", "HOTLINE_INSTANCE_PATH": instance}
    try:
        results.put(load_settings(environ).secret_key)
    except Exception as exc:
        results.put(f"error: {exc!r}")


def test_processes_starting_together_share_the_generated_secrets(tmp_path: Path) -> None:
    """Web workers and the RQ worker start at once on a fresh instance: one set of secrets."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    for attempt in range(3):
        instance = str(tmp_path / f"instance{attempt}")
        start, results = ctx.Barrier(8), ctx.Queue()
        procs = [
            ctx.Process(target=_secret_key_of, args=(instance, start, results)) for _ in range(8)
        ]
        for proc in procs:
            proc.start()
        keys = [results.get(timeout=60) for _ in procs]
        for proc in procs:
            proc.join(timeout=10)
        assert len(set(keys)) == 1 and not keys[0].startswith("error"), keys
        assert [p.name for p in Path(instance).iterdir()] == ["secrets.json"]


def test_serving_part_and_migration_url(production) -> None:
    """One part per Procfile process; migrations may connect as another role than the app."""
    assert load_settings(production).serve == "all"
    assert load_settings({**production, "HOTLINE_SERVE": "console"}).serve == "console"
    settings = load_settings(production)
    assert settings.migrations_url == production["DATABASE_URL"]
    owner = "postgresql+psycopg://hotline_owner:owner-pw@db.internal/hotline"
    separate = load_settings({**production, "MIGRATION_DATABASE_URL": owner})
    assert separate.migrations_url == owner and separate.database_url == production["DATABASE_URL"]
    assert "owner-pw" not in repr(separate)
