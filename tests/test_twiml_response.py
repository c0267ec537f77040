"""webhooks.TwiMLResponse: the headers werkzeug would send, without copying them when it can."""

from __future__ import annotations

from flask import Response
from werkzeug.test import EnvironBuilder

from webhooks import TwiMLResponse

TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response><Say>Привет</Say></Response>'


def sent(response: Response) -> tuple[str, list[tuple[str, str]]]:
    environ = EnvironBuilder(path="/voice/incoming", method="POST").get_environ()
    _iter, status, headers = response.get_wsgi_response(environ)
    return status, headers


def test_a_twiml_answer_sends_what_werkzeug_would() -> None:
    ours = TwiMLResponse(TWIML, mimetype="text/xml")
    ours.headers.add("X-Content-Type-Options", "nosniff")
    theirs = Response(TWIML, mimetype="text/xml")
    theirs.headers.add("X-Content-Type-Options", "nosniff")
    assert sent(ours) == sent(theirs)
    assert dict(sent(ours)[1])["Content-Length"] == str(len(TWIML.encode()))


def test_anything_to_adjust_goes_through_werkzeug() -> None:
    for status, extra in ((302, ("Location", "/voice/next")), (204, None), (304, None)):
        ours, theirs = TwiMLResponse("", status=status), Response("", status=status)
        if extra:
            ours.headers.add(*extra)
            theirs.headers.add(*extra)
        assert sent(ours) == sent(theirs), status
    no_content = dict(sent(TwiMLResponse("", status=204))[1])
    assert "Content-Length" not in no_content  # dropped by werkzeug, as a 204 must not have it


def test_the_direct_construction_is_werkzeugs_object() -> None:
    for twiml in (TWIML, "", "<Response />"):
        ours, theirs = TwiMLResponse.of(twiml), TwiMLResponse(twiml, mimetype="text/xml")
        assert type(ours) is type(theirs)
        assert ours.__dict__.keys() == theirs.__dict__.keys()
        for name, value in theirs.__dict__.items():
            if name == "headers":
                assert list(ours.headers) == list(value)
            else:
                assert getattr(ours, name) == value, name
        assert sent(ours) == sent(theirs)
        assert ours.get_data() == theirs.get_data() and ours.status == theirs.status
