"""Console languages (Ukrainian, English) with Flask-Babel, and no compile step.

English is the source language (the msgids). Each ``translations/<lang>.po`` is compiled into
memory when the app starts (Babel's ``read_po`` + ``write_mo``), so a fresh clone needs no
``pybabel compile`` and no ``.mo`` file is kept in the repository. The language is the signed-in
staff member's (``StaffUser.language``), else the browser's preference, else Ukrainian.

Adding a string: wrap it in ``_()`` (templates, ``flask_babel.gettext`` / ``lazy_gettext`` in
Python) and add its Ukrainian to ``translations/uk.po``; ``tests/console/test_i18n.py`` fails
while a string has no translation.
"""

from __future__ import annotations

import io
from functools import cached_property
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations
from flask import Flask, g, has_request_context, request
from flask_babel import Babel, Domain, get_locale, get_translations

from staff.authz import current_staff
from staff.models import STAFF_LANGUAGES

TRANSLATIONS = Path(__file__).with_name("translations")
DEFAULT_LANGUAGE = "uk"


def compile_catalogs(directory: Path = TRANSLATIONS) -> dict[str, Translations]:
    """Every ``<lang>.po`` in ``directory``, compiled in memory."""
    catalogs: dict[str, Translations] = {}
    for path in sorted(directory.glob("*.po")):
        with path.open("rb") as fh:
            catalog = read_po(fh, locale=path.stem)
        buffer = io.BytesIO()
        write_mo(buffer, catalog)
        buffer.seek(0)
        catalogs[path.stem] = Translations(fp=buffer)
    return catalogs


class CatalogDomain(Domain):
    """A Flask-Babel domain whose translations come from the in-memory catalogs."""

    def __init__(self, catalogs: dict[str, Translations]):
        super().__init__()
        self.catalogs = catalogs
        self._null = NullTranslations()

    def get_translations(self) -> NullTranslations:
        locale = get_locale()
        return self.catalogs.get(str(locale), self._null) if locale else self._null


class ConsoleBabel(Babel):
    def __init__(self, catalogs: dict[str, Translations]):
        self._catalogs = catalogs
        super().__init__()

    @cached_property
    def domain_instance(self) -> Domain:
        return CatalogDomain(self._catalogs)


def select_language() -> str:
    if not has_request_context():
        return DEFAULT_LANGUAGE
    user = current_staff()
    if user is not None and user.language in STAFF_LANGUAGES:
        return user.language
    return request.accept_languages.best_match(STAFF_LANGUAGES) or DEFAULT_LANGUAGE


def request_translations() -> NullTranslations:
    """This request's translations, looked up once per request (``g``), not once per ``_()``:
    Flask-Babel's own path (domain, context, locale) cost a page with 40 strings 0.3 ms."""
    found = g.get("console_translations")
    if found is None:
        found = g.console_translations = get_translations()
    return found


def init_app(app: Flask, time_zone: str = "UTC") -> None:
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT_LANGUAGE)
    # Every time the console shows is in the hotline's time zone (HOTLINE_TIME_ZONE).
    app.config["BABEL_DEFAULT_TIMEZONE"] = time_zone
    ConsoleBabel(compile_catalogs()).init_app(app, locale_selector=select_language)
    # Templates' _() and friends, as Flask-Babel installs them, through the per-request lookup.
    app.jinja_env.install_gettext_callables(
        gettext=lambda s: request_translations().ugettext(s),
        ngettext=lambda s, p, n: request_translations().ungettext(s, p, n),
        newstyle=True,
        pgettext=lambda c, s: request_translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: request_translations().unpgettext(c, s, p, n),
    )
