"""The base of every check's config: what each check type's config model extends (shared/checks/<type>.py), and
the retry policy every type but synthetic accepts (run_check in shared/checks/__init__.py runs the attempts)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from shared.errors import FieldError
from shared.models import ApiModel

# The longest an HTTP, ping or port check may take. With the hard timeout's slack, a wait for a slot dispatched
# ahead and the time to store, it fits the check functions' exec_timeout in stack.yml (tests/test_stack_yml.py):
# the watchdog never kills a batch for a check's sake, so its bundle-mates never run twice. With retries, every
# attempt and every wait between them must fit it together.
MAX_CHECK_SECONDS = 60


class ConfigModel(ApiModel):
    """A check config's parts: camelCase JSON, unknown fields rejected (as every API shape)."""


class RetryPolicy(ConfigModel):
    """A failed check is tried again inside its location before it reports; the result lists every attempt."""

    count: int = Field(default=0, ge=0, le=3, description="Retries after a failed attempt (0-3)")
    backoff: Literal["fixed", "linear", "exponential"] = Field(
        default="fixed",
        description="The wait before retry n: fixed delaySeconds, linear n x delaySeconds, exponential "
        "2^(n-1) x delaySeconds",
    )
    delay_seconds: int = Field(default=1, ge=1, le=30, description="The base wait between attempts (1-30 s)")


def retry_delays(retry: dict | None) -> list[float]:
    """The waits before each retry of a (stored, camelCase) retry policy, in order; [] without retries."""
    if not retry:
        return []
    count = int(retry.get("count") or 0)
    delay = float(retry.get("delaySeconds") or RetryPolicy.model_fields["delay_seconds"].default)
    backoff = retry.get("backoff") or "fixed"
    factors = {"fixed": lambda n: 1, "linear": lambda n: n, "exponential": lambda n: 2 ** (n - 1)}[backoff]
    return [delay * factors(n) for n in range(1, count + 1)]


class CheckConfig(ConfigModel):
    """Every check config: camelCase JSON, unknown fields rejected, the monitor's target injected as `target`."""

    target: str
    timeout_seconds: int = Field(default=30, ge=1, le=MAX_CHECK_SECONDS)
    retry: RetryPolicy | None = Field(default=None, description="Retries before a failed check reports")

    @classmethod
    def attempt_seconds(cls, config: dict) -> float:
        """The longest one attempt of this (stored, camelCase) config may take, read without a full validation."""
        return float(config.get("timeoutSeconds") or cls.model_fields["timeout_seconds"].default)

    @classmethod
    def budget_seconds(cls, config: dict) -> float:
        """The longest a check of this config may take: every attempt its retries allow, and the waits between."""
        delays = retry_delays(config.get("retry"))
        return cls.attempt_seconds(config) * (len(delays) + 1) + sum(delays)

    @model_validator(mode="after")
    def _retries_fit_one_call(self) -> CheckConfig:
        if not self.retry or not self.retry.count:
            return self
        stored = self.model_dump(by_alias=True, exclude={"target"}, exclude_none=True)
        budget = type(self).budget_seconds(stored)
        if budget > MAX_CHECK_SECONDS:
            raise FieldError(
                "retry",
                f"{self.retry.count + 1} attempts of up to {type(self).attempt_seconds(stored):g}s and "
                f"{sum(retry_delays(stored['retry'])):g}s of waits take up to {budget:g}s, more than the "
                f"{MAX_CHECK_SECONDS}s a check may take; lower retry.count or retry.delaySeconds, or "
                "timeoutSeconds",
            )
        return self
