"""The apprise provider: any of Apprise's 100+ service URLs (ntfy://, pover://, mmosts://, ...).

Used by the alert function and the API's provider endpoints, through shared.notify.PROVIDERS.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field

from shared.models import ApiModel
from shared.notify.base import Provider, Target, require_plugin


class AppriseConfig(ApiModel):
    """Any of Apprise's 100+ service URLs (ntfy://, pover://, mmosts://, ...)."""

    url: str = Field(max_length=4096)


class AppriseProvider(Provider):
    config_model = AppriseConfig
    url_fields = frozenset({"url"})  # Apprise URLs carry their tokens and passwords

    def validate(self, stored: dict) -> None:
        # Vets the host the plugin sends to, when its URL names one (json://, ntfy://host/, mmost://, ...).
        require_plugin(stored["url"], None, "config.url", None)

    def targets(self, config: Mapping[str, Any]) -> list[Target]:
        return [Target(config["url"])]


provider = AppriseProvider()
