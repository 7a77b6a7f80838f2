"""Shapes every stage shares: the camelCase base model, the location and alert configs a monitor carries, the
stream envelopes (versioned JSON) and a check's outcome. Request bodies are in shared/api/requests.py, responses
in shared/api/schemas.py.
Used by every function and the connector."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

CheckStatus = Literal["up", "down", "degraded", "error", "timeout"]
# error: set aside, its stored row no longer validates (the monitor's statusReason says why; saving it again
# puts it back in the schedule)
MonitorStatus = Literal["pending", "up", "down", "degraded", "unknown", "error"]
Strategy = Literal["all", "majority", "any", "custom"]
# What aggregate decides to send (a reminder is a failure alert with sequenceNumber > 1 in its payload).
# flapping_started / flapping_stopped: flap detection (alertConfig.flapDetection) entering or leaving flapping.
AlertKind = Literal[
    "failure",
    "recovery",
    "ssl_expiring",
    "ssl_expired",
    "dns_changed",
    "flapping_started",
    "flapping_stopped",
]
# An alert_history row's delivery status, as shared/pipeline/alert.py writes it: pending (recorded, not yet
# claimed), sending (claimed), then a send's outcome (shared.notify.SendResult), or suppressed (maintenance,
# muted, past the limit: nobody was notified).
AlertDeliveryStatus = Literal["pending", "sending", "sent", "partial", "failed", "suppressed"]
FAILED_STATUSES = frozenset({"down", "error", "timeout"})
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


class FailuresInWindow(ApiModel):
    """Alert once this many failed runs fall within this many minutes, passes between them or not."""

    failures: int = Field(ge=1, le=20, description="Failed runs that raise the alert (1-20)")
    within_minutes: int = Field(
        ge=1, le=1440, description="The window the failed runs must fall in, in minutes (1-1440)"
    )


class FlapDetection(ApiModel):
    """Nagios' flap detection: the weighted percent of state changes over the last `window` runs (newer changes
    weigh more, 0.75 to 1.25). Flapping starts at or above highThreshold and stops at or below lowThreshold."""

    enabled: bool = Field(default=True, description="Whether flap detection is on")
    window: int = Field(default=21, ge=3, le=50, description="How many recent runs are looked at (3-50)")
    high_threshold: float = Field(
        default=30, gt=0, le=100, description="Percent of weighted state changes that starts flapping"
    )
    low_threshold: float = Field(
        default=20, ge=0, lt=100, description="Percent of weighted state changes that stops flapping"
    )

    @model_validator(mode="after")
    def _hysteresis(self) -> FlapDetection:
        if self.low_threshold >= self.high_threshold:
            raise ValueError("lowThreshold must be below highThreshold")
        return self


class AlertConfig(ApiModel):
    enabled: bool = Field(default=False, description="Whether this monitor alerts at all")
    alert_on_failure: bool = Field(default=True, description="Send down alerts (and their reminders)")
    alert_on_recovery: bool = Field(default=True, description="Send a recovery alert after a down alert")
    alert_on_ssl_expiration: bool = Field(default=False, description="Send certificate expiry alerts")
    failure_threshold: int | None = Field(
        default=1,
        ge=1,
        le=10,
        description="Alert after this many consecutive failed runs. Omitted or null beside failuresInWindow "
        "or failingForMinutes: this trigger is off (alone, null means 1)",
    )
    failures_in_window: FailuresInWindow | None = Field(
        default=None, description="Alert once X failed runs fall within Y minutes, even with passes between"
    )
    failing_for_minutes: int | None = Field(
        default=None, ge=1, le=1440, description="Alert once the monitor has been failing this many minutes"
    )
    recovery_threshold: int = Field(
        default=1, ge=1, le=10, description="Consecutive passed runs that end an incident"
    )
    reminder_interval: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description="Failed runs between reminders (at most 3 alerts per incident); default max(5, 2 x "
        "failureThreshold)",
    )
    flap_detection: FlapDetection | None = Field(
        default=None,
        description="While flapping, down and recovery alerts are held; one alert says flapping started, "
        "one that it stopped",
    )
    custom_message: str | None = Field(
        default=None, max_length=2000, description="Replaces the alert text; {{variables}} are filled in"
    )
    notification_providers: list[uuid.UUID] = Field(
        default_factory=list, max_length=10, description="The providers this monitor's alerts go to"
    )
    # Alerts decided before this instant are recorded as suppressed; checks keep running.
    muted_until: datetime | None = Field(
        default=None, description="Alerts decided before this instant are recorded as suppressed"
    )

    @field_validator("muted_until")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value

    @model_validator(mode="after")
    def _threshold_only_when_asked(self) -> AlertConfig:
        """The default threshold of 1 would always be met first: beside another trigger it applies only when
        given. Stored configs carry the resulting null, so reading one back decides the same."""
        other_trigger = self.failures_in_window is not None or self.failing_for_minutes is not None
        if other_trigger and "failure_threshold" not in self.model_fields_set:
            self.failure_threshold = None
        elif not other_trigger and self.failure_threshold is None:
            self.failure_threshold = 1  # some trigger always holds: null alone would never alert
        return self


# --- stream envelopes -------------------------------------------------------------------------


class Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)  # built on first use, as ApiModel
    v: Literal[1] = ENVELOPE_VERSION


class CheckJob(Envelope):
    kind: Literal["check_job"] = "check_job"
    run_id: uuid.UUID
    monitor_id: uuid.UUID
    # The monitor's project, which the config's credentials are sealed to; None only in jobs queued by an older
    # schedule, whose credentials (sealed before they were bound to a project) still decrypt.
    project_id: uuid.UUID | None = None
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
    (shared.pipeline.batch.parse_job_batch): one bad job does not take the good ones down with it.
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


class ResultEnvelope(Envelope):
    kind: Literal["result"] = "result"
    run_id: uuid.UUID
    monitor_id: uuid.UUID
    location: str
    status: CheckStatus


class AlertEnvelope(Envelope):
    kind: Literal["alert"] = "alert"
    alert_event_id: uuid.UUID
    run_id: uuid.UUID
    monitor_id: uuid.UUID
    alert_kind: AlertKind


class CheckOutcome(ApiModel):
    """Facts gathered by a check plus the verdict derived from them."""

    model_config = ConfigDict(extra="ignore")  # an answer, read back by the API's trial: tolerate new facts

    status: CheckStatus
    message: str = ""
    response_time_ms: int | None = None
    status_code: int | None = None
    dns_ms: float | None = None
    connect_ms: float | None = None
    tls_ms: float | None = None
    first_byte_ms: float | None = None
    details: dict[str, Any] = Field(default_factory=dict)
