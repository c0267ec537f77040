"""The harness itself: the Procfile's web process answers over a real socket."""

from tests.conftest import PUBLIC_BASE_URL, call_params, new_call_sid


def test_a_signed_webhook_through_gunicorn_is_answered_with_twiml(served):
    web = served("web")
    answer = web.signed_post(PUBLIC_BASE_URL, "/voice/incoming", call_params(new_call_sid()))
    assert answer.status == 200, answer.text
    assert answer.headers["content-type"].startswith("text/xml")
    assert "<Gather" in answer.text
