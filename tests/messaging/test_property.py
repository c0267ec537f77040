"""Any input, rightly signed, never gives a 5xx on a messaging webhook (promise 13): Twilio's get
valid TwiML, Telegram's a 200 (or a 413 for a body no update can be)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import PUBLIC_BASE_URL, sign
from tests.messaging.support import SECRET_HEADER
from tests.support import handles

SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
FIELDS = ["MessageSid", "From", "To", "Body", "NumMedia", "MediaUrl0", "MediaContentType0",
          "MessageStatus", "ErrorCode", "ProfileName", "Latitude", "Longitude", "SmsStatus"]  # fmt: skip
values = st.one_of(
    st.text(max_size=300),
    st.sampled_from(["SM" + "a" * 32, "MM" + "0" * 32, "+79161234567", "whatsapp:+79161234567",
                     "whatsapp:", "1", "2", "99999999999", "-1", "delivered", "read", "failed",
                     "https://x/y", "\x00", "полон"]),
)  # fmt: skip
forms = st.dictionaries(st.sampled_from(FIELDS), values, max_size=8)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                 max_size=4),
    max_leaves=20,
)  # fmt: skip
updates = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {"update_id": st.integers(min_value=-5, max_value=2**60)},
        optional={
            "message": json_values,
            "callback_query": json_values,
            "my_chat_member": json_values,
        },
    ),
)


@SETTINGS
@given(path=st.sampled_from(["/messaging/incoming", "/messaging/status"]), form=forms)
def test_any_signed_form_gives_valid_twiml(client, path, form):
    signature = sign(PUBLIC_BASE_URL + path, form)
    response = client.post(path, data=form, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 200, response.data[:200]
    assert ET.fromstring(response.data).tag == "Response"


@SETTINGS
@given(update=updates)
def test_any_telegram_update_with_the_secret_gives_200(app, client, update):
    secret = handles(app).settings.telegram_webhook_secret
    response = client.post("/messaging/telegram", json=update, headers={SECRET_HEADER: secret})
    assert response.status_code == 200, response.data[:200]
