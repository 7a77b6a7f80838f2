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
)
from pydantic.alias_generators import to_camel

CheckStatus = Literal["up", "down", "degraded", "error", "timeout"]
# error: set aside, its stored row no longer validates (the monitor's statusReason says why; saving it again
# puts it back in the schedule)
MonitorStatus = Literal["pending", "up", "down", "degraded", "unknown", "error"]
Strategy = Literal["all", "majority", "any", "custom"]
# What aggregate decides to send (a reminder is a failure alert with sequenceNumber > 1 in its payload).
AlertKind = Literal["failure", "recovery", "ssl_expiring", "ssl_expired", "dns_changed"]
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
