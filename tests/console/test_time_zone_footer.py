"""Every console page says once, in its footer, which time zone its times are in (issue 17)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from tests.staff.support import make_user, sign_in


def offset_now(zone: str) -> str:
    hours = int((dt.datetime.now(ZoneInfo(zone)).utcoffset() or dt.timedelta()).total_seconds())
    return f"UTC+{hours // 3600}"


def test_the_footer_names_the_hotlines_time_zone(app, client, settings) -> None:
    assert settings.time_zone == "Europe/Kyiv"
    english, _ = make_user(app, "supervisor", "mira", language="en")
    ukrainian, _ = make_user(app, "auditor", "iryna", language="uk")
    sign_in(client, app, english)
    page = client.get("/console/").get_data(as_text=True)
    assert f"Times are shown in the time zone of Kyiv ({offset_now('Europe/Kyiv')})." in page
    sign_in(client, app, ukrainian)
    page = client.get("/console/").get_data(as_text=True)
    assert f"Час показано за часовим поясом: Київ ({offset_now('Europe/Kyiv')})." in page
    login = app.test_client().get("/console/login", headers={"Accept-Language": "en"})
    assert "time zone of Kyiv" in login.get_data(as_text=True)  # before sign-in too
