"""Nothing a person writes, nor how to reach them, is readable at rest: every column of every
table read raw, and the SQLite files' bytes, hold no text, number, chat id or name of theirs."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect, text

from inquiries import message_models as m
from tests.conftest import call_params, new_call_sid
from tests.messaging.support import (
    Texter,
    messages,
    post_telegram,
    rows,
    telegram_message,
    text_of,
)
from tests.support import handles

NUMBER = "+79161238642"
TELEGRAM_ID = 918_273_645
SECRETS = [
    NUMBER, NUMBER[1:], NUMBER[-10:], str(TELEGRAM_ID),
    "Kashtanka-Unique-Words", "Ягоды-Под-Снегом", "Zebedäus", "zebedaeus_writes",
    "Marfa-Profile", "secret-media-path",
]  # fmt: skip


def every_value(app) -> str:
    engine = handles(app).engine
    parts = []
    with engine.connect() as conn:
        for name in inspect(conn).get_table_names():
            query = text(f'SELECT * FROM "{name}"')  # noqa: S608 - names from the schema
            for row in conn.execute(query):
                parts += [repr(value) for value in row]
                parts += [v.decode("utf-8", "replace") for v in row if isinstance(v, bytes)]
    return "\n".join(parts)


def test_no_text_number_chat_id_or_name_in_any_column_or_database_file(app, carrier, client):
    carrier.twiml("/voice/incoming", call_params(new_call_sid(), NUMBER))
    Texter(carrier, NUMBER).send("Kashtanka-Unique-Words")
    Texter(carrier, "whatsapp:" + NUMBER).send(
        "Ягоды-Под-Снегом", ProfileName="Marfa-Profile", NumMedia="1",
        MediaUrl0="https://api.twilio.com/secret-media-path", MediaContentType0="image/png",
    )  # fmt: skip
    update = telegram_message(TELEGRAM_ID, "Kashtanka-Unique-Words")
    assert post_telegram(client, app, update).status_code == 200
    # the texts are there, sealed: the app reads them back
    inbound = messages(app, m.INBOUND)
    assert [text_of(app, one) for one in inbound] == [
        "Kashtanka-Unique-Words", "Ягоды-Под-Снегом", "Kashtanka-Unique-Words",
    ]  # fmt: skip
    assert len(rows(app, m.Conversation)) == 3
    stored = every_value(app)
    for secret in SECRETS:
        assert secret not in stored, secret
    url = handles(app).settings.database_url
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        raw = b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())
        for secret in SECRETS:
            assert secret.encode() not in raw, secret
