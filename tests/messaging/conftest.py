"""The messaging tests' hotline: the app on a live port with the emulator as Twilio and as
Telegram (``texting``)."""

from __future__ import annotations

import pytest

from app import create_app
from tests.conftest import HOTLINE_NUMBER
from tests.e2e.conftest import Hotline, emulator, watch_rest_calls  # noqa: F401 (fixture)
from tests.e2e.live import LiveServer, free_port
from tests.support import handles


@pytest.fixture
def texting(app, settings, emulator):  # noqa: F811 (the fixture)
    """The hotline with messaging: its number's SMS URL and the bot's webhook set by the CLI."""
    port = free_port()
    live_settings = settings.replace(
        public_base_url=f"http://127.0.0.1:{port}",
        twilio_api_base_url=emulator.base_url,
        telegram_api_base_url=emulator.base_url,
        telegram_bot_token=emulator.telegram_token,
    )
    live_app = create_app(live_settings)
    rest_in_transaction = watch_rest_calls(live_app)
    server = LiveServer(live_app, port=port).start()
    emulator.add_number(HOTLINE_NUMBER)
    runner = live_app.test_cli_runner()
    configured = runner.invoke(args=["carrier", "configure-number"])
    assert configured.exit_code == 0, configured.output
    telegram = runner.invoke(args=["carrier", "configure-telegram"])
    assert telegram.exit_code == 0, telegram.output
    assert "message, callback_query, my_chat_member" in telegram.output
    yield Hotline(live_app, server, emulator, live_settings)
    server.stop()
    handles(live_app).dispose()
    assert not rest_in_transaction, "\n".join(rest_in_transaction[:3])
