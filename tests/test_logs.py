"""``logs``: phone numbers (and only phone numbers) redacted, library chatter kept at WARNING.

Every case goes through a real logger and handler into a ``StringIO``; the text written is what
is asserted. The root logger's handlers, and every logger's level and filters, are put back after
each test.
"""

from __future__ import annotations

import inspect
import io
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import rq.worker.base
from twilio.http.http_client import TwilioHttpClient

from logs import (
    LOG_FORMAT,
    QUIET_LOGGERS,
    RQ_CHATTER,
    DropChatter,
    RedactPhoneNumbers,
    configure_logging,
)

NUMBER = "+79161234567"

MUST_REDACT = [
    # (what is logged, what the log must say)
    ("caller +79161234567 hung up", "caller [number] hung up"),
    ("caller +380 50 123 45 67 hung up", "caller [number] hung up"),
    ("caller +1 (415) 555-0100 hung up", "caller [number] hung up"),
    ("caller +44-20-7946-0958 hung up", "caller [number] hung up"),
    ("from whatsapp:+79161234567", "from whatsapp:[number]"),
    ("dial tel:+79161234567", "dial tel:[number]"),
    ("From=%2B79161234567&To=%2b15005550006", "From=[number]&To=[number]"),
    ("From=whatsapp%3A%2B79161234567", "From=whatsapp%3A[number]"),
    ("мой номер 8 (916) 123-45-67, перезвоните", "мой номер [number], перезвоните"),
    ("мой номер 89161234567", "мой номер [number]"),
    ("national 0501234567 here", "national [number] here"),
    ("national 9161234567 here", "national [number] here"),
    ("(916) 123-45-67", "[number]"),
    ("number (79161234567)", "number ([number])"),
    ("dotted 916.123.4567", "dotted [number]"),
    ("short 123-45-67", "short [number]"),
    ("sip:79161234567@sip.example.org", "sip:[number]@sip.example.org"),
    ("GET /callers/79161234567/notes", "GET /callers/[number]/notes"),
    ("{'to': '+79161234567', 'n': 2}", "{'to': '[number]', 'n': 2}"),
    ("caller 89161234567: busy", "caller [number]: busy"),
    ("as a float 79161234567.0", "as a float [number]"),
    ("two +7 916 123 45 67 8 916 123 45 67", "two [number]"),
    ("a list 89161234567 89161234568", "a list [number]"),
    ("on 2026-12-07 8 916 123 45 67 called", "on 2026-12-07 [number] called"),
    ("at 19:45:51 89161234567 called", "at 19:45:51 [number] called"),
    ("from 10.0.0.1 89161234567", "from 10.0.0.1 [number]"),
    ("attempt 2 1234567", "attempt 2 [number]"),  # two groups, 9 digits: one by one
    ("HTTP/1.1 200 1234567", "HTTP/1.1 [number]"),  # two groups, 10 digits: "916 1234567"
]

MUST_NOT_REDACT = [
    "GET /health from 127.0.0.1",
    "listening on 127.0.0.1:5000",
    "upstream 192.168.100.200:8080 and 192.168.100.200",
    "POST https://api.twilio.com/2010-04-01/Accounts/AC" + "5" * 32 + "/Calls.json",
    "started 2026-12-07 19:45:51",
    "started 2026-12-07 19:45:51,123 and 07.12.2026",
    "at 2026-12-07T19:45:51.123+00:00 or 2026-12-07T19:45:51Z",
    "at 2026-12-07 19:45:51 +0300",
    "at 19:45:51 and 19:45:51.123456",
    "Python 3.11.7, rq 3.0.0",
    "call CA" + "1234567890" * 3 + "ab recording RE" + "0" * 32,
    "job 123e4567-e89b-12d3-a456-426614174000 and 12345678-1234-12d3-a456-426614174000",
    "sha256 a3f9" + "1234567890" * 6,
    "took 1234 ms",
    "id 42",
    "job routing-dispatch-enter-17 and job-1234567",
    '127.0.0.1 - - [07/Dec/2026 19:45:51] "GET /health HTTP/1.1" 200 1234 "-"',
    "error 11205, status 503",
    "heartbeat 1765136751.123 confidence 0.8700000000000001",
    "Successfully completed job abc in 0:00:01.234567s",
    "counted 1,234,567 bytes",
    "snowflake 12345678901234567890",
    "localhost:6379 db 0",
]


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Every logger's level, filters, propagation and (but the root's) handlers, and every
    handler's filters, as before the test. The root's handlers are pytest's own, different in
    each phase: ``root_handlers`` puts them back within the test."""
    root = logging.getLogger()
    loggers = [
        root,
        *(lg for lg in root.manager.loggerDict.values() if isinstance(lg, logging.Logger)),
    ]
    saved = {lg: (lg.level, lg.filters[:], lg.propagate, lg.handlers[:]) for lg in loggers}
    handler_filters = {h: h.filters[:] for lg in loggers for h in lg.handlers}
    yield
    for logger in [root, *root.manager.loggerDict.values()]:
        if isinstance(logger, logging.Logger) and logger not in saved:
            logger.setLevel(logging.NOTSET)
            logger.filters.clear()
            logger.handlers.clear()
            logger.propagate = True
    for logger, (level, filters, propagate, handlers) in saved.items():
        logger.setLevel(level)
        logger.filters[:] = filters
        logger.propagate = propagate
        if logger is not root:
            logger.handlers[:] = handlers
    for handler, filters in handler_filters.items():
        handler.filters[:] = filters


@contextmanager
def root_handlers(*handlers: logging.Handler) -> Iterator[None]:
    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers[:] = handlers
    try:
        yield
    finally:
        root.handlers[:] = saved


def stream_handler(stream: io.StringIO) -> logging.StreamHandler:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    return handler


def redacting_logger() -> tuple[logging.Logger, io.StringIO]:
    """A logger of its own (no parent) whose one handler redacts and writes to a ``StringIO``."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactPhoneNumbers())
    log = logging.Logger("hotline.test")
    log.addHandler(handler)
    return log, stream


@pytest.mark.parametrize(("message", "expected"), MUST_REDACT)
def test_a_phone_number_is_redacted(message: str, expected: str) -> None:
    log, stream = redacting_logger()
    log.warning(message)
    assert stream.getvalue() == expected + "\n"


@pytest.mark.parametrize("message", MUST_NOT_REDACT)
def test_what_is_not_a_phone_number_is_kept(message: str) -> None:
    log, stream = redacting_logger()
    log.warning(message)
    assert stream.getvalue() == message + "\n"


@pytest.mark.parametrize("number", [NUMBER, 79161234567, "8 (916) 123-45-67"])
def test_a_number_in_the_arguments_is_redacted(number: object) -> None:
    log, stream = redacting_logger()
    log.info("caller %s asked for %s on %s", number, 2, "2010-04-01")
    log.info("caller %(from)s", {"from": number})
    log.info("a %s line", "quiet")
    assert stream.getvalue().splitlines() == [
        "caller [number] asked for 2 on 2010-04-01",
        "caller [number]",
        "a quiet line",
    ]


def test_a_record_without_a_number_keeps_its_message_and_arguments() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "took %d ms", (1234,), None)
    assert RedactPhoneNumbers().filter(record) is True
    assert (record.msg, record.args) == ("took %d ms", (1234,))
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "from %s", (NUMBER,), None)
    RedactPhoneNumbers().filter(record)
    assert (record.msg, record.args) == ("from [number]", None)


def test_a_bad_format_is_reported_without_the_number(capsys: pytest.CaptureFixture[str]) -> None:
    log, stream = redacting_logger()
    log.info("caller %s and %s", NUMBER)  # one argument short: logging reports it on stderr
    written = stream.getvalue() + capsys.readouterr().err
    assert "[number]" in written
    assert "9161234567" not in written


def test_a_number_in_a_traceback_is_redacted() -> None:
    log, stream = redacting_logger()
    try:
        try:
            raise KeyError(f"no route for {NUMBER}")
        except KeyError as exc:
            raise RuntimeError("dispatch of 8 916 123-45-67 failed at 2026-12-07 19:45:51") from exc
    except RuntimeError:
        log.exception("hand-over of %s failed", NUMBER)
    output = stream.getvalue()
    assert output.startswith("hand-over of [number] failed\nTraceback (most recent call last):")
    assert "KeyError: 'no route for [number]'" in output
    assert "RuntimeError: dispatch of [number] failed at 2026-12-07 19:45:51" in output
    assert "916" not in output


def test_a_traceback_formatted_by_an_earlier_handler_is_redacted_too() -> None:
    plain, redacted = io.StringIO(), io.StringIO()
    log = logging.Logger("hotline.test")
    log.addHandler(logging.StreamHandler(plain))  # formats (and caches) the traceback first
    log.addHandler(filtered := logging.StreamHandler(redacted))
    filtered.addFilter(RedactPhoneNumbers())
    try:
        raise ValueError(f"bad caller {NUMBER}")
    except ValueError:
        log.exception("failed")
    assert f"ValueError: bad caller {NUMBER}" in plain.getvalue()
    assert "ValueError: bad caller [number]" in redacted.getvalue()
    assert NUMBER not in redacted.getvalue()


def test_stack_info_is_redacted() -> None:
    log, stream = redacting_logger()
    log.info("here", stack_info=True)  # the stack shows this line: caller 89161234567
    output = stream.getvalue()
    assert "Stack (most recent call last):" in output
    assert "# the stack shows this line: caller [number]" in output
    assert "89161234567" not in output


@pytest.mark.parametrize("level", ["INFO", "DEBUG", "info"])
def test_twilio_http_client_is_quiet_and_the_app_is_heard(level: str) -> None:
    stream = io.StringIO()
    with root_handlers(stream_handler(stream)):
        configure_logging(level)
        TwilioHttpClient().log_request(
            {
                "method": "POST",
                "url": "https://api.twilio.com/2010-04-01/Accounts/AC" + "5" * 32 + "/Calls.json",
                "params": {"PageSize": "50"},
                "headers": {"User-Agent": "twilio-python/9.13.0", "X-Forwarded-For": NUMBER},
            }
        )
        logging.getLogger("twilio.http_client").info("-- BEGIN Twilio API Request --")
        logging.getLogger("twilio.http_client").warning("retrying for %s", NUMBER)
        logging.getLogger("urllib3.connectionpool").info("Starting new HTTPS connection (1)")
        logging.getLogger("hotline.routing").info("call CA%s handed over", "1" * 32)
        logging.getLogger("hotline.routing").debug("offer details")
    lines = stream.getvalue().splitlines()
    assert "WARNING twilio.http_client: retrying for [number]" in lines
    assert "INFO hotline.routing: call CA" + "1" * 32 + " handed over" in lines
    assert not [line for line in lines if line.startswith("INFO twilio")]
    assert not [line for line in lines if "urllib3" in line]
    assert ("DEBUG hotline.routing: offer details" in lines) == (level == "DEBUG")
    assert len(lines) == 2 + (level == "DEBUG")


def test_at_error_a_library_warning_is_not_emitted_either() -> None:
    stream = io.StringIO()
    with root_handlers(stream_handler(stream)):
        configure_logging("ERROR")
        logging.getLogger("twilio.http_client").warning("slow")
        logging.getLogger("hotline.routing").warning("slow")
        logging.getLogger("twilio.http_client").error("failed")
    assert stream.getvalue() == "ERROR twilio.http_client: failed\n"


def test_quiet_loggers_and_their_children_stay_at_warning() -> None:
    assert {"twilio", "urllib3", "werkzeug", "alembic"} <= set(QUIET_LOGGERS)
    logging.getLogger("twilio.http_client").setLevel(logging.DEBUG)  # set lower before
    with root_handlers(stream_handler(io.StringIO())):
        configure_logging("DEBUG")
    for name in [*QUIET_LOGGERS, "twilio.http_client", "alembic.runtime.migration"]:
        assert logging.getLogger(name).getEffectiveLevel() == logging.WARNING, name
    assert logging.getLogger("rq.worker").getEffectiveLevel() == logging.DEBUG
    assert logging.getLogger("hotline.ivr").getEffectiveLevel() == logging.DEBUG


def test_without_a_handler_one_is_added_with_the_format() -> None:
    with root_handlers():
        configure_logging("INFO")
        root = logging.getLogger()
        assert len(root.handlers) == 1
        (handler,) = root.handlers
        assert isinstance(handler, logging.StreamHandler)
        assert handler.stream is sys.stderr
        assert handler.formatter is not None
        assert handler.formatter._fmt == LOG_FORMAT
        handler.setStream(stream := io.StringIO())
        logging.getLogger("hotline.ivr").info("caller %s pressed 1", NUMBER)
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO hotline\.ivr: caller \[number\] pressed 1\n",
        stream.getvalue(),
    ), stream.getvalue()


def test_configuring_twice_adds_nothing_twice() -> None:
    stream = io.StringIO()
    handler = stream_handler(stream)
    with root_handlers(handler):
        configure_logging("INFO")
        configure_logging("INFO")
        assert logging.getLogger().handlers == [handler]
        assert [type(f) for f in handler.filters] == [RedactPhoneNumbers]
        worker_filters = logging.getLogger("rq.worker").filters
        assert [type(f) for f in worker_filters].count(DropChatter) == 1
        logging.getLogger("hotline.ivr").info("once")
    assert stream.getvalue() == "INFO hotline.ivr: once\n"


def test_a_handler_of_a_non_propagating_logger_redacts_too() -> None:
    """``rq worker`` (and gunicorn) give their loggers handlers of their own, not propagating."""
    own, seen_by_root = io.StringIO(), io.StringIO()
    worker = logging.getLogger("rq.worker")
    worker.addHandler(stream_handler(own))
    worker.propagate = False
    with root_handlers(stream_handler(seen_by_root)):
        configure_logging("INFO")
        worker.info("Worker %s: %s: %s", "w1", "hotline", "ivr.jobs.replay('+79161234567')")
    assert own.getvalue() == "INFO rq.worker: Worker w1: hotline: ivr.jobs.replay('[number]')\n"
    assert seen_by_root.getvalue() == ""


def test_rq_worker_events_are_logged_and_its_chatter_is_not() -> None:
    stream = io.StringIO()
    worker = logging.getLogger("rq.worker")
    with root_handlers(stream_handler(stream)):
        configure_logging("INFO")
        worker.info("Worker %s: %s: %s", "w1", "hotline", "job1")
        worker.info("Worker %s: cleaning registries for queue: %s", "w1", "hotline")
        worker.info("Worker %s: cleaning group registries", "w1")
        worker.info("Worker %s: job %s result is kept for %s seconds", "w1", "job1", 500)
        worker.info("Successfully completed job %s in %ss on worker %s", "job1", "0:00:00.01", "w1")
        worker.info("Worker %s: %s: %s (%s)", "w1", "hotline", "Job OK", "job1")
        worker.error("Worker %s: job %s: exception raised while executing", "w1", "job2")
    assert stream.getvalue().splitlines() == [
        "INFO rq.worker: Worker w1: hotline: job1",
        "INFO rq.worker: Successfully completed job job1 in 0:00:00.01s on worker w1",
        "INFO rq.worker: Worker w1: hotline: Job OK (job1)",
        "ERROR rq.worker: Worker w1: job job2: exception raised while executing",
    ]


def test_rq_worker_follows_the_level() -> None:
    stream = io.StringIO()
    with root_handlers(stream_handler(stream)):
        configure_logging("WARNING")
        logging.getLogger("rq.worker").info("Worker %s: %s: %s (%s)", "w", "q", "Job OK", "j")
        logging.getLogger("rq.worker").warning("Worker %s: cold shut down", "w")
    assert stream.getvalue() == "WARNING rq.worker: Worker w: cold shut down\n"


def test_the_chatter_templates_are_rqs_own() -> None:
    """If an RQ upgrade rewords a line, the filter silently stops dropping it: fail instead."""
    source = inspect.getsource(rq.worker.base)
    missing = sorted(t for t in RQ_CHATTER if f"'{t}'" not in source and f'"{t}"' not in source)
    assert missing == []
