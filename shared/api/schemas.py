"""Shapes of every answer the API and the functions give (camelCase JSON); requests are in shared/api/requests.py."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import ConfigDict, Field, with_config
from pydantic.alias_generators import to_camel
from typing_extensions import TypedDict  # pydantic needs this one before Python 3.12

from shared.models import AlertConfig, ApiModel, LocationConfig


class ErrorDetail(ApiModel):
    code: str
    message: str
    field: str | None = None


class ErrorBody(ApiModel):
    error: ErrorDetail


class Pagination(ApiModel):
    page: int
    limit: int
    total: int
    total_pages: int
    has_next_page: bool
    has_prev_page: bool

    @classmethod
    def of(cls, page: int, limit: int, total: int) -> Pagination:
        pages = -(-total // limit) if total else 0
        return cls(
            page=page,
            limit=limit,
            total=total,
            total_pages=pages,
            has_next_page=page < pages,
            has_prev_page=page > 1,
        )


class RunSummary(ApiModel):
    id: uuid.UUID
    status: str | None
    is_partial: bool | None
    scheduled_at: datetime
    finalized_at: datetime | None
    missing_locations: list[str]


class MonitorOut(ApiModel):
    id: uuid.UUID
    project_id: uuid.UUID
    name: str
    type: str
    target: str | None = Field(description="What is checked; null for a heartbeat (its job pings in)")
    # a heartbeat's: where its job pings (SC_PUBLIC_BASE_URL/function/ping/<token>); the token is its credential
    ping_url: str | None = None
    frequency_minutes: int
    enabled: bool
    config: dict[str, Any]
    # as stored; a stored shape that no longer validates is shown as it is (the monitor is then set aside)
    location_config: LocationConfig | dict[str, Any]
    alert_config: AlertConfig | dict[str, Any]
    tags: list[str]
    status: str
    status_reason: str | None = Field(
        default=None,
        description="Why the monitor is set aside (status error): its stored row no longer validates",
    )
    is_flapping: bool = Field(
        default=False,
        description="Flap detection (alertConfig.flapDetection) finds the monitor flapping: down and recovery "
        "alerts are held",
    )
    next_run_at: datetime | None
    last_check_at: datetime | None
    last_run: RunSummary | None = None
    created_at: datetime
    updated_at: datetime


class Timings(ApiModel):
    dns_ms: float | None
    connect_ms: float | None
    tls_ms: float | None
    first_byte_ms: float | None


class ResultOut(ApiModel):
    id: int
    run_id: uuid.UUID
    monitor_id: uuid.UUID
    location: str
    status: str
    checked_at: datetime
    response_time_ms: int | None
    status_code: int | None
    timings: Timings
    message: str | None
    details: dict[str, Any]
    is_status_change: bool


class ResultPage(ApiModel):
    data: list[ResultOut]
    pagination: Pagination


class HeartbeatPingOut(ApiModel):
    """One ping a heartbeat's job sent (written by shared/heartbeats/record.py); its run, if it completed the job."""

    id: int
    kind: Literal["success", "fail", "start", "log"]
    source: Literal["healthchecks", "kuma"]
    exit_status: int | None
    rid: str | None
    received_at: datetime
    duration_ms: int | None
    message: str | None = Field(description="The request body (up to 100 KB) or Kuma's msg")
    run_id: uuid.UUID | None


class HeartbeatPingPage(ApiModel):
    data: list[HeartbeatPingOut]
    pagination: Pagination


class RunOut(RunSummary):
    monitor_id: uuid.UUID
    expected_locations: list[str]
    deadline: datetime
    results: list[ResultOut]


class RunList(ApiModel):
    data: list[RunOut] = Field(
        description="the runs asked for, in that order; ids of no run of the project are left out"
    )


class LocationStat(ApiModel):
    location: str
    total_checks: int
    up_checks: int
    uptime_percentage: float | None
    avg_response_time: float | None
    min_response_time: float | None
    max_response_time: float | None
    p95_response_time: float | None
    latest: ResultOut | None


class LocationStats(ApiModel):
    success: bool = True
    data: list[LocationStat]


class RunsStarted(ApiModel):
    run_ids: list[uuid.UUID]
    monitor_ids: list[uuid.UUID]


class ProviderOut(ApiModel):
    id: uuid.UUID
    project_id: uuid.UUID
    name: str
    type: str
    config: dict[str, Any]
    enabled: bool
    created_at: datetime
    updated_at: datetime


class ProviderTestResult(ApiModel):
    status: str
    attempts: int
    error: str | None = None
    recipients: dict[str, str] | None = None


class NotificationSettings(ApiModel):
    provider_ids: list[uuid.UUID] = Field(max_length=10)


class ApiKeyOut(ApiModel):
    id: uuid.UUID
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="shown once; only its hash is stored")


class ProjectOut(ApiModel):
    id: uuid.UUID
    name: str
    created_at: datetime


class ProjectCreated(ProjectOut):
    api_key: ApiKeyCreated


class AuditEntry(ApiModel):
    id: int
    api_key_id: uuid.UUID | None
    action: str
    object_type: str
    object_id: str | None
    changes: dict[str, Any]
    created_at: datetime


class AuditPage(ApiModel):
    data: list[AuditEntry]
    pagination: Pagination


class Health(ApiModel):
    status: Literal["ok"]


class SyntheticTestOut(ApiModel):
    id: uuid.UUID
    project_id: uuid.UUID
    title: str
    script: str
    created_at: datetime
    updated_at: datetime


class ProjectVariableOut(ApiModel):
    """A secret's value is shown masked, never in plaintext."""

    name: str
    value: str
    is_secret: bool
    created_at: datetime
    updated_at: datetime


# --- the dashboard's list and detail reads (shared/api/services/monitors.py and series.py) -------------------


class SparklinePoint(TypedDict):
    """An hour's start (UTC) and its average response time, null where no check responded. A TypedDict rather
    than a model: a page of the list carries 1,200 of them, and building models was most of its time."""

    t: datetime
    ms: float | None


class MonitorSummary(ApiModel):
    """The last 24 clock hours (the current one partial): hourly rollups for rolled-up hours, raw results after."""

    # aliases given: the camelCase generator would write "uptime24H"
    uptime24h: float | None = Field(
        alias="uptime24h", description="percent of location checks up or degraded; null without checks"
    )
    avg_response_ms24h: float | None = Field(alias="avgResponseMs24h")
    sparkline: list[SparklinePoint] = Field(description="24 hourly points, oldest first")


class MonitorListItem(MonitorOut):
    summary: MonitorSummary | None = Field(default=None, description="with include=summary")


class MonitorListPage(ApiModel):
    data: list[MonitorListItem]
    pagination: Pagination


class StatusCounts(ApiModel):
    up: int = 0
    down: int = 0
    degraded: int = 0
    paused: int = Field(default=0, description="monitors not enabled, whatever their last status")
    pending: int = 0
    unknown: int = 0
    error: int = 0


class MonitorCounts(ApiModel):
    total: int
    counts: StatusCounts


# Chart points are TypedDicts rather than models, for the reason SparklinePoint gives; camelCase on the wire too.
_WIRE_POINT = ConfigDict(alias_generator=to_camel, extra="forbid")


@with_config(_WIRE_POINT)
class SeriesPoint(TypedDict):
    """One bucket (or, for 1h, one result: t is its checkedAt): response times and how many checks, how many up."""

    t: datetime
    avg_ms: float | None
    p95_ms: float | None
    min_ms: float | None
    max_ms: float | None
    checks: int
    up_checks: int


@with_config(_WIRE_POINT)
class PhasePoint(TypedDict):
    t: datetime
    dns_ms: float | None
    connect_ms: float | None
    tls_ms: float | None
    first_byte_ms: float | None


class LocationSeries(ApiModel):
    location: str
    points: list[SeriesPoint]
    phases: list[PhasePoint]


class SeriesSource(ApiModel):
    source: Literal["daily", "hourly", "raw"]
    start: datetime
    end: datetime


class ResponseTimeSeries(ApiModel):
    monitor_id: uuid.UUID
    range: str
    since: datetime
    until: datetime
    bucket_seconds: int | None = Field(description="null for 1h: one point per result")
    sources: list[SeriesSource] = Field(description="which tier answered which part of the range, in order")
    phases_from: datetime = Field(
        description="the start of the range: phases are averaged from the same tiers as the response times "
        "(rollups keep each phase's sum and count); a bucket rolled up before phases were kept, whose raw results "
        "are gone, has no phase point"
    )
    locations: list[LocationSeries]


class LocationCertificate(ApiModel):
    location: str
    checked_at: datetime = Field(description="when the check last read the certificate at this location")
    not_before: datetime | None
    not_after: datetime | None
    days_remaining: int | None = Field(description="whole days from now to notAfter, rounded up")
    expired: bool | None
    issuer: str | None
    subject: str | None
    sans: list[str]
    serial_number: str | None
    sha256_fingerprint: str | None


class CertificateReport(ApiModel):
    monitor_id: uuid.UUID
    certificates: list[LocationCertificate] | None = Field(
        description="per location, the latest certificate the HTTP check recorded; null when the monitor has "
        "no TLS (not an https http_request or website monitor)"
    )


# --- alert history, incidents, regions (GET /alerts, /monitors/{id}/alerts, /monitors/{id}/incidents, /regions)


class AlertOut(ApiModel):
    """One delivery of one alert to one provider. Error texts and recipients' outcomes are masked again on
    read (shared.rules.redaction): the send loop already cut the provider's secrets from them."""

    id: int
    monitor_id: uuid.UUID
    monitor_name: str
    run_id: uuid.UUID
    provider_id: uuid.UUID
    provider_name: str
    provider_type: str
    kind: str = Field(
        description="failure (reminders too), recovery, ssl_expiring, ssl_expired, dns_changed, flapping_started "
        "or flapping_stopped"
    )
    status: str = Field(description="pending, sending, sent, partial, failed or suppressed")
    attempts: int
    title: str | None
    reason: str | None = Field(description="why a suppressed alert notified nobody")
    alert_reason: str | None = Field(
        default=None,
        description="why the alert fired, as its message says: the trigger met (or the recovery, the change "
        "rate) and, for a down alert, the locations down and the last error",
    )
    error: str | None
    recipients: dict[str, str] | None = Field(
        description="email: each address and its outcome ('sent' or 'failed: <why>')"
    )
    created_at: datetime
    claimed_at: datetime | None
    sent_at: datetime | None


class AlertPage(ApiModel):
    data: list[AlertOut]
    pagination: Pagination


class IncidentOut(ApiModel):
    """A period during which the monitor's aggregated status was down or degraded."""

    status: Literal["down", "degraded"] = Field(description="the worst status the period reached")
    started_at: datetime
    ended_at: datetime | None = Field(description="null while the incident is ongoing")
    duration_seconds: float = Field(description="up to now for an ongoing incident")
    run_id: uuid.UUID = Field(description="the run whose result opened the incident")


class IncidentPage(ApiModel):
    since: datetime
    data: list[IncidentOut]
    pagination: Pagination


class FailingMonitor(ApiModel):
    id: uuid.UUID
    name: str
    status: str


class RegionOut(ApiModel):
    location: str
    name: str | None
    city: str | None
    checks: int
    up_checks: int
    uptime_percentage: float | None
    avg_response_ms: float | None
    p95_response_ms: float | None
    failing_monitors: int = Field(
        description="enabled monitors whose latest applied run (inside the window) checked here and was not up"
    )
    failing: list[FailingMonitor] = Field(description="up to 20 of them, down first, then by name")


class RegionsReport(ApiModel):
    since: datetime
    rolled_until: datetime = Field(
        description="final hourly and daily rollups before this; provisional hours (rewritten from raw results by "
        "every rollup step, about once a minute) from it on"
    )
    provisional_until: datetime | None = Field(
        description="the provisional hours hold the results checked before this (null: none written yet); results "
        "after it are not in the figures yet"
    )
    until: datetime
    data: list[RegionOut]


# --- status pages and their incidents (shared/api/services/status_pages.py and status_incidents.py) --------------


class StatusPageGroupOut(ApiModel):
    name: str
    monitor_ids: list[uuid.UUID] = Field(description="in the order the page shows them")


class StatusPageOut(ApiModel):
    id: uuid.UUID
    project_id: uuid.UUID
    slug: str
    title: str
    description: str
    groups: list[StatusPageGroupOut]
    custom_domain: str | None
    show_response_times: bool
    show_uptime: bool
    published: bool
    created_at: datetime
    updated_at: datetime


class StatusPagePage(ApiModel):
    data: list[StatusPageOut]
    pagination: Pagination


class StatusIncidentUpdateOut(ApiModel):
    """One entry of an incident's timeline, never edited once written."""

    id: int
    status: str
    message: str = Field(description="Markdown, as written")
    message_html: str = Field(description="the message rendered as sanitised HTML (no raw HTML, safe links)")
    created_at: datetime


class StatusIncidentSummary(ApiModel):
    """An incident on a status page: opened by hand (public at once) or by aggregate as a draft (isDraft)."""

    id: uuid.UUID
    project_id: uuid.UUID
    status_page_id: uuid.UUID
    title: str
    status: str
    impact: str
    is_draft: bool = Field(description="opened automatically and not yet published: not on the public page")
    message: str = Field(description="the latest timeline entry's message, Markdown")
    message_html: str = Field(description="the same, rendered as sanitised HTML")
    monitor_ids: list[uuid.UUID]
    opened_by_run_id: uuid.UUID | None = Field(description="the run whose outage opened a draft")
    created_at: datetime
    updated_at: datetime
    published_at: datetime | None
    resolved_at: datetime | None


class StatusIncidentOut(StatusIncidentSummary):
    updates: list[StatusIncidentUpdateOut] = Field(description="the timeline, oldest first")


class StatusIncidentPage(ApiModel):
    data: list[StatusIncidentSummary]
    pagination: Pagination


# --- regional pipeline health (GET /regions/health, shared/api/services/regional_health.py) ----------------------


class HealthReasonOut(ApiModel):
    code: Literal[
        "redis_unreachable",
        "heartbeat_missing",
        "heartbeat_stale",
        "heartbeat_unreadable",
        "connector_degraded",
        "check_functions_unreachable",
        "backlog",
    ]
    message: str
    severity: Literal["degraded", "down"]


class StreamBacklogOut(ApiModel):
    length: int = Field(description="entries kept in the region's job streams (delivered ones until trimmed)")
    pending: int = Field(description="delivered to the connector and not yet acknowledged")
    lag: int | None = Field(
        description="not yet delivered; null when this Redis (before 7.0) cannot say and some arrived since the "
        "last delivery"
    )


class RegionHealthOut(ApiModel):
    location: str
    status: Literal["ok", "degraded", "down"]
    ok: bool
    reasons: list[HealthReasonOut] = Field(description="why it is not ok, worst first; empty when ok")
    redis_reachable: bool = Field(description="the Redis its job streams live in answered PING in time")
    heartbeat_age_seconds: float | None = Field(
        description="since its connector's last heartbeat; null: none"
    )
    heartbeat_stale_after_seconds: float | None = Field(
        description="the age at which that heartbeat is stale"
    )
    connector_status: Literal["ok", "degraded", "failing"] | None = Field(
        description="the connector's own verdict on its loops, from the heartbeat"
    )
    serves_all_locations: bool | None = Field(
        description="from the heartbeat: its connector reads every location (no WORKER_LOCATION)"
    )
    check_functions: dict[str, bool] | None = Field(
        description="from the heartbeat: each check function it delivers to -> it answered the connector's probe"
    )
    backlog: StreamBacklogOut | None = Field(description="null when Redis did not answer")


class RegionsHealthReport(ApiModel):
    ok: bool = Field(description="every configured region is ok")
    checked_at: datetime
    data: list[RegionHealthOut] = Field(description="every configured location (SC_LOCATIONS), in that order")


# --- resources managed as code (shared/api/services/managed.py) ------------------------------------------


class ManagedResourceOut(ApiModel):
    kind: str
    key: str
    resource_id: uuid.UUID
    desired: dict[str, Any]
    observed: dict[str, Any]
    applied_at: datetime


class ManagedState(ApiModel):
    generation: int = Field(
        description="advances with each recorded apply; send it back as expectedGeneration"
    )
    applied_at: datetime | None
    resources: list[ManagedResourceOut]


class ManagedClaim(ApiModel):
    claim_id: uuid.UUID
    generation: int
    claimed_until: datetime


class ManagedApplyRecorded(ApiModel):
    generation: int
    upserted: int
    deleted: int


# --- alert policy backtest (POST /monitors/{id}/alert-policy/backtest) -------------------------------


class BacktestAlert(ApiModel):
    time: datetime = Field(
        description="When the alert was (or would have been) decided: its run's finalization"
    )
    kind: str = Field(
        description="failure (reminders too), recovery, ssl_*, flapping_started, flapping_stopped"
    )
    reason: str = Field(description="Why it fired, as the alert's message says")
    run_id: uuid.UUID


class BacktestReply(ApiModel):
    alerts: list[BacktestAlert] = Field(description="What the candidate policy would have sent")
    suppressed: list[BacktestAlert] = Field(
        description="What it would have decided inside a maintenance window, while muted or past the limit"
    )
    sent: list[BacktestAlert] = Field(
        description="What the monitor's alerting actually sent over the same period (one entry per alert, "
        "whichever of its providers took it)"
    )
    runs: int = Field(description="How many stored runs were replayed")
