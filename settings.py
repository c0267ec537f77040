"""Typed settings read from the environment.

Production (``HOTLINE_ENV=production``) refuses to start without its secrets and names every
missing one in a single message. Development and tests generate their secrets once into the
instance folder (``instance/secrets.json``), so a newcomer runs the hotline with no set-up.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import functools
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ENVIRONMENTS = ("development", "test", "production")
ROOT = Path(__file__).resolve().parent
DEFAULT_TWILIO_API_BASE_URL = "https://api.twilio.com"
DEFAULT_TELEGRAM_API_BASE_URL = "https://api.telegram.org"
#: The messaging channels the app may answer (``MESSAGING_CHANNELS``).
MESSAGING_CHANNELS = ("sms", "whatsapp", "telegram")
#: setWebhook's secret_token: 1-256 characters of A-Z, a-z, 0-9, _ and -.
_TELEGRAM_SECRET = re.compile(r"^[A-Za-z0-9_-]{16,256}$")
_TELEGRAM_TOKEN = re.compile(r"^[0-9]{1,20}:[A-Za-z0-9_-]{20,100}$")

#: How the routing core may choose a handler (see ACD.md); routing.strategies uses this list.
ROUTING_STRATEGIES = (
    "longest-idle",
    "round-robin",
    "fewest-calls",
    "least-talk-time",
    "ring-all",
    "random",
    "linear",
)

#: The fallback journal's default size cap (FALLBACK_JOURNAL_MAX_BYTES).
JOURNAL_MAX_BYTES = 64 * 1024 * 1024

#: What one web process serves (``HOTLINE_SERVE``): the carrier's webhooks, the staff console,
#: or both (the default, for a single process in development and the tests). The Procfile's
#: ``web`` and ``console`` processes each serve one part, so neither can starve the other.
SERVE_PARTS = ("all", "webhooks", "console")

#: More proxies than this in front of one app is a typo, not a deployment.
MAX_TRUSTED_PROXIES = 10

#: The flood limits' window is at most a day; a blocklist entry lasts at most ten years.
MAX_CALL_LIMIT_WINDOW_S = 24 * 3600
MAX_BLOCKLIST_DAYS = 3650

#: The largest recording download (``RECORDING_MAX_BYTES``) by default: the longest recording
#: the carrier can hand over, in its format. Twilio ends a call after 4 hours (its default call
#: limit) and serves recordings as WAV, 8 kHz 16-bit mono PCM: 16,000 bytes a second, so
#: 230,400,000 bytes for 4 hours; 1 MiB more for the header. (An account with 24-hour calls
#: turned on needs 6 times as much.)
RECORDING_MAX_BYTES_DEFAULT = 4 * 3600 * 8000 * 2 + 1024 * 1024

#: What production cannot run without (environment variable names).
PRODUCTION_REQUIRED = (
    "SECRET_KEY",
    "DATABASE_URL",
    "REDIS_URL",
    "PUBLIC_BASE_URL",
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "HOTLINE_PHONE_HMAC_KEY",
    "HOTLINE_DATA_KEYS",
)


class SettingsError(RuntimeError):
    """The environment does not describe a runnable hotline."""


def env_int(value: str | None, default: int, name: str) -> int:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, not {value!r}") from None


def parse_data_keys(value: str, name: str = "HOTLINE_DATA_KEYS") -> dict[str, bytes]:
    """Parse ``id:base64key[,id:base64key…]``; the first key is the one new data is sealed with.

    Keys are 32 bytes (AES-256-GCM). Older keys stay listed so data sealed with them still opens.
    """
    keys: dict[str, bytes] = {}
    for part in value.split(","):
        part = part.strip()
        if not part:
            continue
        key_id, sep, encoded = part.partition(":")
        if not sep or not key_id or not encoded:
            raise SettingsError(f"{name}: each key is id:base64, got an entry without one")
        try:
            key = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        except ValueError:
            raise SettingsError(f"{name}: key {key_id!r} is not base64") from None
        if len(key) != 32:
            raise SettingsError(f"{name}: key {key_id!r} must be 32 bytes, is {len(key)}")
        keys[key_id] = key
    if not keys:
        raise SettingsError(f"{name} holds no key")
    return keys


def parse_hmac_key(value: str, name: str) -> bytes:
    """A base64 HMAC key of at least 32 bytes."""
    try:
        key = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except ValueError:
        raise SettingsError(f"{name} is not base64") from None
    if len(key) < 32:
        raise SettingsError(f"{name} must be at least 32 bytes")
    return key


def env_choice(value: str | None, default: str, name: str, choices: Iterable[str]) -> str:
    if value is None or value == "":
        return default
    known = tuple(choices)
    if value not in known:
        raise SettingsError(f"{name} must be one of {', '.join(known)}, not {value!r}")
    return value


def env_nonnegative(value: str | None, default: int, name: str) -> int:
    number = env_int(value, default, name)
    if number < 0:
        raise SettingsError(f"{name} must not be negative, not {number}")
    return number


def env_bounded(value: str | None, default: int, name: str, high: int) -> int:
    """A whole number from 0 to ``high``."""
    number = env_nonnegative(value, default, name)
    if number > high:
        raise SettingsError(f"{name} must be from 0 to {high}, not {number}")
    return number


#: The most conversations a handler may hold at once (the routing core's index scores leave room
#: for one digit of load: routing/lua/state.lua).
MAX_CHAT_CAPACITY = 9


def parse_codes(value: str, name: str) -> tuple[str, ...]:
    """A comma list of short codes (lower-case letters, digits, _), at least one."""
    codes = tuple(dict.fromkeys(part.strip() for part in value.split(",") if part.strip()))
    bad = [code for code in codes if not re.fullmatch(r"[a-z][a-z0-9_]{0,31}", code)]
    if bad or not codes:
        raise SettingsError(f"{name}: comma-separated codes like advised,referred (got {value!r})")
    return codes


def parse_time_zone(value: str, name: str = "HOTLINE_TIME_ZONE") -> str:
    """An IANA time zone name the system (or the ``tzdata`` package) knows."""
    name_given = value.strip()
    try:
        ZoneInfo(name_given)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(
            f"{name} must be an IANA time zone such as Europe/Kyiv or UTC, not {name_given!r}"
        ) from None
    return name_given


def env_bool(value: str | None, default: bool, name: str) -> bool:
    """``true``/``false`` (also 1/0, yes/no, on/off); anything else is an error, not a guess."""
    if value is None or value == "":
        return default
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be true or false, not {value!r}")


_LANGUAGE_CODE = re.compile(r"[a-z]{2}")


def parse_fallback_languages(
    value: str, name: str = "ROUTING_FALLBACK_LANGUAGES"
) -> tuple[tuple[str, str], ...]:
    """Parse ``handler:caller[,handler:caller…]`` language pairs (e.g. ``uk:ru,ru:uk``);
    an empty value means no fallback at all."""
    pairs: list[tuple[str, str]] = []
    for part in value.split(","):
        part = part.strip()
        if not part:
            continue
        own, sep, other = (piece.strip() for piece in part.partition(":"))
        if not sep or not _LANGUAGE_CODE.fullmatch(own) or not _LANGUAGE_CODE.fullmatch(other):
            raise SettingsError(
                f"{name}: each entry is handler-language:caller-language (like uk:ru), not {part!r}"
            )
        if own != other and (own, other) not in pairs:
            pairs.append((own, other))
    return tuple(pairs)


@dataclass(frozen=True)
class Settings:
    env: str
    secret_key: str
    database_url: str
    redis_url: str | None  # None: the run/test commands start the embedded redis-server
    public_base_url: str
    twilio_account_sid: str
    twilio_auth_token: str
    twilio_api_base_url: str
    hotline_number: str
    phone_hmac_key: bytes
    data_keys: dict[str, bytes] = field(repr=False)
    #: The HMAC key being replaced, for ``flask keys rehash`` (which recomputes the hashes under
    #: ``phone_hmac_key``); only that command reads it. Unset otherwise.
    phone_hmac_key_old: bytes | None = field(default=None, repr=False)
    instance_path: Path = ROOT / "instance"
    log_level: str = "INFO"
    ivr_max_attempts: int = 3
    message_max_seconds: int = 120
    #: The fallback journal stops growing at this size (a clear error line for each request
    #: it then cannot keep); an entry is about 1 kB.
    journal_max_bytes: int = JOURNAL_MAX_BYTES
    rq_queue: str = "hotline"
    routing_strategy: str = "longest-idle"
    routing_max_misses: int = 2
    routing_language_fallback_after_s: int = 60
    #: (handler language, caller language) pairs: a handler who speaks the first also takes
    #: callers of the second once they have waited ``routing_language_fallback_after_s``.
    routing_fallback_languages: tuple[tuple[str, str], ...] = (("uk", "ru"), ("ru", "uk"))
    #: Seconds an offer call rings at a handler before it counts as missed.
    routing_offer_timeout_s: int = 20
    #: Seconds past the ring time after which an offer whose end the carrier never reported (a
    #: lost callback, a worker killed while placing it) is counted as missed.
    routing_offer_grace_s: int = 60
    #: A short hold-music clip played to waiting callers between position announcements
    #: (empty: silence).
    routing_hold_music_url: str = ""
    #: Seconds a caller may wait; past it the next hold cycle sends them to the message box
    #: with a callback request (EXITWITHTIMEOUT). 0: no limit.
    routing_max_wait_s: int = 600
    #: Callers who may wait at once; one more goes to the message box (OVERFLOW). 0: no limit.
    routing_max_queue: int = 500
    #: Call-backs asked for while waiting: how many times the caller is called (each time a
    #: handler has accepted first), seconds between attempts, seconds their phone rings.
    routing_callback_attempts: int = 3
    routing_callback_retry_s: int = 120
    routing_callback_ring_s: int = 30
    #: Seconds between two runs of the routing tick (reconcile, expire lost offers, dispatch).
    routing_tick_s: int = 15
    #: Conversations (SMS, WhatsApp, Telegram) a handler may hold at once when not on a call
    #: (0 to MAX_CHAT_CAPACITY; 0: no conversation is offered to anyone).
    routing_chat_capacity: int = 3
    #: A handler holding more conversations than this (open or offered) is offered no call;
    #: None: the chat capacity (conversations never keep a call from a handler).
    routing_call_max_chats: int | None = None
    #: Seconds a conversation offer waits for the handler's accept before it goes to someone
    #: else (counted as missed).
    routing_chat_offer_timeout_s: int = 60
    #: Days a recording is kept (from its callback) before retention deletes it, in our store
    #: and at the carrier: messages left in the message box, recorded conversations. 0: kept.
    recording_retention_days_message: int = 90
    recording_retention_days_conversation: int = 90
    #: Days after a caller's last call before retention erases their encrypted number and its
    #: keyed hash (every anonymous record stays). 0: kept.
    personal_data_retention_days: int = 365
    #: Bytes a recording download from the carrier may have; a larger one is refused unstored.
    recording_max_bytes: int = RECORDING_MAX_BYTES_DEFAULT
    #: Staff must confirm each login with a TOTP code (off only in development and test).
    staff_require_totp: bool = True
    #: A console session ends after this many seconds without a request …
    staff_idle_timeout_s: int = 900
    #: … and this many seconds after the login, whatever the activity.
    staff_absolute_timeout_s: int = 12 * 3600
    #: Password hashes (argon2id: CPU and 64 MiB each) computed at once by the console's login
    #: and password pages across every process sharing the Redis; one more is answered at once
    #: with "try again" (503) instead of queueing for the CPU the webhooks need.
    staff_max_password_hashes: int = 2
    #: Reverse proxies in front of the app that append to ``X-Forwarded-For`` (and set
    #: ``X-Forwarded-Proto``): the client's address is taken that many hops from the right, so
    #: the login throttle, sessions and the audit log see it. 0: the headers are ignored (a
    #: client could forge them) and the address is the TCP peer's.
    trusted_proxies: int = 0
    #: Flood limits (``ivr/screening.py``): calls admitted from one number per window (more are
    #: answered with <Reject>); calls admitted from all withheld numbers together per window
    #: (they have no number to count by); the window in seconds. 0 turns a limit off.
    call_limit_per_number: int = 6
    call_limit_withheld: int = 30
    call_limit_window_s: int = 600
    #: Places in the queue one number may hold at once (waiting, offered, being called back);
    #: one more call from it goes to the message box. 0: no limit. Withheld numbers are exempt.
    routing_max_waiting_per_number: int = 1
    #: The longest a supervisor may put a number on the blocklist for.
    blocklist_max_days: int = 90
    #: What this process serves (``SERVE_PARTS``); the other part's paths answer 404.
    serve: str = "all"
    #: The URL ``flask migrate`` connects with (the role that owns the tables); empty: the
    #: app's ``database_url``. See docs/SECURITY.md, "The database roles".
    migration_database_url: str = field(default="", repr=False)
    #: What staff may record as a case's outcome (codes; the console translates them).
    case_outcomes: tuple[str, ...] = ("advised", "referred", "callback_arranged", "no_contact",
                                      "other")  # fmt: skip
    #: The hotline's time zone (IANA name): the console shows every time in it. Stored times
    #: stay UTC.
    time_zone: str = "Europe/Kyiv"
    #: The messaging channels answered (``MESSAGING_CHANNELS``); a text on another is ignored.
    messaging_channels: tuple[str, ...] = MESSAGING_CHANNELS
    #: The Telegram bot's token (from @BotFather) and the secret Telegram sends back with every
    #: update (``setWebhook``'s secret_token; ``flask carrier configure-telegram`` sets it).
    telegram_bot_token: str = field(default="", repr=False)
    telegram_webhook_secret: str = field(default="", repr=False)
    telegram_api_base_url: str = DEFAULT_TELEGRAM_API_BASE_URL
    #: The WhatsApp sender replies come from (``whatsapp:+…``; default the hotline's number).
    whatsapp_number: str = ""

    def __repr__(self) -> str:  # never print secrets
        return f"Settings(env={self.env!r}, public_base_url={self.public_base_url!r}, secrets=…)"

    @property
    def migrations_url(self) -> str:
        """The database URL ``flask migrate`` uses: the owner's when one is set."""
        return self.migration_database_url or self.database_url

    @property
    def active_key_id(self) -> str:
        return next(iter(self.data_keys))

    @functools.cached_property  # read on every webhook
    def journal_path(self) -> Path:
        return self.instance_path / "fallback-journal.bin"

    @functools.cached_property  # read on every webhook
    def prompt_audio_path(self) -> Path:
        return self.instance_path / "prompts"

    @functools.cached_property  # read on every webhook
    def embedded_redis_socket(self) -> Path:
        return self.instance_path / "redis.sock"

    def fallback_languages_for(self, languages: Iterable[str]) -> list[str]:
        """The fallback languages a handler speaking ``languages`` gets by default."""
        own = list(languages)
        found = [then for lang, then in self.routing_fallback_languages if lang in own]
        return [lang for lang in dict.fromkeys(found) if lang not in own]

    def replace(self, **changes: object) -> Settings:
        return dataclasses.replace(self, **changes)


def _generated_secrets(instance_path: Path) -> dict[str, str]:
    """Development secrets, generated once and kept in the instance folder (mode 0600).

    Processes that start together on a fresh instance (web workers, the RQ worker) all end up
    with the same secrets: the file is written whole under a temporary name, then linked into
    place, which fails for all but the first; the others read the first one's."""
    path = instance_path / "secrets.json"
    with contextlib.suppress(FileNotFoundError):
        return json.loads(path.read_text())  # type: ignore[no-any-return]
    instance_path.mkdir(mode=0o700, parents=True, exist_ok=True)  # secrets, database, journal
    data = {
        "SECRET_KEY": secrets.token_urlsafe(48),
        "HOTLINE_PHONE_HMAC_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "HOTLINE_DATA_KEYS": "dev1:" + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        # Credentials of the local emulator account (the embedded carrier).
        "TWILIO_ACCOUNT_SID": "AC" + secrets.token_hex(16),
        "TWILIO_AUTH_TOKEN": secrets.token_hex(16),
    }
    fd, temporary = tempfile.mkstemp(dir=instance_path, prefix=".secrets-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as fh:  # mkstemp: mode 0600
            json.dump(data, fh, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
        os.link(temporary, path)
    except FileExistsError:  # another process was first
        return json.loads(path.read_text())  # type: ignore[no-any-return]
    finally:
        os.unlink(temporary)
    return data


def messaging_settings(
    env: str, env_map: Mapping[str, str], get: Callable[[str, str], str]
) -> dict[str, object]:
    """The messaging settings. ``MESSAGING_CHANNELS`` defaults to every channel, but in
    production to sms and whatsapp (Twilio's, needing nothing more) plus telegram once
    ``TELEGRAM_BOT_TOKEN`` is set. Telegram turned on in production needs its token and webhook
    secret; elsewhere the secret is derived from ``SECRET_KEY`` (and the token stays empty until
    set: replies to Telegram then fail, visibly)."""
    raw = env_map.get("MESSAGING_CHANNELS")
    token = env_map.get("TELEGRAM_BOT_TOKEN", "")
    secret = env_map.get("TELEGRAM_WEBHOOK_SECRET", "")
    if raw is None:  # production: Telegram once its token is set; elsewhere every channel
        on = env != "production" or bool(token)
        raw = ",".join(c for c in MESSAGING_CHANNELS if c != "telegram" or on)
    channels = tuple(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))
    unknown = [c for c in channels if c not in MESSAGING_CHANNELS]
    if unknown:
        raise SettingsError(
            f"MESSAGING_CHANNELS: a comma list of {', '.join(MESSAGING_CHANNELS)} (or empty), "
            f"not {raw!r}"
        )
    if "telegram" in channels and env == "production":
        missing = [n for n, v in (("TELEGRAM_BOT_TOKEN", token),
                                  ("TELEGRAM_WEBHOOK_SECRET", secret)) if not v]  # fmt: skip
        if missing:
            raise SettingsError(
                "MESSAGING_CHANNELS includes telegram: set "
                + ", ".join(missing)
                + " (or leave telegram out of MESSAGING_CHANNELS)"
            )
    if not secret and get("SECRET_KEY", ""):
        digest = hmac.new(get("SECRET_KEY", "").encode(), b"telegram-webhook", hashlib.sha256)
        secret = base64.urlsafe_b64encode(digest.digest()).decode().rstrip("=")
    if secret and not _TELEGRAM_SECRET.match(secret):
        raise SettingsError(
            "TELEGRAM_WEBHOOK_SECRET must be 16 to 256 characters of A-Z, a-z, 0-9, _ and -"
        )
    if token and not _TELEGRAM_TOKEN.match(token):
        raise SettingsError("TELEGRAM_BOT_TOKEN must look like 123456:ABC… (from @BotFather)")
    base = env_map.get("TELEGRAM_API_BASE_URL") or DEFAULT_TELEGRAM_API_BASE_URL
    if not base.startswith(("https://", "http://")):
        raise SettingsError("TELEGRAM_API_BASE_URL must be an http(s) URL")
    whatsapp = env_map.get("WHATSAPP_NUMBER", "")
    if whatsapp and not re.fullmatch(r"(whatsapp:)?\+[1-9][0-9]{6,14}", whatsapp):
        raise SettingsError("WHATSAPP_NUMBER must be an E.164 number (+…), optionally whatsapp:+…")
    hotline = get("HOTLINE_NUMBER", "+15005550006")
    whatsapp = whatsapp or hotline
    return {
        "messaging_channels": channels,
        "telegram_bot_token": token,
        "telegram_webhook_secret": secret,
        "telegram_api_base_url": base.rstrip("/"),
        "whatsapp_number": whatsapp if whatsapp.startswith("whatsapp:") else "whatsapp:" + whatsapp,
    }


def load_settings(environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Build settings from the environment (``os.environ`` by default), then apply overrides."""
    env_map = dict(os.environ if environ is None else environ)
    env = env_map.get("HOTLINE_ENV", "development")
    if env not in ENVIRONMENTS:
        raise SettingsError(f"HOTLINE_ENV must be one of {', '.join(ENVIRONMENTS)}, not {env!r}")
    instance_path = Path(env_map.get("HOTLINE_INSTANCE_PATH") or ROOT / "instance")

    if env == "production":
        missing = [name for name in PRODUCTION_REQUIRED if not env_map.get(name)]
        if missing:
            raise SettingsError(
                "HOTLINE_ENV=production refuses to start: set "
                + ", ".join(missing)
                + " (see README, 'Production')."
            )
        generated: dict[str, str] = {}
    else:
        generated = _generated_secrets(instance_path)

    def get(name: str, default: str = "") -> str:
        return env_map.get(name) or generated.get(name) or default

    hmac_key = parse_hmac_key(get("HOTLINE_PHONE_HMAC_KEY"), "HOTLINE_PHONE_HMAC_KEY")
    hmac_key_old = None
    if env_map.get("HOTLINE_PHONE_HMAC_KEY_OLD"):
        hmac_key_old = parse_hmac_key(
            env_map["HOTLINE_PHONE_HMAC_KEY_OLD"], "HOTLINE_PHONE_HMAC_KEY_OLD"
        )
        if hmac_key_old == hmac_key:
            raise SettingsError(
                "HOTLINE_PHONE_HMAC_KEY_OLD is HOTLINE_PHONE_HMAC_KEY: set it to the key being "
                "replaced, or unset it"
            )

    settings = Settings(
        env=env,
        secret_key=get("SECRET_KEY"),
        database_url=get("DATABASE_URL", f"sqlite:///{instance_path / 'hotline.sqlite3'}"),
        redis_url=env_map.get("REDIS_URL") or None,
        public_base_url=get("PUBLIC_BASE_URL", "http://127.0.0.1:5000").rstrip("/"),
        twilio_account_sid=get("TWILIO_ACCOUNT_SID"),
        twilio_auth_token=get("TWILIO_AUTH_TOKEN"),
        twilio_api_base_url=get("TWILIO_API_BASE_URL", DEFAULT_TWILIO_API_BASE_URL).rstrip("/"),
        hotline_number=get("HOTLINE_NUMBER", "+15005550006"),
        phone_hmac_key=hmac_key,
        phone_hmac_key_old=hmac_key_old,
        data_keys=parse_data_keys(get("HOTLINE_DATA_KEYS")),
        instance_path=instance_path,
        log_level=get("LOG_LEVEL", "INFO").upper(),
        ivr_max_attempts=env_int(env_map.get("IVR_MAX_ATTEMPTS"), 3, "IVR_MAX_ATTEMPTS"),
        message_max_seconds=env_int(env_map.get("MESSAGE_MAX_SECONDS"), 120, "MESSAGE_MAX_SECONDS"),
        journal_max_bytes=env_nonnegative(
            env_map.get("FALLBACK_JOURNAL_MAX_BYTES"),
            JOURNAL_MAX_BYTES,
            "FALLBACK_JOURNAL_MAX_BYTES",
        ),
        routing_strategy=env_choice(
            env_map.get("ROUTING_STRATEGY"), "longest-idle", "ROUTING_STRATEGY", ROUTING_STRATEGIES
        ),
        routing_max_misses=env_nonnegative(
            env_map.get("ROUTING_MAX_MISSES"), 2, "ROUTING_MAX_MISSES"
        ),
        routing_language_fallback_after_s=env_nonnegative(
            env_map.get("ROUTING_LANGUAGE_FALLBACK_AFTER_S"),
            60,
            "ROUTING_LANGUAGE_FALLBACK_AFTER_S",
        ),
        routing_fallback_languages=parse_fallback_languages(
            env_map.get("ROUTING_FALLBACK_LANGUAGES", "uk:ru,ru:uk")
        ),
        routing_offer_timeout_s=env_nonnegative(
            env_map.get("ROUTING_OFFER_TIMEOUT_S"), 20, "ROUTING_OFFER_TIMEOUT_S"
        ),
        routing_offer_grace_s=env_nonnegative(
            env_map.get("ROUTING_OFFER_GRACE_S"), 60, "ROUTING_OFFER_GRACE_S"
        ),
        routing_hold_music_url=env_map.get("ROUTING_HOLD_MUSIC_URL", ""),
        routing_max_wait_s=env_nonnegative(
            env_map.get("ROUTING_MAX_WAIT_S"), 600, "ROUTING_MAX_WAIT_S"
        ),
        routing_max_queue=env_nonnegative(
            env_map.get("ROUTING_MAX_QUEUE"), 500, "ROUTING_MAX_QUEUE"
        ),
        routing_callback_attempts=env_nonnegative(
            env_map.get("ROUTING_CALLBACK_ATTEMPTS"), 3, "ROUTING_CALLBACK_ATTEMPTS"
        ),
        routing_callback_retry_s=env_nonnegative(
            env_map.get("ROUTING_CALLBACK_RETRY_S"), 120, "ROUTING_CALLBACK_RETRY_S"
        ),
        routing_callback_ring_s=env_nonnegative(
            env_map.get("ROUTING_CALLBACK_RING_S"), 30, "ROUTING_CALLBACK_RING_S"
        ),
        routing_tick_s=env_nonnegative(env_map.get("ROUTING_TICK_S"), 15, "ROUTING_TICK_S"),
        routing_chat_capacity=env_bounded(
            env_map.get("ROUTING_CHAT_CAPACITY"), 3, "ROUTING_CHAT_CAPACITY", MAX_CHAT_CAPACITY
        ),
        routing_call_max_chats=(
            env_bounded(
                env_map.get("ROUTING_CALL_MAX_CHATS"),
                0,
                "ROUTING_CALL_MAX_CHATS",
                MAX_CHAT_CAPACITY,
            )
            if env_map.get("ROUTING_CALL_MAX_CHATS")
            else None
        ),
        routing_chat_offer_timeout_s=env_nonnegative(
            env_map.get("ROUTING_CHAT_OFFER_TIMEOUT_S"), 60, "ROUTING_CHAT_OFFER_TIMEOUT_S"
        ),
        recording_retention_days_message=env_nonnegative(
            env_map.get("RECORDING_RETENTION_DAYS_MESSAGE"), 90, "RECORDING_RETENTION_DAYS_MESSAGE"
        ),
        recording_retention_days_conversation=env_nonnegative(
            env_map.get("RECORDING_RETENTION_DAYS_CONVERSATION"),
            90,
            "RECORDING_RETENTION_DAYS_CONVERSATION",
        ),
        personal_data_retention_days=env_nonnegative(
            env_map.get("PERSONAL_DATA_RETENTION_DAYS"), 365, "PERSONAL_DATA_RETENTION_DAYS"
        ),
        recording_max_bytes=env_nonnegative(
            env_map.get("RECORDING_MAX_BYTES"), RECORDING_MAX_BYTES_DEFAULT, "RECORDING_MAX_BYTES"
        ),
        staff_require_totp=env_bool(env_map.get("STAFF_REQUIRE_TOTP"), True, "STAFF_REQUIRE_TOTP"),
        staff_idle_timeout_s=env_nonnegative(
            env_map.get("STAFF_IDLE_TIMEOUT_S"), 900, "STAFF_IDLE_TIMEOUT_S"
        ),
        staff_absolute_timeout_s=env_nonnegative(
            env_map.get("STAFF_ABSOLUTE_TIMEOUT_S"), 12 * 3600, "STAFF_ABSOLUTE_TIMEOUT_S"
        ),
        staff_max_password_hashes=env_int(
            env_map.get("STAFF_MAX_PASSWORD_HASHES"), 2, "STAFF_MAX_PASSWORD_HASHES"
        ),
        trusted_proxies=env_nonnegative(env_map.get("TRUSTED_PROXIES"), 0, "TRUSTED_PROXIES"),
        call_limit_per_number=env_nonnegative(
            env_map.get("CALL_LIMIT_PER_NUMBER"), 6, "CALL_LIMIT_PER_NUMBER"
        ),
        call_limit_withheld=env_nonnegative(
            env_map.get("CALL_LIMIT_WITHHELD"), 30, "CALL_LIMIT_WITHHELD"
        ),
        call_limit_window_s=env_nonnegative(
            env_map.get("CALL_LIMIT_WINDOW_S"), 600, "CALL_LIMIT_WINDOW_S"
        ),
        routing_max_waiting_per_number=env_nonnegative(
            env_map.get("ROUTING_MAX_WAITING_PER_NUMBER"), 1, "ROUTING_MAX_WAITING_PER_NUMBER"
        ),
        blocklist_max_days=env_nonnegative(
            env_map.get("BLOCKLIST_MAX_DAYS"), 90, "BLOCKLIST_MAX_DAYS"
        ),
        serve=env_choice(env_map.get("HOTLINE_SERVE"), "all", "HOTLINE_SERVE", SERVE_PARTS),
        migration_database_url=env_map.get("MIGRATION_DATABASE_URL", ""),
        case_outcomes=parse_codes(
            env_map.get("CASE_OUTCOMES", "advised,referred,callback_arranged,no_contact,other"),
            "CASE_OUTCOMES",
        ),
        time_zone=parse_time_zone(env_map.get("HOTLINE_TIME_ZONE", "Europe/Kyiv")),
        **messaging_settings(env, env_map, get),
    )
    if not settings.staff_require_totp and settings.env not in ("development", "test"):
        raise SettingsError("STAFF_REQUIRE_TOTP may be turned off only in development or test")
    if settings.recording_max_bytes == 0:
        raise SettingsError("RECORDING_MAX_BYTES must be positive: the largest recording, bytes")
    if settings.staff_idle_timeout_s <= 0 or settings.staff_absolute_timeout_s <= 0:
        raise SettingsError("STAFF_IDLE_TIMEOUT_S and STAFF_ABSOLUTE_TIMEOUT_S must be positive")
    if settings.staff_max_password_hashes < 1:
        raise SettingsError(
            "STAFF_MAX_PASSWORD_HASHES is how many password hashes may be computed at once "
            f"(1 or more), not {settings.staff_max_password_hashes}"
        )
    if settings.trusted_proxies > MAX_TRUSTED_PROXIES:
        raise SettingsError(
            f"TRUSTED_PROXIES is the number of reverse proxies in front of the app (0 to "
            f"{MAX_TRUSTED_PROXIES}), not {settings.trusted_proxies}"
        )
    if not 1 <= settings.call_limit_window_s <= MAX_CALL_LIMIT_WINDOW_S:
        raise SettingsError(
            f"CALL_LIMIT_WINDOW_S is the flood limits' window in seconds (1 to "
            f"{MAX_CALL_LIMIT_WINDOW_S}), not {settings.call_limit_window_s}"
        )
    if not 1 <= settings.blocklist_max_days <= MAX_BLOCKLIST_DAYS:
        raise SettingsError(
            f"BLOCKLIST_MAX_DAYS must be from 1 to {MAX_BLOCKLIST_DAYS}, "
            f"not {settings.blocklist_max_days}"
        )
    if settings.env == "production" and not settings.public_base_url.startswith("https://"):
        raise SettingsError("PUBLIC_BASE_URL must be https:// in production")
    if settings.redis_url is None and settings.env == "production":
        raise SettingsError("REDIS_URL must be set in production")
    return settings.replace(**overrides) if overrides else settings
