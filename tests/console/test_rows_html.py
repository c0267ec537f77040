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


def test_a_row_has_its_cells_in_order() -> None:
    html = str(rows_html([_row()], "/console/inquiries/"))
    cells = ET.fromstring(html.strip()).findall("td")
    texts = ["".join(cell.itertext()) for cell in cells]
    assert texts == ["2026-11-27 09:05:03", "#42", "voice inbound", "+7 ••• ••• 12 34", "family",
                     "uk", "completed", "65 s", "12 s", "3", "open", ""]  # fmt: skip
    assert cells[1].find("a").get("href") == "/console/inquiries/42"


def test_every_stored_value_is_escaped() -> None:
    row = _row(outcome=HOSTILE, kind=HOSTILE, call_status=HOSTILE, number=HOSTILE,
               channel=HOSTILE, language=HOSTILE, inquiry_status=HOSTILE)  # fmt: skip
    html = str(rows_html([row], '/x"><script>/'))
    assert "<script>" not in html
    assert html.count("&lt;script&gt;") == 8  # seven cells and the link's address
    ET.fromstring(html.strip())  # still well-formed: nothing broke out of its cell


def test_no_rows_is_empty_markup() -> None:
    assert str(rows_html([], "/console/inquiries/")) == ""
