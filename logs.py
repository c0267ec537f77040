"""Logging for the hotline: what an operator needs at INFO, phone numbers redacted, libraries quiet.

``configure_logging(level)`` is the whole set-up (web app, CLI and worker alike):

* the root logger gets one stream handler (``%(asctime)s %(levelname)s %(name)s: %(message)s``)
  unless it already has one, and its level is ``level``;
* ``RedactPhoneNumbers`` goes on every handler of the root logger and of every logger that has
  handlers of its own at that moment (``rq worker`` and gunicorn install such non-propagating
  handlers before the app is loaded), once;
* the libraries in ``QUIET_LOGGERS`` log at WARNING (or ``level`` if that is higher) whatever
  ``level`` is: twilio's HTTP client would otherwise log every REST request with its headers;
* RQ logs at ``level`` (``rq worker -q``/``-v`` still win): a worker's "queue: job id", "Job OK",
  "Successfully completed job ... in ...s" and failures are what its operator reads. Only RQ's
  periodic maintenance and per-job result-lifespan lines are dropped (``RQ_CHATTER``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
REDACTED = "[number]"

#: Library loggers kept at WARNING (with their children, e.g. ``twilio.http_client``).
QUIET_LOGGERS: tuple[str, ...] = ("twilio", "urllib3", "werkzeug", "alembic")

#: ``rq.worker`` INFO message templates (rq 3.0) that are chatter, not events: registry
#: maintenance every few minutes and a second line per job about how long its result is kept.
RQ_CHATTER: frozenset[str] = frozenset(
    {
        "Worker %s: cleaning registries for queue: %s",
        "Worker %s: cleaning group registries",
        "Worker %s: job %s result discarded immediately",
        "Worker %s: job %s result is kept for %s seconds",
        "Worker %s: job %s result will never expire, clean up result key manually",
    }
)

# Between two digits of a number: nothing, or a closing parenthesis, one space, dot or dash, an
# opening parenthesis, in that order, each optional: "8 (916) 123-45-67", "+44-20-7946-0958".
_BODY = r"\(?\d(?:\)?[ \u00a0.\-]?\(?\d)*"
_CANDIDATE = re.compile(
    rf"""
    (?P<prefixed>(?:\+|%2[Bb]){_BODY})       # +7..., whatsapp:+7..., tel:+7..., From=%2B7...
    |
    (?<!\w)(?<!\w[.\-])(?<!\d:)              # not inside a token: SID, hex, uuid-1234, 1.5, :51
    (?P<bare>{_BODY})
    (?!\w)(?![.\-:]\d)                       # ...nor continued by one: 2010-04-01T, 10.0.0.1:80
    """,
    re.VERBOSE,
)
_SPACES = re.compile(r"([ \u00a0]+)")
_NOT_A_NUMBER = re.compile(
    r"""
    \d{1,3}(?:\.\d{1,3}){3}                                             # IPv4 address
    | (?:19|20)\d\d[-.](?:0?[1-9]|1[0-2])[-.](?:0?[1-9]|[12]\d|3[01])   # 2010-04-01
    | (?:0?[1-9]|[12]\d|3[01])[-.](?:0?[1-9]|[12]\d|3[01])[-.](?:19|20)\d\d  # 07.12.2026
    | \d{1,10}\.\d+                                                     # 1765136751.123, 0.87
    """,
    re.VERBOSE,
)


def _redact_run(parts: list[str], prefixed: bool) -> str:
    """A run of digit groups (even indices) and the spaces between them (odd ones), none of the
    groups a date, an address or a decimal: one number, several side by side, or none."""
    groups = parts[::2]
    digits = sum(char.isdecimal() for group in groups for char in group)
    if digits < 7:
        return "".join(parts)
    if len(groups) == 1 and not prefixed and digits > 15 and groups[0].isdecimal():
        return groups[0]  # a long identifier, not a number anyone dials
    if len(groups) == 2 and digits < 10 and not prefixed:  # "200 1234": two numbers, maybe one
        return "".join(p if i % 2 else _redact_run([p], False) for i, p in enumerate(parts))
    return REDACTED


def _redact_candidate(text: str, prefixed: bool) -> str:
    """Splits ``text`` at its space-separated groups that are not numbers (``2010-04-01``,
    ``10.0.0.1``, ``0.87``) and redacts the runs of groups between them."""
    parts = _SPACES.split(text)  # groups at even indices, the spaces between them at odd ones
    out: list[str] = []
    run_start = 0
    for i in range(0, len(parts), 2):
        if _NOT_A_NUMBER.fullmatch(parts[i].strip("()")):
            if i > run_start:
                out.append(_redact_run(parts[run_start : i - 1], prefixed and run_start == 0))
                out.append(parts[i - 1])
            out.append(parts[i])
            out.extend(parts[i + 1 : i + 2])
            run_start = i + 2
    if run_start < len(parts):
        out.append(_redact_run(parts[run_start:], prefixed and run_start == 0))
    return "".join(out)


def _replace(match: re.Match[str]) -> str:
    text = match.group()
    opening = ""
    if text.startswith("(") and ")" not in text:  # "(79161234567)" keeps its parentheses
        opening, text = "(", text[1:]
    return opening + _redact_candidate(text, match.lastgroup == "prefixed")


def redact(text: str) -> str:
    """``text`` with every phone number replaced by ``[number]`` (see ``RedactPhoneNumbers``)."""
    return _CANDIDATE.sub(_replace, text)


class RedactPhoneNumbers(logging.Filter):
    """Defence in depth: no log line leaves the process with a phone number in it.

    The code never logs numbers; this catches what a library or an exception message might. The
    formatted message (``msg % args``: a number passed as an argument is caught too), the
    traceback (``exc_text``, formatted here if no handler did yet) and ``stack_info`` are
    redacted in place, so every handler after this one sees the redacted record. A record with
    nothing to redact keeps its ``msg`` and ``args``.

    The rule. A phone number is a run of digits, grouped or not by single spaces, dots, dashes
    and parentheses (``8 (916) 123-45-67``, ``916.123.4567``), that

    * follows ``+`` or ``%2B`` and has at least 7 digits (E.164 in any spelling, also after
      ``tel:``, ``whatsapp:``, ``sip:``, ``From=``), or
    * stands alone and has 7 to 15 digits: not part of a longer token (not after a letter,
      digit or ``_``, nor after ``x.``/``x-``/``9:``, nor followed by a letter or ``.5``/``-5``/
      ``:5``). So SIDs (``CA`` + 32 hex), hex digests, UUIDs, ``job-1234567``, the fraction of
      ``19:45:51.123456`` and ISO timestamps (``2026-12-07T19:45:51.123+00:00``) are kept.

    Kept as well, although digit-shaped: IPv4 addresses (and ``ip:port``), dates
    (``2010-04-01``, ``07.12.2026``), decimals with up to 10 integer digits (``1765136751.123``,
    ``0.87``), two space-separated groups of fewer than 10 digits in all (``200 1234`` in an
    access log; a 7-digit ``555 0100`` is kept with them), and anything under 7 digits (ports,
    status codes, counts, durations, versions like ``3.11.7``). Numbers side by side are redacted
    one by one (``2026-12-07 89161234567`` -> ``2026-12-07 [number]``). Redacted on purpose,
    although maybe not a phone number: any other 7-15 digit run, such as a Unix time without a
    fraction (``1765136751``), a large PID or a byte count of a megabyte or more.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # let the handler report the bad format, without the arguments' numbers
            record.msg, record.args = redact(f"{record.msg!s} (arguments: {record.args!r})"), None
        else:
            redacted = redact(message)
            if redacted != message:
                record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class DropChatter(logging.Filter):
    """On a logger: drops the records whose message template is one of ``templates``."""

    def __init__(self, templates: frozenset[str]):
        super().__init__()
        self.templates = templates

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and record.msg in self.templates)


def _add_once(
    target: logging.Filterer, kind: type[logging.Filter], make: Callable[[], logging.Filter]
) -> None:
    if not any(isinstance(existing, kind) for existing in target.filters):
        target.addFilter(make())


def configure_logging(level: str) -> None:
    """Set up logging for the process (see the module's docstring); calling it again adds nothing
    twice. ``level`` is a level name (``"INFO"``, ``"debug"``)."""
    root = logging.getLogger()
    if not any(isinstance(h, logging.StreamHandler) for h in root.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        root.addHandler(handler)
    loggers = [root, *root.manager.loggerDict.values()]
    for logger in loggers:
        for handler in getattr(logger, "handlers", ()):  # placeholders have none
            _add_once(handler, RedactPhoneNumbers, RedactPhoneNumbers)
    root.setLevel(level.upper())

    quiet = max(logging.WARNING, root.level)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(quiet)
    for name, logger in list(root.manager.loggerDict.items()):  # a child set lower explicitly
        if (
            isinstance(logger, logging.Logger)
            and name.startswith(tuple(f"{quiet_name}." for quiet_name in QUIET_LOGGERS))
            and logger.level != logging.NOTSET
            and logger.level < quiet
        ):
            logger.setLevel(quiet)
    # RQ sets its worker's logger to INFO when imported; ``rq worker -q``/``-v``/``--logging_level``
    # (applied when the worker starts, after the app is built) still take precedence over this.
    worker = logging.getLogger("rq.worker")
    worker.setLevel(root.level)
    _add_once(worker, DropChatter, lambda: DropChatter(RQ_CHATTER))
