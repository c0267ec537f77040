"""Signed HTTP requests to the app, as Twilio makes them (timeouts, retries, overrides)."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote_plus, urlencode

from .errors import CarrierError
from .httpclient import ConnectTimeout, HttpError, HttpPool, ReadTimeout, Reply

USER_AGENT = "TwilioProxy/1.1"
# The headers of every webhook, in the order the requests session used to send them.
GET_HEADERS = {
    "User-Agent": USER_AGENT,
    "Accept-Encoding": "gzip, deflate",
    "Accept": "*/*",
    "Connection": "keep-alive",
}
FORM_TYPE = "application/x-www-form-urlencoded; charset=utf-8"


@dataclass(frozen=True)
class Overrides:
    """Connection overrides from a URL fragment (#ct=..&rt=..&tt=..&rc=..&rp=..), in seconds."""

    connect: float = 5.0
    read: float = 15.0
    total: float = 15.0
    retries: int = 1
    policy: frozenset[str] = frozenset({"ct"})

    @classmethod
    @functools.lru_cache(maxsize=256)
    def parse(cls, fragment: str) -> Overrides:
        values = dict(parse_qsl(fragment))

        def millis(name: str, low: int, high: int, default: float) -> float:
            raw = values.get(name)
            if raw is None or not raw.isdigit():
                return default
            return min(max(int(raw), low), high) / 1000.0

        retries = values.get("rc", "")
        policy = values.get("rp")
        return cls(
            connect=millis("ct", 100, 10000, 5.0),
            read=millis("rt", 100, 15000, 15.0),
            total=millis("tt", 100, 15000, 15.0),
            retries=min(int(retries), 5) if retries.isdigit() else 1,
            policy=frozenset(policy.split(",")) if policy else frozenset({"ct"}),
        )


@functools.lru_cache(maxsize=1024)
def split_fragment(url: str) -> tuple[str, Overrides]:
    """The URL to request (fragment removed) and the connection overrides it carried."""
    base, _, fragment = url.partition("#")
    return base, Overrides.parse(fragment)


_QUOTED: dict[str, str] = {}


def _quoted(text: str) -> str:
    """``quote_plus(text)``, remembered: names and most values recur from call to call."""
    found = _QUOTED.get(text)
    if found is None:
        if len(_QUOTED) > 20000:
            _QUOTED.clear()
        found = _QUOTED[text] = quote_plus(text)
    return found


def form_body(params: dict[str, str]) -> bytes:
    """``urlencode(params)`` (``None`` values left out, as requests did), as bytes."""
    return "&".join(
        [
            _quoted(name) + "=" + _quoted(value)
            for name, value in params.items()
            if value is not None
        ]
    ).encode("ascii")


class Signer:
    """``RequestValidator(auth_token).compute_signature`` for plain dicts, with the HMAC key
    schedule done once: HMAC-SHA1 over the URL then each parameter name and value, sorted."""

    def __init__(self, auth_token: str) -> None:
        self._mac = hmac.new(auth_token.encode("utf-8"), digestmod=hashlib.sha1)

    def sign(self, url: str, params: dict[str, str]) -> str:
        mac = self._mac.copy()
        if params:
            url += "".join([name + params[name] for name in sorted(params)])
        mac.update(url.encode("utf-8"))
        return base64.b64encode(mac.digest()).decode("utf-8").strip()


class Webhooks:
    """Sends Twilio's webhook requests over keep-alive connections shared by all call threads."""

    def __init__(self, auth_token: str, pool_size: int = 128) -> None:
        self.signer = Signer(auth_token)
        self.http = HttpPool(pool_size)
        #: Called with (url, params, reply) after each answered webhook (``Emulator.observe``).
        self.observers: list[Callable[[str, dict[str, str], Reply], None]] = []

    def close(self) -> None:
        self.http.close()

    def signed(self, url: str, method: str, params: dict[str, str]) -> tuple[str, bytes, dict]:
        """The URL to request, the form body and the headers, signed like Twilio signs them."""
        if method.upper() == "GET":
            sep = "&" if "?" in url else "?"
            full = url + (sep + urlencode(params) if params else "")
            headers = {**GET_HEADERS, "X-Twilio-Signature": self.signer.sign(full, {})}
            return full, b"", headers
        headers = {
            **GET_HEADERS,
            "X-Twilio-Signature": self.signer.sign(url, params),
            "Content-Type": FORM_TYPE,
        }
        return url, form_body(params), headers

    def send(self, url: str, method: str, params: dict[str, str]) -> Reply:
        """Request ``url`` (with its override fragment); CarrierError 11200/11205 on failure."""
        target, opts = split_fragment(url)
        method = method.upper()
        full, body, headers = self.signed(target, method, params)
        attempts = 1 + opts.retries
        timeout = (min(opts.connect, opts.total), min(opts.read, opts.total))
        last: CarrierError | None = None
        for _ in range(attempts):
            try:
                response = self.http.request(method, full, body or None, headers, timeout)
            except ConnectTimeout as exc:
                last = CarrierError(11205, f"HTTP connection failure: {exc}", target)
                if not opts.policy & {"ct", "all"}:
                    break
                continue
            except ReadTimeout as exc:
                last = CarrierError(11205, f"HTTP connection failure: read timeout: {exc}", target)
                if not opts.policy & {"rt", "all"}:
                    break
                continue
            except HttpError as exc:
                last = CarrierError(11200, f"HTTP retrieval failure: {exc}", target)
                if not opts.policy & {"ct", "all"}:
                    break
                continue
            if 200 <= response.status_code < 300:
                for observer in self.observers:
                    observer(target, params, response)
                return response
            last = CarrierError(
                11200, f"HTTP retrieval failure: status {response.status_code}", target
            )
            kind = "4xx" if response.status_code < 500 else "5xx"
            if not opts.policy & {kind, "all"}:
                break
        assert last is not None
        raise last
