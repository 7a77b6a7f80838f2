"""What of a provider's config may be shown: masked copies for API reads, and the secrets cut from error texts.

Used by the API's provider endpoints (shared/api/services/providers.py, config_masked on save) and the send loop
(shared/notify/base.py), in the alert function and the API's "send test notification".
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any
from urllib.parse import urlsplit

from shared.security import mask, masked_url


def masked_config(config: dict, secret_fields: Collection[str], url_fields: Collection[str]) -> dict:
    """What API reads show: hosts and addresses stay readable, anything that could carry a token is masked.
    The fields are the provider's own (Provider.secret_fields and url_fields)."""
    masked: dict[str, Any] = {}
    for key, value in config.items():
        if key in url_fields and isinstance(value, str):
            masked[key] = masked_url(value)
        elif key in secret_fields and value:
            masked[key] = mask(str(value))
        else:
            masked[key] = value
    return masked


def secrets_in(
    config: Mapping[str, Any], secret_fields: Collection[str], url_fields: Collection[str]
) -> list[str]:
    """Substrings of a config that must never reach an error text: passwords, tokens, URL paths and queries."""
    found: list[str] = []
    for key, value in config.items():
        if not isinstance(value, str) or not value:
            continue
        if key in secret_fields:
            found.append(value)
        if key in url_fields:
            parts = urlsplit(value)
            # An http(s) URL's host is shown by masked_config, so error texts may name it too ("destination
            # blocked: '10.0.0.5' is ..."); any other scheme's host part may be a token (tgram://<token>/...).
            shown = (parts.hostname or "") if parts.scheme in ("http", "https") else ""
            found += [
                p
                for p in re.split(r"[/?&=:@]", value.split("://", 1)[-1])
                if len(p) >= 6 and p.lower() != shown
            ]
            found += [p for p in (parts.password, parts.path.strip("/"), parts.query) if p and len(p) >= 6]
    return sorted(set(found), key=len, reverse=True)


def redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "****")
    return text
