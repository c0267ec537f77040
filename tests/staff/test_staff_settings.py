"""The staff settings: TOTP may be optional only outside production; timeouts are positive."""

from __future__ import annotations

import pytest

from settings import SettingsError, load_settings
from tests.test_settings import PRODUCTION


def test_defaults(tmp_path) -> None:
    settings = load_settings({"HOTLINE_ENV": "test", "HOTLINE_INSTANCE_PATH": str(tmp_path)})
    assert settings.staff_require_totp is True
    assert (settings.staff_idle_timeout_s, settings.staff_absolute_timeout_s) == (900, 43200)


@pytest.mark.parametrize("env", ["development", "test"])
def test_totp_may_be_turned_off_in_development_and_test(tmp_path, env) -> None:
    environ = {
        "HOTLINE_ENV": env,
        "HOTLINE_INSTANCE_PATH": str(tmp_path),
        "STAFF_REQUIRE_TOTP": "false",
    }
    assert load_settings(environ).staff_require_totp is False


def test_production_refuses_to_run_without_totp(tmp_path) -> None:
    environ = {**PRODUCTION, "HOTLINE_INSTANCE_PATH": str(tmp_path), "STAFF_REQUIRE_TOTP": "0"}
    with pytest.raises(SettingsError, match="STAFF_REQUIRE_TOTP"):
        load_settings(environ)
    assert load_settings({**environ, "STAFF_REQUIRE_TOTP": "true"}).staff_require_totp


@pytest.mark.parametrize(
    "name,value",
    [
        ("STAFF_REQUIRE_TOTP", "maybe"),
        ("STAFF_IDLE_TIMEOUT_S", "0"),
        ("STAFF_ABSOLUTE_TIMEOUT_S", "-5"),
    ],
)
def test_bad_values_fail_loudly(tmp_path, name, value) -> None:
    with pytest.raises(SettingsError, match=name):
        load_settings({"HOTLINE_ENV": "test", "HOTLINE_INSTANCE_PATH": str(tmp_path), name: value})
