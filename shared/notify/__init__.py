"""Notification providers: the one table of provider types, config validation, masking, and sending one message.

Used by the alert function (shared/pipeline/alert.py) and the API's provider endpoints
(shared/api/services/providers.py; shared/api/requests.py reads the provider types on first use). Importing
this package loads no Apprise: that waits for the first send through it or provider check (base.load_apprise).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from shared.errors import PrefixedValidationError
from shared.notify import apprise, discord, email, masking, slack, teams, telegram, webhook
from shared.notify.base import Provider, SendResult, send
from shared.notify.message import AlertMessage, build_message

__all__ = [
    "PROVIDERS",
    "AlertMessage",
    "SendResult",
    "build_message",
    "masked_config",
    "send_to_provider",
    "validate_provider_config",
]

# A provider type is one module and one line here; the API's accepted types (and their order) come from here.
PROVIDERS: dict[str, Provider] = {
    "webhook": webhook.provider,
    "email": email.provider,
    "slack": slack.provider,
    "discord": discord.provider,
    "telegram": telegram.provider,
    "teams": teams.provider,
    "apprise": apprise.provider,
}


def validate_provider_config(provider_type: str, config: dict) -> dict:
    """The stored form of a provider's config; raises a ValueError naming the field (config.<field>)."""
    provider = PROVIDERS.get(provider_type)
    if provider is None:
        raise ValueError(
            f"type: unknown provider type '{provider_type}'; expected one of: {', '.join(PROVIDERS)}"
        )
    if not isinstance(config, dict):
        raise ValueError("config: must be an object")
    try:
        parsed = provider.config_model.model_validate(config)
    except ValidationError as error:
        raise PrefixedValidationError(error, prefix=("config",)) from None
    stored = parsed.model_dump(by_alias=True, exclude_none=True)
    provider.validate(stored)
    return stored


def masked_config(provider_type: str, config: dict) -> dict:
    """A provider's stored config as API reads show it: its secret fields and URL paths masked."""
    provider = PROVIDERS[provider_type]
    return masking.masked_config(config, provider.secret_fields, provider.url_fields)


async def send_to_provider(
    provider_type: str, config: Mapping[str, Any], message: AlertMessage
) -> SendResult:
    """One message to one provider of this type (its stored config): retried, and errors carry no secrets."""
    return await send(PROVIDERS[provider_type], config, message)
