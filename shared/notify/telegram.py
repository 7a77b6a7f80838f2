"""The Telegram provider: a bot token and the chat it posts to. Used by the alert function and the API's provider
endpoints, through shared.notify.PROVIDERS."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field

from shared.models import ApiModel
from shared.notify.base import Provider, Target


class TelegramConfig(ApiModel):
    bot_token: str = Field(pattern=r"^\d{3,}:[A-Za-z0-9_-]{20,}$", max_length=200)
    chat_id: str = Field(pattern=r"^(-?\d{1,20}|@[A-Za-z0-9_]{4,64})$")


class TelegramProvider(Provider):
    config_model = TelegramConfig
    secret_fields = frozenset({"botToken"})

    def targets(self, config: Mapping[str, Any]) -> list[Target]:
        return [Target(f"tgram://{config['botToken']}/{config['chatId']}/")]


provider = TelegramProvider()
