"""The webhook HTTP client: request shape and signature, keep-alive reuse, server-closed
connections, chunked/gzip bodies, redirects, cookies, timeouts, against a raw scripted server."""

from __future__ import annotations

import gzip
import socket
import threading
import time
from urllib.parse import parse_qsl, urlencode

import pytest
from requests.utils import requote_uri
from twilio.request_validator import RequestValidator

from emulator.errors import CarrierError
from emulator.webhooks import Signer, Webhooks, form_body

TOKEN = "client-test-token"
PARAMS = {"CallSid": "CA" + "1" * 32, "From": "+380 50 123", "Digits": "1#", "Empty": ""}


def ok(body: bytes = b"<Response/>", *extra: str) -> bytes:
    head = ["HTTP/1.1 200 OK", "Content-Type: text/xml", f"Content-Length: {len(body)}", *extra]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class RawServer:
    """HTTP/1.1 on raw sockets. ``answer(request)`` gives (response bytes or None, close after);
    None closes the connection without answering. Requests are kept with their connection."""

    def __init__(self, answer) -> None:
        self.answer = answer
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.requests: list[dict] = []
        self.connections = 0
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                number = self.connections
            threading.Thread(target=self._serve, args=(conn, number), daemon=True).start()

    def _serve(self, conn: socket.socket, number: int) -> None:
        buf = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                head, _, buf = buf.partition(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ")
                headers = [tuple(part.strip() for part in line.split(":", 1)) for line in lines[1:]]
                length = int(dict(headers).get("Content-Length", "0"))
                while len(buf) < length:
                    buf += conn.recv(65536)
                body, buf = buf[:length], buf[length:]
                request = dict(method=method, target=target, headers=headers, body=body)
                request["connection"] = number
                with self.lock:
                    self.requests.append(request)
                    index = len(self.requests) - 1
                reply, close = self.answer(request, index)
                if reply is None:
                    return
                conn.sendall(reply)
                if close:
                    return


@pytest.fixture
def hooks():
    webhooks = Webhooks(TOKEN)
    yield webhooks
    webhooks.close()


def serve(answer):
    return RawServer(lambda request, index: answer(request, index))


def test_post_request_shape_and_signature(hooks):
    server = serve(lambda r, i: (ok(b"<Response><Say>hi</Say></Response>"), False))
    url = server.base + "/voice?x=1"
    reply = hooks.send(url, "POST", PARAMS)
    assert reply.status_code == 200 and reply.content == b"<Response><Say>hi</Say></Response>"
    (request,) = server.requests
    assert (request["method"], request["target"]) == ("POST", "/voice?x=1")
    assert request["headers"] == [
        ("Host", f"127.0.0.1:{server.port}"),
        ("User-Agent", "TwilioProxy/1.1"),
        ("Accept-Encoding", "gzip, deflate"),
        ("Accept", "*/*"),
        ("Connection", "keep-alive"),
        ("X-Twilio-Signature", RequestValidator(TOKEN).compute_signature(url, PARAMS)),
        ("Content-Type", "application/x-www-form-urlencoded; charset=utf-8"),
        ("Content-Length", str(len(request["body"]))),
    ]
    assert request["body"] == urlencode(PARAMS).encode()
    assert dict(parse_qsl(request["body"].decode(), keep_blank_values=True)) == PARAMS
    server.close()


def test_get_request_carries_the_parameters_in_the_query(hooks):
    server = serve(lambda r, i: (ok(), False))
    hooks.send(server.base + "/menu?step=2#rc=0", "get", {"CallSid": "CA1", "To": "+1 555"})
    (request,) = server.requests
    target = "/menu?step=2&CallSid=CA1&To=%2B1+555"
    full = server.base + target
    assert request["method"] == "GET" and request["target"] == target
    headers = dict(request["headers"])
    assert headers["X-Twilio-Signature"] == RequestValidator(TOKEN).compute_signature(full, {})
    assert "Content-Type" not in headers and "Content-Length" not in headers
    assert request["body"] == b""
    server.close()


def test_post_without_parameters_sends_an_empty_body(hooks):
    server = serve(lambda r, i: (ok(), False))
    hooks.send(server.base + "/empty", "POST", {})
    assert dict(server.requests[0]["headers"])["Content-Length"] == "0"
    server.close()


def test_signer_and_form_body_match_twilio_and_urlencode():
    validator, signer = RequestValidator(TOKEN), Signer(TOKEN)
    cases = [{}, PARAMS, {"Б": "Мне нужна помощь", "a": "x&y=z", "b": "ü+/"}, {"z": "1", "a": "2"}]
    for params in cases:
        for url in ("https://example.com/voice", "http://h:5/p?q=ä&r=1"):
            assert signer.sign(url, params) == validator.compute_signature(url, params)
        assert form_body(params) == urlencode(params).encode()


def test_keep_alive_connections_are_reused_across_requests(hooks):
    server = serve(lambda r, i: (ok(f"<Response>{i}</Response>".encode()), False))
    bodies = [hooks.send(server.base + "/a", "POST", PARAMS).content for _ in range(3)]
    assert bodies == [f"<Response>{i}</Response>".encode() for i in range(3)]
    assert server.connections == 1
    server.close()


def test_connection_close_and_http_1_0_are_honoured(hooks):
    answers = [ok(b"a", "Connection: close"), ok(b"b").replace(b"HTTP/1.1", b"HTTP/1.0"), ok(b"c")]
    server = serve(lambda r, i: (answers[i], i < 2))
    bodies = [hooks.send(server.base + "/", "POST", {}).content for _ in range(3)]
    assert bodies == [b"a", b"b", b"c"]
    assert server.connections == 3
    server.close()


def test_an_idle_connection_the_server_closed_is_not_reused(hooks):
    server = serve(lambda r, i: (ok(b"x"), True))  # closes without saying so
    for _ in range(3):
        assert hooks.send(server.base + "/", "POST", PARAMS).content == b"x"
        time.sleep(0.05)
    assert server.connections == 3
    server.close()


def test_a_reused_connection_closed_before_answering_is_retried_once_afresh(hooks):
    def answer(request, index):
        if request["connection"] == 1 and index == 1:
            return None, True  # the keep-alive race: request read, connection dropped
        return ok(b"fine"), False

    server = serve(answer)
    assert hooks.send(server.base + "/1", "POST", PARAMS).content == b"fine"
    assert hooks.send(server.base + "/2", "POST", PARAMS).content == b"fine"
    assert [r["target"] for r in server.requests] == ["/1", "/2", "/2"]
    assert server.connections == 2
    server.close()


def test_a_fresh_connection_closed_without_answer_is_11200(hooks):
    server = serve(lambda r, i: (None, True))
    with pytest.raises(CarrierError) as failure:
        hooks.send(server.base + "/#rc=0", "POST", PARAMS)
    assert failure.value.code == 11200
    assert len(server.requests) == 1
    server.close()


def test_chunked_gzip_body_and_informational_answers(hooks):
    packed = gzip.compress(b"<Response><Say>chunked</Say></Response>")
    chunks = b"".join(
        f"{len(piece):x};ext=1\r\n".encode() + piece + b"\r\n"
        for piece in (packed[:10], packed[10:])
    )
    head = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
    reply = b"HTTP/1.1 100 Continue\r\n\r\n" + head + chunks + b"0\r\nX-Trailer: 1\r\n\r\n"
    server = serve(lambda r, i: (reply, False))
    for _ in range(2):  # the connection stays usable after a chunked answer
        assert hooks.send(server.base + "/", "POST", {}).content == (
            b"<Response><Say>chunked</Say></Response>"
        )
    assert server.connections == 1
    server.close()


def test_body_until_close_when_no_length_is_given(hooks):
    reply = b"HTTP/1.0 200 OK\r\nContent-Type: text/xml\r\n\r\n<Response/>"
    server = serve(lambda r, i: (reply, True))
    assert hooks.send(server.base + "/", "POST", {}).content == b"<Response/>"
    server.close()


def test_redirects_are_followed_like_requests_did(hooks):
    def answer(request, index):
        if request["target"] == "/found":
            return b"HTTP/1.1 302 Found\r\nLocation: /landing?a=1\r\nContent-Length: 0\r\n\r\n", 0
        if request["target"] == "/temporary":
            return b"HTTP/1.1 307 Temporary\r\nLocation: /landing\r\nContent-Length: 0\r\n\r\n", 0
        return ok(b"<Response>" + request["method"].encode() + b"</Response>"), False

    server = serve(answer)
    assert hooks.send(server.base + "/found", "POST", PARAMS).content == b"<Response>GET</Response>"
    landed = server.requests[1]
    assert landed["target"] == "/landing?a=1" and landed["body"] == b""
    assert "Content-Type" not in dict(landed["headers"])
    signature = dict(server.requests[0]["headers"])["X-Twilio-Signature"]
    assert dict(landed["headers"])["X-Twilio-Signature"] == signature
    assert hooks.send(server.base + "/temporary", "POST", PARAMS).content == (
        b"<Response>POST</Response>"
    )
    assert server.requests[3]["body"] == urlencode(PARAMS).encode()
    server.close()


def test_cookies_set_by_the_app_are_sent_back(hooks):
    def answer(request, index):
        return ok(b"c", "Set-Cookie: session=abc; Path=/") if index == 0 else ok(b"d"), False

    server = serve(answer)
    hooks.send(server.base + "/one", "POST", {})
    hooks.send(server.base + "/two", "POST", {})
    assert "Cookie" not in dict(server.requests[0]["headers"])
    assert dict(server.requests[1]["headers"])["Cookie"] == "session=abc"
    server.close()


def test_credentials_in_the_url_become_basic_auth(hooks):
    server = serve(lambda r, i: (ok(), False))
    url = f"http://user:p%40ss@127.0.0.1:{server.port}/secure"
    hooks.send(url, "POST", PARAMS)
    headers = dict(server.requests[0]["headers"])
    assert headers["Authorization"] == "Basic dXNlcjpwQHNz"  # user:p@ss
    assert headers["X-Twilio-Signature"] == RequestValidator(TOKEN).compute_signature(url, PARAMS)
    server.close()


def test_urls_are_requoted_like_requests_did(hooks):
    server = serve(lambda r, i: (ok(), False))
    path = "/voice/меню one?name=a b&x=%7E%2F"
    hooks.send(server.base + path, "POST", {})
    assert server.requests[0]["target"] == requote_uri(server.base + path)[len(server.base) :]
    server.close()


def test_error_status_read_timeout_and_refused_connection(hooks):
    server = serve(lambda r, i: (b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n", False))
    with pytest.raises(CarrierError) as failure:
        hooks.send(server.base + "/#rc=0", "POST", {})
    assert failure.value.code == 11200 and "status 503" in failure.value.message
    server.close()

    silent = serve(lambda r, i: (time.sleep(2) or ok(), False))
    started = time.monotonic()
    with pytest.raises(CarrierError) as failure:
        hooks.send(silent.base + "/#rt=200&rc=0", "POST", {})
    assert failure.value.code == 11205 and "read timeout" in failure.value.message
    assert time.monotonic() - started < 1.5
    silent.close()

    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    with pytest.raises(CarrierError) as failure:
        hooks.send(f"http://127.0.0.1:{port}/#rc=1", "POST", {})
    assert failure.value.code == 11200


def test_many_threads_share_the_pool(hooks):
    server = serve(lambda r, i: (ok(b"ok"), False))
    results: list[bytes] = []

    def worker() -> None:
        for _ in range(20):
            results.append(hooks.send(server.base + "/", "POST", PARAMS).content)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [b"ok"] * 160
    assert server.connections <= 8
    server.close()
