"""Signed HTTP requests to the app, as Twilio makes them (timeouts, retries, overrides)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

import requests
from requests.adapters import HTTPAdapter
from twilio.request_validator import RequestValidator

from .errors import CarrierError

USER_AGENT = "TwilioProxy/1.1"


@dataclass(frozen=True)
class Overrides:
    """Connection overrides from a URL fragment (#ct=..&rt=..&tt=..&rc=..&rp=..), in seconds."""

    connect: float = 5.0
    read: float = 15.0
    total: float = 15.0
    retries: int = 1
    policy: frozenset[str] = frozenset({"ct"})

    @classmethod
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


def split_fragment(url: str) -> tuple[str, Overrides]:
    """The URL to request (fragment removed) and the connection overrides it carried."""
    base, _, fragment = url.partition("#")
    return base, Overrides.parse(fragment)


class Webhooks:
    """Sends Twilio's webhook requests with one pooled session shared by all call threads."""

    def __init__(self, auth_token: str, pool_size: int = 128) -> None:
        self.validator = RequestValidator(auth_token)
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=16, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.trust_env = False

    def close(self) -> None:
        self.session.close()

    def signed(self, url: str, method: str, params: dict[str, str]) -> tuple[str, dict, dict]:
        """The URL to request, the form body and the headers, signed like Twilio signs them."""
        method = method.upper()
        if method == "GET":
            sep = "&" if "?" in url else "?"
            full = url + (sep + urlencode(params) if params else "")
            signature = self.validator.compute_signature(full, {})
            return full, {}, {"X-Twilio-Signature": signature, "User-Agent": USER_AGENT}
        signature = self.validator.compute_signature(url, params)
        headers = {
            "X-Twilio-Signature": signature,
            "User-Agent": USER_AGENT,
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
        }
        return url, params, headers

    def send(self, url: str, method: str, params: dict[str, str]) -> requests.Response:
        """Request ``url`` (with its override fragment); CarrierError 11200/11205 on failure."""
        target, opts = split_fragment(url)
        full, body, headers = self.signed(target, method, params)
        attempts = 1 + opts.retries
        timeout = (min(opts.connect, opts.total), min(opts.read, opts.total))
        last: CarrierError | None = None
        for _ in range(attempts):
            try:
                response = self.session.request(
                    method.upper(), full, data=body or None, headers=headers, timeout=timeout
                )
            except requests.exceptions.ConnectTimeout as exc:
                last = CarrierError(11205, f"HTTP connection failure: {exc}", target)
                if not opts.policy & {"ct", "all"}:
                    break
                continue
            except requests.exceptions.ReadTimeout as exc:
                last = CarrierError(11205, f"HTTP connection failure: read timeout: {exc}", target)
                if not opts.policy & {"rt", "all"}:
                    break
                continue
            except requests.exceptions.RequestException as exc:
                last = CarrierError(11200, f"HTTP retrieval failure: {exc}", target)
                if not opts.policy & {"ct", "all"}:
                    break
                continue
            if 200 <= response.status_code < 300:
                return response
            last = CarrierError(
                11200, f"HTTP retrieval failure: status {response.status_code}", target
            )
            kind = "4xx" if response.status_code < 500 else "5xx"
            if not opts.policy & {kind, "all"}:
                break
        assert last is not None
        raise last
