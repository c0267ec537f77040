"""Console tests: the client asks for English pages (the users made here speak English too)."""

from __future__ import annotations

import pytest


@pytest.fixture
def client(app):
    browser = app.test_client()
    browser.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    return browser
