"""The one place the CLI reads its user's environment: the server and key, ${VAR} references, CI variables.

The CLI runs in a user's shell or a CI job, not as a function, so it reads what that shell sets (SUPERCHECK_URL,
SUPERCHECK_API_KEY, GITHUB_SHA, GITHUB_STEP_SUMMARY, the variables a file references) rather than
shared.settings. Subcommands read through here, so the architecture test's allow-list names one module."""

from __future__ import annotations

import os
from collections.abc import Mapping


def variables() -> Mapping[str, str]:
    return os.environ


def get(name: str, default: str | None = None) -> str | None:
    return os.environ.get(name, default)


def ensure_credential_key() -> None:
    """Validating a monitor's config seals its secrets; with no key set here, an ephemeral one does (what it
    seals is compared as masks and thrown away; only the server's own ciphertexts are ever stored)."""
    from shared.security import generate_key
    from shared.settings import get_settings, reset_settings_cache

    if not get_settings().credential_keys:
        os.environ["SC_CREDENTIAL_KEY"] = generate_key()
        reset_settings_cache()
