"""Ukrainian and English: every console string has a Ukrainian translation; pages follow the
staff member's language (or the browser's before login)."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po

from console.i18n import TRANSLATIONS
from tests.staff.support import make_user, sign_in

ROOT = Path(__file__).resolve().parents[2]


def console_messages() -> set[str]:
    keywords = dict(DEFAULT_KEYWORDS, lazy_gettext=None)
    found = set()
    for package in ("console", "staff"):
        for _file, _line, message, _comments, _context in extract_from_dir(
            ROOT / package,
            method_map=[("templates/**.html", "jinja2"), ("**.py", "python")],
            options_map={"templates/**.html": {"extensions": "jinja2.ext.i18n"}},
            keywords=keywords,
        ):
            found.add(message if isinstance(message, str) else message[0])
    return found


def test_every_string_has_a_ukrainian_translation() -> None:
    with (TRANSLATIONS / "uk.po").open("rb") as fh:
        catalog = read_po(fh)
    translated = {m.id for m in catalog if m.id and m.string}
    messages = console_messages()
    assert len(messages) > 50
    missing = sorted(messages - translated)
    assert not missing, f"add these to console/translations/uk.po: {missing}"


def test_login_page_follows_the_browser(app) -> None:
    english = app.test_client()
    english.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en-GB,en;q=0.9"
    assert b"Sign in" in english.get("/console/login").data
    ukrainian = app.test_client()
    ukrainian.environ_base["HTTP_ACCEPT_LANGUAGE"] = "uk-UA,uk;q=0.9,en;q=0.5"
    page = ukrainian.get("/console/login")
    assert "Вхід".encode() in page.data and b'lang="uk"' in page.data
    assert "Вхід".encode() in app.test_client().get("/console/login").data  # the default


def test_pages_follow_the_staff_members_language(app) -> None:
    client = app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    user_id, _ = make_user(app, "admin", "root", language="uk")
    sign_in(client, app, user_id)
    page = client.get("/console/")
    assert "Вийти".encode() in page.data and "адміністратор".encode() in page.data
    assert "Облікові записи працівників".encode() in page.data
