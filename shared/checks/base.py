"""The base of every check's config: what each check type's config model extends (shared/checks/<type>.py)."""

from __future__ import annotations

from pydantic import Field

from shared.models import ApiModel

# The longest an HTTP, ping or port check may take. With the hard timeout's slack, a wait for a slot dispatched
# ahead and the time to store, it fits the check functions' exec_timeout in stack.yml (tests/test_stack_yml.py):
# the watchdog never kills a batch for a check's sake, so its bundle-mates never run twice.
MAX_CHECK_SECONDS = 60


class ConfigModel(ApiModel):
    """A check config's parts: camelCase JSON, unknown fields rejected (as every API shape)."""


class CheckConfig(ConfigModel):
    """Every check config: camelCase JSON, unknown fields rejected, the monitor's target injected as `target`."""

    target: str
    timeout_seconds: int = Field(default=30, ge=1, le=MAX_CHECK_SECONDS)

    @classmethod
    def budget_seconds(cls, config: dict) -> float:
        """The longest a check of this (stored, camelCase) config may take, read without a full validation."""
        return float(config.get("timeoutSeconds") or cls.model_fields["timeout_seconds"].default)
