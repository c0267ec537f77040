"""The call log's rows are built in Python (bench/console.py): every stored value escaped."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET

from console.calls_views import rows_html
from inquiries.calllog import CallLogRow

HOSTILE = '<script>alert("x")</script>&'


def _row(**changes: object) -> CallLogRow:
    values: dict = {
        "interaction_id": 7, "inquiry_id": 42,
        "started_at": dt.datetime(2026, 11, 27, 9, 5, 3, tzinfo=dt.UTC),
        "channel": "voice", "direction": "inbound", "call_status": "completed",
        "duration_s": 65, "kind": "family", "language": "uk", "inquiry_status": "open",
        "outcome": None, "number": "+7 ••• ••• 12 34", "waited_s": 12, "handler_id": 3,
    }  # fmt: skip
    values.update(changes)
    return CallLogRow(**values)


def _in(app, language: str):
    return app.test_request_context(headers={"Accept-Language": language})


def test_a_row_has_its_cells_in_order_in_words(app) -> None:
    """Names, not codes; the time in the hotline's zone (Kyiv: UTC+2 in November); the handler
    by name."""
    with _in(app, "en"):
        html = str(rows_html([_row()], "/console/inquiries/", {3: "Olena"}))
    cells = ET.fromstring(html.strip()).findall("td")
    texts = ["".join(cell.itertext()) for cell in cells]
    assert texts == ["27 Nov 2026, 11:05:03", "#42", "incoming call", "+7 ••• ••• 12 34",
                     "a relative", "Ukrainian", "ended", "1:05", "0:12", "Olena", "open",
                     ""]  # fmt: skip
    assert cells[1].find("a").get("href") == "/console/inquiries/42"
    with _in(app, "uk"):
        html = str(rows_html([_row(outcome="callback_arranged")], "/console/inquiries/", {}))
    texts = ["".join(cell.itertext()) for cell in ET.fromstring(html.strip()).findall("td")]
    assert texts[0] == "27 лист. 2026, 11:05:03"
    assert texts[2:] == ["вхідний дзвінок", "+7 ••• ••• 12 34", "родич", "українська",
                         "завершено", "1:05", "0:12", "#3", "відкритий",
                         "домовлено про зворотний дзвінок"]  # fmt: skip


def test_every_stored_value_is_escaped(app) -> None:
    row = _row(outcome=HOSTILE, kind=HOSTILE, call_status=HOSTILE, number=HOSTILE,
               channel=HOSTILE, language=HOSTILE, inquiry_status=HOSTILE)  # fmt: skip
    with _in(app, "en"):
        html = str(rows_html([row], '/x"><script>/'))
    assert "<script>" not in html
    assert html.count("&lt;script&gt;") == 8  # seven cells and the link's address
    ET.fromstring(html.strip())  # still well-formed: nothing broke out of its cell


def test_no_rows_is_empty_markup() -> None:  # no request needed: nothing to name
    assert str(rows_html([], "/console/inquiries/")) == ""
