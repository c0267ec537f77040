"""The dashboard: its tables hold exactly what the seeded events say, its charts are SVG drawn
on the server (no script, no style attribute), and the date range is checked."""

from __future__ import annotations

import datetime as dt

import pytest

from console.charts import bar_chart, nice_top
from db import db_session
from inquiries.models import Caller, CallEvent, Inquiry, Interaction
from tests.console.seed import audits, handler_row, row, tables
from tests.staff.support import make_user, sign_in

TODAY = dt.datetime.now(dt.UTC).date()


def short(day: dt.date) -> str:
    """A day as the dashboard names it in English: ``8 Dec``."""
    return f"{day.day} {day:%b}"


YESTERDAY = TODAY - dt.timedelta(days=1)


def at(day: dt.date, hour: int) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC)


@pytest.fixture
def seeded(app) -> int:
    """Yesterday: 3 calls (2 family/ru, 1 surrender/uk), 3 answered after 5, 25 and 400 s,
    one abandon after 30 s and one short one; Anna available 01:00-02:00 with 12 minutes of
    handling (20 %). Today: 1 call (other/en), answered after 10 s."""
    anna = handler_row(app, "Anna")
    with app.app_context():
        session = db_session()
        caller = Caller(number_hash="d" * 64)
        session.add(caller)
        session.flush()
        for i, (day, kind, language) in enumerate([(YESTERDAY, "family", "ru"),
                                                   (YESTERDAY, "family", "ru"),
                                                   (YESTERDAY, "surrender", "uk"),
                                                   (TODAY, "other", "en")]):  # fmt: skip
            case = Inquiry(caller_id=caller.id, kind=kind, language=language)
            session.add(case)
            session.flush()
            session.add(Interaction(inquiry_id=case.id, provider_sid=f"CA{i:032x}",
                                    started_at=at(day, 0) + dt.timedelta(minutes=5 + i)))  # fmt: skip
        events = [
            (at(YESTERDAY, 1), "HANDLER_PRESENCE", {"handler_id": anna, "from": "offline", "to": "available"}),
            (at(YESTERDAY, 2), "CONNECT", {"holdtime_s": 5}),
            (at(YESTERDAY, 2), "CONNECT", {"holdtime_s": 25}),
            (at(YESTERDAY, 2), "CONNECT", {"holdtime_s": 400}),
            (at(YESTERDAY, 2), "ABANDON", {"waittime_s": 30}),
            (at(YESTERDAY, 2), "ABANDON", {"waittime_s": 2}),
            (at(YESTERDAY, 1) + dt.timedelta(minutes=30), "COMPLETEAGENT",
             {"handler_id": anna, "calltime_s": 600, "wrapup_s": 120}),
            (at(YESTERDAY, 2), "HANDLER_PRESENCE", {"handler_id": anna, "from": "available", "to": "offline"}),
            (at(TODAY, 0), "CONNECT", {"holdtime_s": 10}),
        ]  # fmt: skip
        session.add_all(CallEvent(time=when, event=name, data=data) for when, name, data in events)
        session.commit()
    return anna


def test_the_tables_hold_what_the_events_say(app, client, seeded):
    user_id, _ = make_user(app, "auditor", "au")
    sign_in(client, app, user_id)
    page = client.get("/console/dashboard")
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    found = tables(page.get_data(as_text=True))
    days = found["calls-by-kind"][0][1:]
    assert len(days) == 14 and days[-2:] == [short(YESTERDAY), short(TODAY)]

    assert row(found["calls-by-kind"], "a relative")[-2:] == ["2", "0"]
    assert row(found["calls-by-kind"], "surrender")[-2:] == ["1", "0"]
    assert row(found["calls-by-kind"], "other")[-2:] == ["0", "1"]
    assert row(found["calls-by-kind"], "All calls")[-2:] == ["3", "1"]
    assert row(found["calls-by-kind"], "All calls")[:-2] == ["0"] * 12
    assert row(found["calls-by-language"], "Russian")[-2:] == ["2", "0"]
    assert row(found["calls-by-language"], "English")[-2:] == ["0", "1"]
    # yesterday: of 5, 25 and 400 s only 5 s is within 20 s
    assert row(found["service-level"], "Service level")[-2:] == ["33.3%", "100.0%"]
    assert row(found["service-level"], "Service level")[0] == "—"  # no calls that day
    assert row(found["asa"], "Average speed of answer")[-2:] == ["143.3 s", "10.0 s"]
    # 1 abandon (the 2 s one is short, left out) of 3 answered + 1 abandoned
    assert row(found["abandonment"], "Abandonment")[-2:] == ["25.0%", "0.0%"]
    assert found["waits"][0][1:] == ["< 0:10", "< 0:20", "< 0:30", "< 1:00", "< 2:00",
                                     "< 5:00", "≥ 5:00"]  # fmt: skip
    assert row(found["waits"], "Calls") == ["1", "1", "1", "0", "0", "0", "1"]
    assert row(found["occupancy"], "Anna") == ["20.0%"]  # 720 s of 3600 s available
    assert audits(app, "dashboard.view")[0].details == {"days": 14}


def test_the_charts_are_svg_drawn_on_the_server(app, client, seeded):
    user_id, _ = make_user(app, "supervisor", "sv")
    sign_in(client, app, user_id)
    html = client.get("/console/dashboard").get_data(as_text=True)
    assert html.count('<svg class="chart"') == 7
    assert "<script" not in html and "style=" not in html and "http" not in html.split("<main>")[1]
    kind_chart = html.split('id="chart-kind"')[1].split("</figure>")[0]
    assert kind_chart.count('class="bar s') == 3  # yesterday: two stacked; today: one
    assert (
        f"{short(YESTERDAY)}, a relative: 2" in kind_chart and '<ul class="legend">' in kind_chart
    )
    sl_chart = html.split('id="chart-sl"')[1].split("</figure>")[0]
    assert f"{short(YESTERDAY)}: 33.3%" in sl_chart and ">100%<" in sl_chart  # the axis top


def test_the_date_range(app, client, seeded):
    user_id, _ = make_user(app, "admin", "root")
    sign_in(client, app, user_id)

    def days(query: str) -> list[str]:
        return tables(client.get(f"/console/dashboard?{query}").get_data(as_text=True))[
            "calls-by-kind"][0][1:]  # fmt: skip

    assert days(f"since={YESTERDAY}&until={YESTERDAY}") == [short(YESTERDAY)]
    assert days(f"since={TODAY}&until={YESTERDAY}") == [short(YESTERDAY), short(TODAY)]
    assert len(days("since=2000-01-01")) == 92
    long_ago = client.get("/console/dashboard?since=2000-01-01").get_data(as_text=True)
    assert "At most 92 days" in long_ago
    assert days("until=2999-01-01")[-1] == short(TODAY)  # nothing past today
    assert len(days("since=nonsense&until=")) == 14


def test_bar_geometry():
    assert [nice_top(v) for v in (0, 3, 7, 12, 143.3, 1000)] == [1, 5, 10, 20, 200, 1000]
    chart = bar_chart(["a", "b", "c"], [("x", [1, None, 2.5]), ("y", [1, 0, 2.5])])
    assert [(b.series, b.title) for b in chart.bars] == [(0, "a, x: 1"), (1, "a, y: 1"),
                                                         (0, "c, x: 2.5"), (1, "c, y: 2.5")]  # fmt: skip
    first, second = chart.bars[:2]
    assert second.y + second.h == pytest.approx(first.y)  # stacked: y on top of x
    tallest = chart.bars[2].h + chart.bars[3].h
    assert tallest == pytest.approx(chart.base - 10)  # the tallest stack reaches the top
    assert [label.text for label in chart.y_labels] == ["0", "2.5", "5"]
    assert bar_chart([], []).bars == []
