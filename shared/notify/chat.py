"""What Slack, Discord and Teams share: an incoming-webhook URL, as the service hands it out, sent through the
Apprise plugin it must resolve to. Used by shared/notify/slack.py, discord.py and teams.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field

from shared.models import ApiModel
from shared.notify.base import Provider, Target, require_plugin


class ChatWebhookConfig(ApiModel):
    """Slack, Discord and Teams (Power Automate workflow) incoming-webhook URLs, as the service hands them out."""

    webhook_url: str = Field(max_length=2048)


class ChatWebhookProvider(Provider):
    config_model = ChatWebhookConfig
    url_fields = frozenset({"webhookUrl"})  # the path is the webhook's credential

    def __init__(self, service: str, plugins: set[str]):
        self.service = service  # as error messages name it: "is not a <service> URL"
        self.plugins = plugins  # the Apprise plugin classes its URLs resolve to

    def validate(self, stored: dict) -> None:
        require_plugin(stored["webhookUrl"], self.plugins, "config.webhookUrl", self.service)

    def targets(self, config: Mapping[str, Any]) -> list[Target]:
        return [Target(config["webhookUrl"])]
