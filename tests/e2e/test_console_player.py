"""A message left through the emulator, processed by the pipeline, played in the console: the
whole file, a seek (range request), past the end (416), audited; nobody else's to play."""

from __future__ import annotations

from sqlalchemy import select

from db import db_session
from inquiries.models import Interaction
from recordings.models import CARRIER_DELETED
from staff.models import AuditEvent
from tests.e2e.test_recordings import leave_message, recording_of
from tests.e2e.test_routing_calls import drain
from tests.staff.support import make_user, sign_in


def test_a_stored_message_plays_and_seeks_in_the_console(hotline):
    call = leave_message(hotline)
    drain(hotline)
    rec = recording_of(hotline, call.sid)
    assert rec.state == CARRIER_DELETED
    app = hotline.app
    client = app.test_client()
    supervisor, _ = make_user(app, "supervisor", "sv")
    sign_in(client, app, supervisor)
    with app.app_context():
        inquiry_id = db_session().get(Interaction, rec.interaction_id).inquiry_id
    page = client.get(f"/console/inquiries/{inquiry_id}").get_data(as_text=True)
    audio_url = f"/console/recordings/{rec.id}/audio"
    assert audio_url in page

    whole = client.get(audio_url)
    assert whole.status_code == 200 and whole.mimetype.startswith("audio/")
    body = whole.get_data()
    assert len(body) == rec.size_bytes and whole.headers["Accept-Ranges"] == "bytes"
    assert body[:4] == b"OggS" or body[:3] == b"ID3" or body[:2] in (b"\xff\xfb", b"\xff\xf3")

    part = client.get(audio_url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(body)}"
    assert part.get_data() == body[100:200]
    tail = client.get(audio_url, headers={"Range": "bytes=-50"})
    assert tail.status_code == 206 and tail.get_data() == body[-50:]
    beyond = client.get(audio_url, headers={"Range": f"bytes={len(body)}-"})
    assert beyond.status_code == 416
    assert beyond.headers["Content-Range"] == f"bytes */{len(body)}"

    with app.app_context():
        plays = list(
            db_session().scalars(select(AuditEvent).where(AuditEvent.action == "recording.play"))
        )
    assert len(plays) == 3 and {p.object_id for p in plays} == {str(rec.id)}

    stranger, _ = make_user(app, "handler", "stranger")
    sign_in(client, app, stranger)
    assert client.get(audio_url).status_code == 404
    assert client.get(f"/console/inquiries/{inquiry_id}").status_code == 404
