"""Call handlers on a real database and a real Redis: the CLI, sealed numbers, presence in both
stores, the CallEvents, and the reconciler rebuilding the core after Redis lost it."""

from __future__ import annotations

import shlex

import pytest
from sqlalchemy import select

from dataprotection import Sealed
from inquiries.models import CallEvent
from routing.core import RoutingCore
from routing.models import Handler
from routing.service import create_handler, masked_phone, routing_core, set_presence
from settings import SettingsError, load_settings
from staff.models import StaffUser

NUMBER = "+380501234567"
FORMS = (NUMBER, NUMBER[1:], NUMBER[4:])


@pytest.fixture
def cli(app):
    runner = app.test_cli_runner()

    def run(*args: str, ok: bool = True):
        result = runner.invoke(args=list(args))
        if ok:
            assert result.exit_code == 0, result.output
        else:
            assert result.exit_code != 0, result.output
        return result

    return run


@pytest.fixture
def core(svc) -> RoutingCore:
    return routing_core(svc.settings, svc.redis)


def handlers(svc) -> list[Handler]:
    with svc.session_factory() as session:
        return list(session.scalars(select(Handler).order_by(Handler.id)))


def events(svc) -> list[CallEvent]:
    with svc.session_factory() as session:
        return list(session.scalars(select(CallEvent).order_by(CallEvent.id)))


def add(cli, name: str, *extra: str):
    return cli("handlers", "add", "--name", name, *extra)


def test_add_by_phone_seals_the_number(cli, svc):
    result = add(
        cli, "Olena", "--languages", "uk,ru", "--skills", "surrender,family",
        "--phone", "+380 50 123 45 67", "--level", "2", "--position", "3", "--wrap-up", "45",
    )  # fmt: skip
    assert "handler" in result.output and NUMBER not in result.output
    (handler,) = handlers(svc)
    assert handler.display_name == "Olena"
    assert handler.languages == ["uk", "ru"] and handler.skills == ["surrender", "family"]
    assert handler.fallback_languages == []  # uk:ru and ru:uk: both already spoken
    assert (handler.level, handler.position, handler.wrap_up_s) == (2, 3, 45)
    assert handler.presence == "offline" and handler.active and handler.client_identity is None
    assert handler.phone_hash == svc.protector.lookup_hash(NUMBER)
    row = repr({c: getattr(handler, c) for c in Handler.__table__.columns.keys()})  # noqa: SIM118
    for form in FORMS:
        assert form not in row
        assert form.encode() not in (handler.phone_ciphertext or b"")
    sealed = Sealed(handler.phone_key_id or "", handler.phone_ciphertext or b"")
    assert svc.protector.open_text(sealed, associated=handler.phone_hash.encode()) == NUMBER


def test_add_by_client_and_default_fallback_languages(cli, svc):
    add(cli, "Ivan", "--languages", "ru", "--skills", "other", "--client", "ivan_1")
    (handler,) = handlers(svc)
    assert handler.client_identity == "ivan_1" and handler.phone_hash is None
    assert handler.fallback_languages == ["uk"]  # ROUTING_FALLBACK_LANGUAGES default ru:uk
    assert (handler.level, handler.position, handler.wrap_up_s) == (1, 0, 30)


def test_add_prints_the_id_and_the_command_that_links_a_staff_account(cli, svc):
    """A new user adds a handler, then runs the printed command (their username filled in):
    the handler's console account is linked to the handler whose phone rings."""
    result = add(cli, "Olena K", "--languages", "uk,ru", "--skills", "surrender", "--client", "ok")
    (handler,) = handlers(svc)
    assert f"handler {handler.id} added (Olena K, offline)" in result.output
    printed = result.output.split(": flask --app app ", 1)[1].strip()
    assert printed == (
        f"staff create --role handler --handler-id {handler.id} --username USERNAME "
        "--display-name 'Olena K' --generate-password"
    )
    linked = cli(*shlex.split(printed.replace("USERNAME", "olena")))
    assert "created: olena (handler)" in linked.output
    with svc.session_factory() as session:
        user = session.scalar(select(StaffUser).where(StaffUser.username == "olena"))
        assert user.handler_id == handler.id and user.display_name == "Olena K"
    assert f"handler {handler.id}" in cli("staff", "list").output


def test_add_help_lists_the_accepted_values(cli):
    text = " ".join(cli("handlers", "add", "--help").output.split())
    assert "the callers' languages they take, comma-separated: ru,uk,en" in text
    assert "comma-separated: surrender,family,pow_info,other" in text
    assert "client:NAME" in text


def test_list_masks_the_number(cli):
    add(cli, "Olena", "--languages", "uk", "--skills", "family", "--phone", NUMBER)
    add(cli, "Ivan", "--languages", "ru,en", "--skills", "pow_info", "--client", "ivan")
    output = cli("handlers", "list").output
    assert "+380 ••• ••• 45 67" in output
    assert "client:ivan" in output and "ru,en" in output and "offline" in output
    for form in FORMS:
        assert form not in output


def test_masked_phone():
    assert masked_phone("+79161234567") == "+7 ••• ••• 45 67"
    assert masked_phone("+380501231234") == "+380 ••• ••• 12 34"
    assert masked_phone("+442071234567") == "+44 ••• ••• 45 67"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--languages", "de", "--skills", "other", "--client", "a"), "unknown language de"),
        (("--languages", "ru", "--skills", "chat", "--client", "a"), "unknown skill chat"),
        (("--languages", "ru", "--skills", "other"), "exactly one"),
        (("--languages", "ru", "--skills", "other", "--client", "a", "--phone", NUMBER),
         "exactly one"),
        (("--languages", "ru", "--skills", "other", "--phone", "0501234567"), "E.164"),
        (("--languages", "ru", "--skills", "other", "--phone", "+38O50"), "E.164"),
        (("--languages", "ru", "--skills", "other", "--client", "1234567"), "client"),
        (("--languages", "ru", "--skills", "other", "--client", "a", "--level", "100"),
         "level"),
    ],
)  # fmt: skip
def test_bad_input_is_a_clear_error(cli, svc, args, message):
    result = cli("handlers", "add", "--name", "X", *args, ok=False)
    assert message in result.output
    assert "Traceback" not in result.output
    assert "0501234567" not in result.output
    assert handlers(svc) == []


def test_duplicate_phone_or_client_is_refused(cli, svc):
    add(cli, "A", "--languages", "ru", "--skills", "other", "--phone", NUMBER)
    add(cli, "B", "--languages", "ru", "--skills", "other", "--client", "b")
    dup = cli("handlers", "add", "--name", "C", "--languages", "ru", "--skills", "other",
              "--phone", "+380 (50) 123-45-67", ok=False)  # fmt: skip
    assert "already has that phone number" in dup.output and NUMBER not in dup.output
    dup = cli("handlers", "add", "--name", "D", "--languages", "ru", "--skills", "other",
              "--client", "b", ok=False)  # fmt: skip
    assert "already has the client name" in dup.output
    assert len(handlers(svc)) == 2


def test_presence_lands_in_the_database_and_the_core(cli, svc, core):
    add(cli, "Olena", "--languages", "uk", "--skills", "family", "--phone", NUMBER)
    (handler,) = handlers(svc)
    hid = str(handler.id)
    assert core.presence(hid) == ("offline", None)

    cli("handlers", "presence", hid, "available")
    (handler,) = handlers(svc)
    assert handler.presence == "available" and handler.presence_reason is None
    assert core.presence(hid) == ("available", None)
    snap = core.snapshot()
    assert hid in snap["available"]
    assert NUMBER not in repr(snap) and NUMBER[1:] not in repr(snap)

    cli("handlers", "presence", hid, "break", "--reason", "tea")
    (handler,) = handlers(svc)
    assert (handler.presence, handler.presence_reason) == ("break", "tea")
    assert core.presence(hid) == ("break", "tea")
    assert "break     tea" in cli("handlers", "list").output

    cli("handlers", "presence", hid, "offline")
    assert core.presence(hid) == ("offline", None)

    logged = [(e.event, e.interaction_id, e.data) for e in events(svc)]
    assert logged == [
        ("HANDLER_PRESENCE", None, {"handler_id": handler.id, "from": "offline", "to": "available"}),
        ("HANDLER_PAUSED", None,
         {"handler_id": handler.id, "from": "available", "to": "break", "reason": "tea"}),
        ("HANDLER_PRESENCE", None, {"handler_id": handler.id, "from": "break", "to": "offline"}),
    ]  # fmt: skip


def test_presence_errors(cli, svc, core):
    add(cli, "Ivan", "--languages", "ru", "--skills", "other", "--client", "ivan")
    (handler,) = handlers(svc)
    assert (
        "no active handler with id 999"
        in cli("handlers", "presence", "999", "available", ok=False).output
    )
    refused = cli("handlers", "presence", str(handler.id), "on_call", ok=False).output
    assert "is not one of 'available', 'break', 'offline'" in refused
    with svc.session_factory() as session, pytest.raises(ValueError, match="presence must be"):
        set_presence(session, core, handler.id, "on_call")
    assert events(svc) == []
    assert handlers(svc)[0].presence == "offline"


def test_create_handler_on_a_core_connection(svc):
    with svc.engine.begin() as conn:
        hid = create_handler(
            conn, svc.protector, display_name="Core", languages=["en"], skills=["other"],
            client="core_user", fallback_languages=["ru", "en"],
        )  # fmt: skip
    (handler,) = handlers(svc)
    assert handler.id == hid and handler.fallback_languages == ["ru"]


def test_reconcile_rebuilds_the_core_after_a_flush(cli, svc, core):
    add(cli, "A", "--languages", "ru", "--skills", "other", "--client", "a")
    add(cli, "B", "--languages", "uk", "--skills", "family", "--phone", NUMBER, "--level", "2")
    add(cli, "C", "--languages", "en", "--skills", "surrender", "--client", "c")
    add(cli, "D", "--languages", "ru", "--skills", "other", "--client", "d")
    a, b, c, d = (str(h.id) for h in handlers(svc))
    cli("handlers", "presence", a, "available")
    cli("handlers", "presence", b, "break", "--reason", "training")
    cli("handlers", "presence", c, "available")
    cli("handlers", "presence", c, "offline")
    with svc.session_factory() as session:  # caught mid-call when Redis went away
        session.get(Handler, int(d)).presence = "on_call"
        session.commit()
    before = core.snapshot()

    svc.redis.flushdb()
    assert core.snapshot()["handlers"] == {}

    output = cli("routing", "reconcile").output
    assert "3 restored" not in output and "4 restored" in output and "1 caught mid-call" in output
    assert core.presence(a) == ("available", None)
    assert core.presence(b) == ("break", "training")
    assert core.presence(c) == ("offline", None)
    assert core.presence(d) == ("available", None)
    after = core.snapshot()
    assert set(after["handlers"]) == {a, b, c, d}
    assert sorted(after["available"]) == sorted([a, d])
    for hid in (a, b, c):  # the profiles come back as they were
        for key in ("langs", "skills", "fbl"):
            assert after["handlers"][hid][key] == before["handlers"][hid][key]
    assert NUMBER not in repr(after)

    again = cli("routing", "reconcile").output  # idempotent
    assert again == output
    assert sorted(core.snapshot()["available"]) == sorted([a, d])


def test_routing_settings(tmp_path):
    base = {"HOTLINE_ENV": "test", "HOTLINE_INSTANCE_PATH": str(tmp_path / "instance")}
    settings = load_settings(base)
    assert settings.routing_strategy == "longest-idle"
    assert settings.routing_max_misses == 2
    assert settings.routing_language_fallback_after_s == 60
    assert settings.routing_fallback_languages == (("uk", "ru"), ("ru", "uk"))
    custom = load_settings(
        {**base, "ROUTING_STRATEGY": "ring-all", "ROUTING_MAX_MISSES": "0",
         "ROUTING_LANGUAGE_FALLBACK_AFTER_S": "30", "ROUTING_FALLBACK_LANGUAGES": "en:ru"}
    )  # fmt: skip
    assert custom.routing_strategy == "ring-all" and custom.routing_max_misses == 0
    assert custom.fallback_languages_for(["en", "uk"]) == ["ru"]
    assert (
        load_settings({**base, "ROUTING_FALLBACK_LANGUAGES": ""}).routing_fallback_languages == ()
    )
    with pytest.raises(SettingsError, match=r"ROUTING_STRATEGY must be one of .*longest-idle"):
        load_settings({**base, "ROUTING_STRATEGY": "fastest"})
    with pytest.raises(SettingsError, match="ROUTING_MAX_MISSES must be a whole number"):
        load_settings({**base, "ROUTING_MAX_MISSES": "two"})
    with pytest.raises(SettingsError, match="ROUTING_LANGUAGE_FALLBACK_AFTER_S must not be neg"):
        load_settings({**base, "ROUTING_LANGUAGE_FALLBACK_AFTER_S": "-1"})
    with pytest.raises(SettingsError, match="ROUTING_FALLBACK_LANGUAGES"):
        load_settings({**base, "ROUTING_FALLBACK_LANGUAGES": "uk-ru"})


def test_routing_core_follows_the_settings(svc):
    core = routing_core(svc.settings.replace(routing_strategy="linear"), svc.redis)
    assert core.strategy == "linear"
