"""The apprise provider: any of Apprise's 100+ service URLs (ntfy://, pover://, mmosts://, ...).

Used by the alert function and the API's provider endpoints, through shared.notify.PROVIDERS.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field

from shared.errors import FieldError
from shared.models import ApiModel
from shared.notify.base import Provider, Target, check_destination, require_plugin

# Apprise's own http(s) services: their host is a destination that SSRF rules apply to.
APPRISE_HTTP_SCHEMES = {"json", "jsons", "xml", "xmls", "form", "forms"}


class AppriseConfig(ApiModel):
    """Any of Apprise's 100+ service URLs (ntfy://, pover://, mmosts://, ...)."""

    url: str = Field(max_length=4096)


class AppriseProvider(Provider):
    config_model = AppriseConfig
    url_fields = frozenset({"url"})  # Apprise URLs carry their tokens and passwords

    def validate(self, stored: dict) -> None:
        require_plugin(stored["url"], None, "config.url", None)
        parts = urlsplit(stored["url"])
        if parts.scheme.lower() in APPRISE_HTTP_SCHEMES:
            try:
                check_destination(f"{'https' if parts.scheme.endswith('s') else 'http'}://{parts.netloc}/")
            except ValueError as error:
                raise FieldError("config.url", str(error)) from None

    def targets(self, config: Mapping[str, Any]) -> list[Target]:
        return [Target(config["url"])]


provider = AppriseProvider()
