"""HTTP/1.1 on one socket: write a request, read the answer (fixed length, chunked, or until
the server closes). Small and allocation-light: webhooks are many short request/answer pairs."""

from __future__ import annotations

import select
import socket

MAX_HEAD = 65536  # bytes of status line + headers we accept
NO_BODY = frozenset({204, 304})


class WireError(Exception):
    """The server broke the protocol or the connection (no complete answer)."""


class Closed(WireError):
    """The server closed the connection before sending anything (a stale keep-alive)."""


class Headers:
    """Response headers: case-insensitive lookup; repeated headers joined like ``requests``."""

    __slots__ = ("_joined", "items")

    def __init__(self, items: list[tuple[str, str]]) -> None:
        self.items = items
        joined: dict[str, str] = {}
        for key, value in items:
            key = key.lower()
            joined[key] = joined[key] + ", " + value if key in joined else value
        self._joined = joined

    def get(self, name: str, default: str | None = None) -> str | None:
        return self._joined.get(name.lower(), default)

    def get_all(self, name: str, default: list | None = None) -> list[str] | None:
        name = name.lower()
        found = [value for key, value in self.items if key.lower() == name]
        return found or default

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._joined

    def __getitem__(self, name: str) -> str:
        return self._joined[name.lower()]

    def __iter__(self):
        return (key for key, _ in self.items)


def _open(host: str, port: int, timeout: float) -> socket.socket:
    """A TCP connection; IP literals connect directly (no resolver, no IDNA codec)."""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
        except OSError:
            continue
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect((host, port))
        except BaseException:
            sock.close()
            raise
        return sock
    return socket.create_connection((host, port), timeout)


class Connection:
    """One client connection to ``host:port`` (TLS when given an SSL context)."""

    def __init__(self, host: str, port: int, timeout: float, context=None) -> None:
        sock = _open(host, port, timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if context is not None:
                sock = context.wrap_socket(sock, server_hostname=host)
        except BaseException:
            sock.close()
            raise
        self.sock: socket.socket | None = sock
        self.host_header = (f"[{host}]" if ":" in host else host) + (
            "" if port == (443 if context is not None else 80) else f":{port}"
        )
        self._buf = b""

    def close(self) -> None:
        sock, self.sock = self.sock, None
        if sock is not None:
            sock.close()

    def dropped(self) -> bool:
        """An idle keep-alive connection the server closed (readable means EOF or junk)."""
        if self.sock is None or self._buf:
            return True
        try:
            poller = select.poll()
            poller.register(self.sock, select.POLLIN)
            return bool(poller.poll(0))
        except (OSError, ValueError):
            return True

    # -- the exchange -----------------------------------------------------------------------
    def exchange(
        self, method: str, path: str, headers: dict[str, str], body: bytes | None, timeout: float
    ) -> tuple[int, Headers, bytes, bool]:
        """Send a request and read its answer: (status, headers, body, server will close)."""
        sock = self.sock
        if sock is None:
            raise Closed("connection closed")
        lines = [f"{method} {path} HTTP/1.1", "Host: " + self.host_header]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        if body is not None or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body or b'')}")
        lines += ["", ""]
        head = "\r\n".join(lines).encode("latin-1")
        sock.settimeout(timeout)
        sock.sendall(head + body if body else head)
        while True:
            status, version, fields = self._read_head()
            if not 100 <= status < 200 or status == 101:
                break  # 1xx informational answers precede the real one
        reply = Headers(fields)
        connection = (reply.get("Connection") or "").lower()
        will_close = "close" in connection or (
            version == "HTTP/1.0" and "keep-alive" not in connection
        )
        if method == "HEAD" or status in NO_BODY or 100 <= status < 200:
            content = b""
        elif "chunked" in (reply.get("Transfer-Encoding") or "").lower():
            content = self._read_chunked()
        elif reply.get("Content-Length") is not None:
            try:
                length = int(reply.get("Content-Length").split(",")[0])
            except ValueError as exc:
                raise WireError(f"bad Content-Length {reply.get('Content-Length')!r}") from exc
            content = self._read_exact(length)
        else:
            content, will_close = self._read_to_end(), True
        return status, reply, content, will_close

    def _recv(self) -> bytes:
        return self.sock.recv(65536)  # type: ignore[union-attr]

    def _read_head(self) -> tuple[int, str, list[tuple[str, str]]]:
        buf = self._buf
        while True:
            end = buf.find(b"\r\n\r\n")
            if end >= 0:
                size = 4
                break
            end = buf.find(b"\n\n")
            if end >= 0:
                size = 2
                break
            if len(buf) > MAX_HEAD:
                raise WireError("response headers too long")
            data = self._recv()
            if not data:
                if not buf.strip():
                    raise Closed("the server closed the connection without answering")
                raise WireError("the server closed the connection mid-answer")
            buf += data
        head, self._buf = buf[:end].decode("latin-1"), buf[end + size :]
        lines = head.replace("\r\n", "\n").split("\n")
        version, _, rest = lines[0].partition(" ")
        code = rest.partition(" ")[0]
        if not version.startswith("HTTP/") or len(code) != 3 or not code.isdigit():
            raise WireError(f"bad status line {lines[0]!r}")
        fields: list[tuple[str, str]] = []
        for line in lines[1:]:
            if line[:1] in (" ", "\t") and fields:
                name, value = fields[-1]
                fields[-1] = (name, value + " " + line.strip())
                continue
            name, sep, value = line.partition(":")
            if sep:
                fields.append((name.strip(), value.strip()))
        return int(code), version, fields

    def _read_exact(self, length: int) -> bytes:
        buf = self._buf
        while len(buf) < length:
            data = self._recv()
            if not data:
                raise WireError(f"incomplete answer: {len(buf)} of {length} bytes")
            buf += data
        self._buf = buf[length:]
        return buf[:length]

    def _read_line(self) -> bytes:
        buf = self._buf
        while True:
            end = buf.find(b"\n")
            if end >= 0:
                self._buf = buf[end + 1 :]
                return buf[:end].rstrip(b"\r")
            if len(buf) > MAX_HEAD:
                raise WireError("chunk header too long")
            data = self._recv()
            if not data:
                raise WireError("incomplete chunked answer")
            buf += data
            self._buf = buf

    def _read_chunked(self) -> bytes:
        parts = []
        while True:
            line = self._read_line()
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError as exc:
                raise WireError(f"bad chunk size {line!r}") from exc
            if size == 0:
                while self._read_line():  # trailers, up to the empty line
                    pass
                return b"".join(parts)
            parts.append(self._read_exact(size))
            self._read_line()

    def _read_to_end(self) -> bytes:
        parts = [self._buf]
        self._buf = b""
        while True:
            data = self._recv()
            if not data:
                return b"".join(parts)
            parts.append(data)
