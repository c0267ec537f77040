"""The case page tells a real call (through the emulator) in the reader's language: the menu
answers as questions and answers, what happened as sentences, handlers by name, times in the
hotline's time zone; the stored event only behind a details toggle, for supervisors and
auditors."""

from __future__ import annotations

import re

from sqlalchemy import select, update

from db import db_session
from inquiries.models import Interaction
from routing.models import Handler
from staff.models import StaffUser
from tests.console.test_calls import as_role
from tests.e2e.conftest import emulator, hotline  # noqa: F401 (fixtures)
from tests.e2e.test_routing_calls import HANDLER_A, HANDLER_B, add_handler, drain


def visible(page: str) -> str:
    """The page's text as a reader sees it: no head, closed <details> left out, tags gone."""
    page = re.sub(r"(?s)<head>.*?</head>|<details.*?</details>", "", page)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)).replace("&#39;", "'")


def _language(app, language: str) -> None:
    with app.app_context():
        session = db_session()
        session.execute(update(StaffUser).values(language=language))
        session.commit()


def test_a_case_reads_as_a_story_in_both_languages(hotline, app):  # noqa: F811
    add_handler(hotline, HANDLER_A, "Anna")
    add_handler(hotline, HANDLER_B, "Boris", position=1)
    call = hotline.dial()
    for key in "111":  # Russian, surrender, safe to talk
        call.press(key)
    drain(hotline)
    hotline.emulator.phone(HANDLER_A).answer().wait_until_finished(max_seconds=120)  # no "1"
    hotline.emulator.settle()
    drain(hotline)
    leg = hotline.emulator.phone(HANDLER_B).answer()
    leg.press("1")
    hotline.emulator.settle()
    call.hang_up()
    hotline.emulator.settle()
    drain(hotline)
    with app.app_context():
        case = db_session().scalar(
            select(Interaction.inquiry_id).where(Interaction.provider_sid == call.sid)
        )
    client = app.test_client()
    as_role(app, client, "supervisor")

    _language(app, "en")
    page = client.get(f"/console/inquiries/{case}").get_data(as_text=True)
    text = visible(page)
    assert "Safe to talk yes" in text and "Topic surrender" in text
    assert re.search(r"Waited \d:\d\d · offered to Anna · not taken \(\d+ s\) · "
                     r"offered to Boris · connected \d:\d\d", text), text  # fmt: skip
    assert "Anna answered but did not press 1" in text
    assert "The caller ended the conversation with Boris" in text
    for raw in ("RINGNOANSWER", "handler_id", "in-progress", "voice inbound", "safety: 1",
                "None", "(UTC)"):  # fmt: skip
        assert raw not in text, raw
    assert '<details class="raw"><summary>as stored</summary><code>RINGNOANSWER {' in page

    _language(app, "uk")
    text = visible(client.get(f"/console/inquiries/{case}").get_data(as_text=True))
    assert "Може безпечно говорити так" in text and "Тема здача в полон" in text
    assert "Anna відповів(-ла), але не натиснув(-ла) 1" in text
    assert "вхідний дзвінок · завершено" in text

    handler_client = app.test_client()
    with app.app_context():
        boris_id = db_session().scalar(select(Handler.id).where(Handler.display_name == "Boris"))
    as_role(app, handler_client, "handler", handler_id=boris_id)
    page = handler_client.get(f"/console/inquiries/{case}").get_data(as_text=True)
    assert "Boris" in page and "<details" not in page  # the story, not the stored events
