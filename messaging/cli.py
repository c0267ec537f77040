"""``flask carrier configure-telegram``: point the Telegram bot's webhook at this app."""

from __future__ import annotations

import click

from ivr.cli import carrier_cli
from messaging.outbound import telegram_client
from messaging.telegram import TelegramError
from services import services

#: The update types the app handles (``setWebhook``'s allowed_updates): messages, the menu's
#: buttons, and the person blocking or unblocking the bot.
ALLOWED_UPDATES = ["message", "callback_query", "my_chat_member"]


@carrier_cli.command("configure-telegram")
@click.option("--base-url", default=None, help="public URL of this app (default PUBLIC_BASE_URL)")
def configure_telegram(base_url: str | None) -> None:
    """Set the bot's webhook to BASE/messaging/telegram with TELEGRAM_WEBHOOK_SECRET and the
    update types used (message, callback_query, my_chat_member)."""
    settings = services().settings
    if not settings.telegram_bot_token:
        raise click.ClickException("set TELEGRAM_BOT_TOKEN first (the bot's token from @BotFather)")
    base = (base_url or settings.public_base_url).rstrip("/")
    client = telegram_client()
    try:
        client.set_webhook(
            f"{base}/messaging/telegram", settings.telegram_webhook_secret, ALLOWED_UPDATES
        )
        info = client.get_webhook_info()
    except TelegramError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"the bot's webhook is {base}/messaging/telegram (updates: {', '.join(ALLOWED_UPDATES)};"
        f" pending: {info.get('pending_update_count', 0)})"
    )
