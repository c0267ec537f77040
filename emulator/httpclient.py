"""A lean HTTP/1.1 client for webhooks: keep-alive connections pooled per host and reused
across calls, connect/read timeouts, redirects and cookies handled the way the ``requests``
session the emulator used before handled them, at a fraction of its CPU cost."""

from __future__ import annotations

import base64
import threading
import zlib
from dataclasses import dataclass
from urllib.parse import quote, unquote, urljoin, urlsplit

from .httpwire import Closed, Connection, Headers, WireError

MAX_REDIRECTS = 30
REDIRECTS = frozenset({301, 302, 303, 307, 308})
UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
BODY_HEADERS = ("Content-Length", "Content-Type", "Transfer-Encoding")
# A reused keep-alive connection the server closed before answering: try once more, afresh.
STALE = (Closed, ConnectionResetError, BrokenPipeError)


class HttpError(Exception):
    """The request got no HTTP answer (refused, reset, malformed, too many redirects)."""


class ConnectTimeout(HttpError):
    pass


class ReadTimeout(HttpError):
    pass


@dataclass
class Reply:
    """An HTTP answer: status, headers and the (decoded) body."""

    status_code: int
    headers: Headers
    content: bytes
    url: str


def requote(url: str) -> str:
    """Quote what must be quoted in a URL, as ``requests`` does before sending it."""
    if "%" not in url:
        return quote(url, safe="!#$%&'()*+,/:;=?@[]~")
    parts = url.split("%")
    for i in range(1, len(parts)):
        code = parts[i][:2]
        if len(code) == 2 and code.isalnum():
            try:
                char = chr(int(code, 16))
            except ValueError:
                return quote(url, safe="!#$&'()*+,/:;=?@[]~")
            parts[i] = char + parts[i][2:] if char in UNRESERVED else "%" + parts[i]
        else:
            parts[i] = "%" + parts[i]
    return quote("".join(parts), safe="!#$%&'()*+,/:;=?@[]~")


def _decode(body: bytes, encoding: str | None) -> bytes:
    if not body or not encoding:
        return body
    encoding = encoding.strip().lower()
    try:
        if encoding in ("gzip", "x-gzip"):
            return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(body)
        if encoding == "deflate":
            try:
                return zlib.decompress(body)
            except zlib.error:
                return zlib.decompressobj(-zlib.MAX_WBITS).decompress(body)
    except zlib.error as exc:
        raise HttpError(f"Received response with content-encoding: {encoding}, but failed to "
                        f"decode it: {exc}") from exc  # fmt: skip
    return body


class HttpPool:
    """Keep-alive connections per (scheme, host, port), shared by every call thread."""

    def __init__(self, pool_size: int = 128) -> None:
        self.pool_size = pool_size
        self._idle: dict[tuple[str, str, int], list[Connection]] = {}
        self._lock = threading.Lock()
        self._ssl = None
        self._cookies = None  # a CookieJar once some server sets a cookie

    # -- connections ------------------------------------------------------------------------
    def _take(self, key: tuple[str, str, int]) -> Connection | None:
        with self._lock:
            idle = self._idle.get(key)
            conn = idle.pop() if idle else None
        if conn is not None and conn.dropped():
            conn.close()
            return None
        return conn

    def _give(self, key: tuple[str, str, int], conn: Connection) -> None:
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if len(idle) < self.pool_size:
                idle.append(conn)
                return
        conn.close()

    def _connect(self, scheme: str, host: str, port: int, timeout: float) -> Connection:
        context = self._context() if scheme == "https" else None
        try:
            return Connection(host, port, timeout, context)
        except TimeoutError as exc:
            raise ConnectTimeout(f"{host}:{port}: connection timed out ({timeout} s)") from exc
        except OSError as exc:
            raise HttpError(f"{host}:{port}: failed to connect: {exc}") from exc

    def _context(self):
        if self._ssl is None:
            import ssl

            try:
                import certifi

                self._ssl = ssl.create_default_context(cafile=certifi.where())
            except ImportError:
                self._ssl = ssl.create_default_context()
        return self._ssl

    def close(self) -> None:
        with self._lock:
            idle = [conn for conns in self._idle.values() for conn in conns]
            self._idle.clear()
        for conn in idle:
            conn.close()

    # -- requests ---------------------------------------------------------------------------
    def request(
        self,
        method: str,
        url: str,
        body: bytes | None,
        headers: dict[str, str],
        timeout: tuple[float, float],
    ) -> Reply:
        """Send one request, following redirects; HttpError when no answer comes back."""
        headers = {**headers}
        parts = urlsplit(url)
        if parts.username is not None and "Authorization" not in headers:
            user = unquote(parts.username).encode("latin1")
            secret = unquote(parts.password or "").encode("latin1")
            token = base64.b64encode(user + b":" + secret).decode()
            headers["Authorization"] = "Basic " + token
        for _ in range(MAX_REDIRECTS + 1):
            reply = self._once(method, url, body, headers, timeout)
            location = reply.headers.get("Location") if reply.status_code in REDIRECTS else None
            if location is None:
                return reply
            location = location.encode("latin1").decode("utf8", "replace")
            if location.startswith("//"):
                location = urlsplit(url).scheme + ":" + location
            target = urljoin(url, requote(location) if urlsplit(location).netloc else location)
            if urlsplit(target).hostname != urlsplit(url).hostname:
                headers.pop("Authorization", None)
            url = target
            code = reply.status_code
            if (code in (302, 303) and method != "HEAD") or (code == 301 and method == "POST"):
                method = "GET"
            if code not in (307, 308):
                body = None
                for name in BODY_HEADERS:
                    headers.pop(name, None)
        raise HttpError(f"Exceeded {MAX_REDIRECTS} redirects.")

    def _once(self, method: str, url: str, body, headers: dict, timeout) -> Reply:
        url = requote(url.partition("#")[0])
        parts = urlsplit(url)
        scheme, host = parts.scheme.lower(), parts.hostname
        if scheme not in ("http", "https") or not host:
            raise HttpError(f"Invalid URL {url!r}: no http(s) scheme or host")
        if not host.isascii():
            host = host.encode("idna").decode("ascii")
        try:
            port = parts.port or (443 if scheme == "https" else 80)
        except ValueError as exc:
            raise HttpError(f"Invalid URL {url!r}: {exc}") from exc
        path = (parts.path or "/") + ("?" + parts.query if parts.query else "")
        sent = headers if self._cookies is None else self._add_cookies(method, url, headers)
        key = (scheme, host, port)
        connect_timeout, read_timeout = timeout
        while True:
            conn = self._take(key)
            reused = conn is not None
            if conn is None:
                conn = self._connect(scheme, host, port, connect_timeout)
            try:
                status, answer, content, will_close = conn.exchange(
                    method, path, sent, body, read_timeout
                )
            except TimeoutError as exc:
                conn.close()
                raise ReadTimeout(f"{host}:{port}: read timed out ({read_timeout} s)") from exc
            except STALE as exc:
                conn.close()
                if reused:
                    continue
                raise HttpError(f"{host}:{port}: connection aborted: {exc!r}") from exc
            except (OSError, WireError, UnicodeError) as exc:
                conn.close()
                raise HttpError(f"{host}:{port}: connection aborted: {exc!r}") from exc
            break
        if will_close:
            conn.close()
        else:
            self._give(key, conn)
        if "Set-Cookie" in answer or "Set-Cookie2" in answer:
            self._store_cookies(method, url, sent, answer)
        content = _decode(content, answer.get("Content-Encoding"))
        return Reply(status, answer, content, url)

    # -- cookies (rare: only once some server set one) --------------------------------------
    def _add_cookies(self, method: str, url: str, headers: dict) -> dict:
        from urllib.request import Request

        request = Request(url, headers=headers, method=method)  # noqa: S310 (http(s) only)
        self._cookies.add_cookie_header(request)
        cookie = request.unredirected_hdrs.get("Cookie")
        return {**headers, "Cookie": cookie} if cookie else headers

    def _store_cookies(self, method: str, url: str, headers: dict, reply: Headers) -> None:
        from http.cookiejar import CookieJar
        from urllib.request import Request

        with self._lock:
            if self._cookies is None:
                self._cookies = CookieJar()
        request = Request(url, headers=headers, method=method)  # noqa: S310 (http(s) only)
        self._cookies.extract_cookies(_CookieSource(reply), request)


class _CookieSource:
    """What ``CookieJar.extract_cookies`` reads from a response: ``info().get_all``."""

    def __init__(self, headers: Headers) -> None:
        self.headers = headers

    def info(self) -> Headers:
        return self.headers
