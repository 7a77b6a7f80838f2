"""A heartbeat monitor's config: a period or a cron schedule, and a grace period. Validated on save (the API's
monitor bodies through shared/checks/spec.py)."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from shared.checks.base import ConfigModel
from shared.errors import FieldError

MIN_PERIOD_SECONDS = 60
MAX_PERIOD_SECONDS = 365 * 86400
MAX_GRACE_SECONDS = 365 * 86400
DEFAULT_GRACE_SECONDS = 300


class HeartbeatConfig(ConfigModel):
    """One of {periodSeconds, graceSeconds} or {cron, timezone, graceSeconds}."""

    period_seconds: int | None = Field(default=None, ge=MIN_PERIOD_SECONDS, le=MAX_PERIOD_SECONDS)
    cron: str | None = Field(default=None, max_length=200, description="5 fields, e.g. '30 2 * * *'")
    timezone: str | None = Field(
        default=None, max_length=64, description="IANA zone of the cron, e.g. 'Europe/Berlin'"
    )
    grace_seconds: int = Field(default=DEFAULT_GRACE_SECONDS, ge=0, le=MAX_GRACE_SECONDS)

    @field_validator("cron")
    @classmethod
    def _five_field_cron(cls, value: str | None) -> str | None:
        from croniter import croniter

        if value is None:
            return value
        if len(value.split()) != 5 or not croniter.is_valid(value):
            raise ValueError(
                f"'{value}' is not a 5-field cron expression (e.g. '30 2 * * *' for 02:30 daily)"
            )
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"'{value}' is not an IANA time zone (e.g. 'Europe/Berlin')") from None
        return value

    @model_validator(mode="after")
    def _period_or_cron(self) -> HeartbeatConfig:
        if self.period_seconds is not None and self.cron is not None:
            raise FieldError("cron", "give periodSeconds or cron, not both")
        if self.period_seconds is None and self.cron is None:
            raise FieldError("periodSeconds", "a heartbeat needs periodSeconds or cron")
        if self.cron is None and self.timezone is not None:
            raise FieldError("timezone", "applies to cron only")
        if self.cron is not None and self.timezone is None:
            self.timezone = "UTC"
        return self
