"""Validated shapes: the public API (camelCase JSON), stream envelopes (versioned JSON) and check outcomes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

CheckStatus = Literal["up", "down", "degraded", "error", "timeout"]
RunStatus = Literal["up", "down", "degraded", "unknown"]
Strategy = Literal["all", "majority", "any", "custom"]
FAILED_STATUSES = frozenset({"down", "error", "timeout"})
TYPE_ALIASES = {"http": "http_request"}
ENVELOPE_VERSION = 1


class ApiModel(BaseModel):
    """Public JSON: camelCase on the wire, snake_case in Python, unknown fields rejected.

    defer_build: a model's validator is built on its first use, not at import, so each function pays only
    for the models its requests touch (the subclasses in every module inherit this).
    """

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", defer_build=True
    )


class LocationConfig(ApiModel):
    enabled: bool = True
    locations: list[str] = Field(default_factory=list, max_length=20)
    strategy: Strategy = "majority"
    threshold: int = Field(default=50, ge=1, le=100)

    @field_validator("locations")
    @classmethod
    def _no_duplicates(cls, locations: list[str]) -> list[str]:
        if len(set(locations)) != len(locations):
            raise ValueError("locations must not repeat")
        return locations


class AlertConfig(ApiModel):
    enabled: bool = False
    alert_on_failure: bool = True
    alert_on_recovery: bool = True
    alert_on_ssl_expiration: bool = False
    failure_threshold: int = Field(default=1, ge=1, le=10)
    recovery_threshold: int = Field(default=1, ge=1, le=10)
    reminder_interval: int | None = Field(default=None, ge=1, le=1000)
    custom_message: str | None = Field(default=None, max_length=2000)
    notification_providers: list[uuid.UUID] = Field(default_factory=list, max_length=10)
    # Alerts decided before this instant are recorded as suppressed; checks keep running.
    muted_until: datetime | None = None

    @field_validator("muted_until")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


class CheckSpec(ApiModel):
    """What to check: a type from the check table, its target, and a config that fits that type."""

    type: str
    target: str = Field(min_length=1, max_length=2048)
    config: dict[str, Any] = Field(default_factory=dict)

    @field_validator("type", mode="before")
    @classmethod
    def _known_type(cls, value: Any) -> str:
        from shared.checks import CHECK_TYPES

        if not isinstance(value, str):
            raise ValueError("must be a string")
        canonical = TYPE_ALIASES.get(value, value)
        if canonical not in CHECK_TYPES:
            raise ValueError(
                f"unknown monitor type '{value}'; expected one of: {', '.join(sorted(CHECK_TYPES))}"
            )
        return canonical

    @model_validator(mode="after")
    def _config_fits_type(self) -> CheckSpec:
        from shared.checks import CHECK_TYPES

        check_type = CHECK_TYPES[self.type]
        try:
            parsed = check_type.config_model.model_validate({**self.config, "target": self.target})
        except ValidationError as error:
            raise PrefixedValidationError(error, prefix=("config",)) from None
        self.config = parsed.model_dump(by_alias=True, exclude={"target"}, exclude_none=True)
        return self


class MonitorCreate(CheckSpec):
    name: str = Field(min_length=1, max_length=200)
    frequency_minutes: int = Field(default=5, ge=1, le=1440)
    enabled: bool = True
    location_config: LocationConfig = Field(default_factory=LocationConfig)
    alert_config: AlertConfig = Field(default_factory=AlertConfig)
    tags: list[str] = Field(default_factory=list, max_length=20)

    @field_validator("frequency_minutes")
    @classmethod
    def _often_enough_for_type(cls, minutes: int, info) -> int:
        """A check type may need a longer interval (synthetic_test: 5 minutes, so journeys never overlap)."""
        from shared.checks import CHECK_TYPES

        check_type = CHECK_TYPES.get(info.data.get("type"))
        minimum = getattr(check_type.config_model, "min_frequency_minutes", 1) if check_type else 1
        if minutes < minimum:
            raise ValueError(f"must be at least {minimum} for {check_type.name} monitors")
        return minutes


class DirectCheck(CheckSpec):
    """A one-off check sent straight to a check function: nothing is stored."""

    location: str = "direct"

    def as_job(self) -> CheckJob:
        now = datetime.now(UTC)
        return CheckJob(
            run_id=uuid.uuid4(),
            monitor_id=uuid.uuid4(),
            location=self.location,
            type=self.type,
            target=self.target,
            config=self.config,
            scheduled_at=now,
            deadline=now,
        )


class PrefixedValidationError(ValueError):
    """Carries a nested model's first error out with its location, so messages name the exact field."""

    def __init__(self, error: ValidationError, prefix: tuple[str, ...]):
        first = error.errors()[0]
        location = first["loc"]
        if location and location[0] == "target":
            self.field = "target"
        else:
            self.field = ".".join(str(p) for p in (*prefix, *location))
        super().__init__(f"{self.field}: {describe_error(first)}")


class NotificationProviderCreate(ApiModel):
    name: str = Field(min_length=1, max_length=200)
    type: Literal["webhook", "email", "slack", "discord", "telegram", "teams", "apprise"]
    config: dict[str, Any]

    @model_validator(mode="after")
    def _config_fits_type(self) -> NotificationProviderCreate:
        from shared.notify import validate_provider_config

        self.config = validate_provider_config(self.type, self.config)
        return self


class ResultsQuery(ApiModel):
    page: int = Field(default=1, ge=1)
    limit: int = Field(default=10, ge=1, le=100)


class RunRequest(ApiModel):
    """Body of POST /function/schedule: empty for a cron tick, or monitors to run now.

    A cron call ticks every `tickSeconds` for `windowSeconds` (SCHEDULE_WINDOW_SECONDS, e.g. 55 under a
    once-a-minute cron), so due times are met although cron itself fires once a minute; each tick also claims
    runs due within SCHEDULE_LOOKAHEAD_SECONDS, which start on their slot.
    """

    monitor_ids: list[uuid.UUID] = Field(default_factory=list, max_length=1000)
    window_seconds: float | None = Field(default=None, ge=0, le=300)
    tick_seconds: float = Field(default=0.5, ge=0.1, le=60)


# --- stream envelopes -------------------------------------------------------------------------


class Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)  # built on first use, as ApiModel
    v: Literal[1] = ENVELOPE_VERSION


class CheckJob(Envelope):
    kind: Literal["check_job"] = "check_job"
    run_id: uuid.UUID
    monitor_id: uuid.UUID
    location: str = Field(min_length=1, max_length=64)
    type: str
    target: str
    config: dict[str, Any] = Field(default_factory=dict)
    # aware: a job may wait for its slot, and a time without a zone cannot be compared with now
    scheduled_at: AwareDatetime
    deadline: AwareDatetime


class CheckJobBundle(Envelope):
    """Many jobs of one (type, location) stream in one entry, so a tick moves bundles instead of single jobs.

    type and location are said once; each job holds the rest of a CheckJob and is validated on its own
    (shared.pipeline.check.unpack_jobs): one bad job does not take the good ones down with it.
    """

    kind: Literal["check_jobs"] = "check_jobs"
    type: str = Field(min_length=1, max_length=64)
    location: str = Field(min_length=1, max_length=64)
    jobs: list[Any] = Field(min_length=1)  # not list[CheckJob]: one invalid job must not reject the others

    def job_envelopes(self) -> list[Any]:
        """Each job as a whole CheckJob envelope (what a job says about itself wins)."""
        return [
            {"type": self.type, "location": self.location, **job} if isinstance(job, dict) else job
            for job in self.jobs
        ]


class ResultEvent(Envelope):
    kind: Literal["result"] = "result"
    run_id: uuid.UUID
    monitor_id: uuid.UUID
    location: str
    status: CheckStatus


class AlertEvent(Envelope):
    kind: Literal["alert"] = "alert"
    alert_event_id: uuid.UUID
    run_id: uuid.UUID
    monitor_id: uuid.UUID
    alert_kind: Literal["failure", "recovery", "ssl_expiring", "ssl_expired"]


class CheckOutcome(BaseModel):
    """Facts gathered by a check plus the verdict derived from them."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, defer_build=True)

    status: CheckStatus
    message: str = ""
    response_time_ms: int | None = None
    status_code: int | None = None
    dns_ms: float | None = None
    connect_ms: float | None = None
    tls_ms: float | None = None
    first_byte_ms: float | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class ApiError(Exception):
    """An error that maps to one JSON shape: {error: {code, message, field?}}."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field:
            error["field"] = self.field
        return {"error": error}


def describe_error(error: dict[str, Any]) -> str:
    """Pydantic's message for one error, phrased for a person reading an API response."""
    if error["type"] == "missing":
        return "is required"
    if error["type"] == "extra_forbidden":
        return "is not a known field"
    message = error["msg"]
    return message.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def validation_error_to_api_error(error: ValidationError) -> ApiError:
    first = error.errors()[0]
    context_error = (first.get("ctx") or {}).get("error")
    if isinstance(context_error, PrefixedValidationError):
        return ApiError(400, "validation_error", str(context_error), context_error.field)
    field = ".".join(str(part) for part in first["loc"]) or None
    message = describe_error(first)
    return ApiError(400, "validation_error", f"{field}: {message}" if field else message, field)


class FieldError(PrefixedValidationError):
    """A cross-field rule's error that still names one field in the API answer."""

    def __init__(self, field: str, message: str):
        self.field = field
        ValueError.__init__(self, f"{field}: {message}")


class MaintenanceWindowCreate(ApiModel):
    """Alerts are suppressed (and recorded as such) inside a window: one-off, or recurring in cron form."""

    name: str = Field(min_length=1, max_length=200)
    monitor_ids: list[uuid.UUID] = Field(default_factory=list, max_length=1000)  # empty: whole project
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    cron: str | None = Field(default=None, max_length=200)
    duration_minutes: int | None = Field(default=None, ge=1, le=10080)
    timezone: str = Field(default="UTC", max_length=64)

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        from croniter import croniter

        if value is not None and not croniter.is_valid(value):
            raise ValueError(f"'{value}' is not a cron expression (e.g. '0 2 * * 0' for Sundays at 02:00)")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"'{value}' is not an IANA time zone (e.g. 'Europe/Berlin')") from None
        return value

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value

    @model_validator(mode="after")
    def _one_off_or_recurring(self) -> MaintenanceWindowCreate:
        if self.cron is not None:
            if self.starts_at is not None or self.ends_at is not None:
                raise FieldError(
                    "startsAt", "a recurring window (cron) takes durationMinutes, not startsAt/endsAt"
                )
            if self.duration_minutes is None:
                raise FieldError("durationMinutes", "is required with cron")
            return self
        if self.duration_minutes is not None:
            raise FieldError("cron", "is required with durationMinutes")
        if self.starts_at is None or self.ends_at is None:
            raise FieldError(
                "startsAt",
                "a window needs startsAt and endsAt (one-off) or cron and durationMinutes (recurring)",
            )
        if self.ends_at <= self.starts_at:
            raise FieldError("endsAt", "must be after startsAt")
        return self


__all__ = [
    "AlertConfig",
    "AlertEvent",
    "ApiError",
    "CheckJob",
    "CheckJobBundle",
    "CheckOutcome",
    "LocationConfig",
    "MaintenanceWindowCreate",
    "MonitorCreate",
    "NotificationProviderCreate",
    "ResultEvent",
    "RunRequest",
]
