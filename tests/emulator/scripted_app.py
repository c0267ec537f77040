"""A tiny TwiML app for the emulator's tests: scripted answers per path, signed requests kept."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests
from twilio.request_validator import RequestValidator
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

Handler = Callable[[dict], "str | tuple[str, int]"]


@dataclass
class Hit:
    path: str
    method: str
    url: str
    form: dict[str, str]
    signature: str | None
    valid: bool
    at: float = field(default_factory=time.monotonic)
    json: Any = None  # a Telegram update (its signature: the secret token header)


class TwimlApp:
    """Answers each path with fixed TwiML (or a function of the form); 404 for unknown paths."""

    def __init__(self, auth_token: str) -> None:
        self.validator = RequestValidator(auth_token)
        #: The secret a JSON (Telegram) request must carry in X-Telegram-Bot-Api-Secret-Token.
        self.telegram_secret: str | None = None
        self.routes: dict[str, tuple[Handler, int, float]] = {}
        self.hits: list[Hit] = []
        self.lock = threading.Lock()
        self.server = make_server("127.0.0.1", 0, self.wsgi, threaded=True)
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def start(self) -> TwimlApp:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)

    def url(self, path: str) -> str:
        return self.base + path

    def route(self, path: str, body: str | Handler, status: int = 200, delay: float = 0.0):
        """Answer ``path`` with ``body`` (TwiML text, or a function of the posted form)."""
        handler = body if callable(body) else (lambda form, text=body: text)
        self.routes[path] = (handler, status, delay)

    def hits_to(self, path: str) -> list[Hit]:
        with self.lock:
            return [h for h in self.hits if h.path == path]

    def forms(self, path: str) -> list[dict[str, str]]:
        return [h.form for h in self.hits_to(path)]

    def updates(self, path: str) -> list[Any]:
        """The JSON bodies (Telegram updates) posted to ``path``."""
        return [h.json for h in self.hits_to(path)]

    def wsgi(self, environ, start_response):
        request = Request(environ)
        url = request.url
        signature = request.headers.get("X-Twilio-Signature")
        body = None
        if request.is_json:
            body = request.get_json()
            signature = request.headers.get("X-Telegram-Bot-Api-Secret-Token")
            form, valid = {}, self.telegram_secret is not None and signature == self.telegram_secret
        elif request.method == "POST":
            form = request.form.to_dict()
            valid = self.validator.validate(url, form, signature or "")
        else:
            form = request.args.to_dict()
            valid = self.validator.validate(url, {}, signature or "")
        with self.lock:
            self.hits.append(
                Hit(request.path, request.method, url, form, signature, valid, json=body)
            )
        route = self.routes.get(request.path)
        if route is None:
            return Response("not found", 404)(environ, start_response)
        handler, status, delay = route
        if delay:
            time.sleep(delay)
        result = handler(form if body is None else body)
        if isinstance(result, tuple):
            result, status = result
        response = Response(result, status, content_type="text/xml")
        return response(environ, start_response)


def twiml(*verbs: str) -> str:
    """A Response document from verb snippets."""
    return '<?xml version="1.0" encoding="UTF-8"?><Response>' + "".join(verbs) + "</Response>"


def http_get(url: str, **kwargs) -> requests.Response:
    """requests.get with a timeout (the tests talk to local servers only)."""
    return requests.get(url, timeout=30, **kwargs)


def http_post(url: str, **kwargs) -> requests.Response:
    return requests.post(url, timeout=30, **kwargs)
