"""Retention decisions, pure: configuration, cutoffs, batch plans, rollup windows and their percentiles, stream
trim floors, artifacts to expire, reports. Used by shared/pipeline's cleanup, rollups and long_range modules."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from math import ceil, floor

from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shared.models import ApiModel
from shared.streams import DEAD_LETTER_SUFFIX

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
UTC_ORIGIN = datetime(2000, 1, 1, tzinfo=UTC)  # buckets are whole UTC hours and days counted from here
ARTIFACT_PREFIX = "synthetic/"  # shared/synthetic/artifacts.py stores every artifact under this prefix


class RetentionConfig(BaseModel):
    """The seed's MONITOR_* variables, plus the windows of what else cleanup expires."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True)

    enabled: bool = Field(default=True, alias="MONITOR_CLEANUP_ENABLED")
    cron: str = Field(default="0 2 * * *", alias="MONITOR_CLEANUP_CRON")
    retention_days: int = Field(default=30, ge=1, le=36_500, alias="MONITOR_RETENTION_DAYS")
    batch_size: int = Field(default=1000, ge=1, le=100_000, alias="MONITOR_CLEANUP_BATCH_SIZE")
    preserve_status_changes: bool = Field(default=True, alias="MONITOR_PRESERVE_STATUS_CHANGES")
    # Rows one run may delete from each table (results, runs, alert history, hourly rollups) and S3 objects.
    safety_limit: int = Field(default=1_000_000, ge=1, alias="MONITOR_CLEANUP_SAFETY_LIMIT")
    alert_history_days: int = Field(default=90, ge=1, le=36_500, alias="MONITOR_ALERT_HISTORY_DAYS")
    # Acknowledged stream entries are of no use after a day; dead letters are kept as long as raw results.
    stream_retention_hours: int = Field(default=24, ge=1, le=24 * 365, alias="MONITOR_STREAM_RETENTION_HOURS")
    # The hourly tier thins out to the daily one after this (never while raw data of that period remains).
    hourly_rollup_days: int = Field(default=90, ge=1, le=36_500, alias="MONITOR_HOURLY_ROLLUP_DAYS")
    # An hour is rolled up only this long after it ended: a result is stored within its check's timeout
    # (at most a few minutes) of its checked_at, so the hour is complete by then.
    rollup_settle_minutes: int = Field(default=15, ge=0, le=24 * 60, alias="MONITOR_ROLLUP_SETTLE_MINUTES")

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        if not croniter.is_valid(value):
            raise ValueError(f"'{value}' is not a valid cron expression (5 fields, e.g. '0 2 * * *')")
        return value

    @classmethod
    def from_variables(cls, env: Mapping[str, str]) -> RetentionConfig:
        """From the MONITOR_* variables (Settings.monitor_variables): unset or blank ones take the defaults; a bad
        value fails naming the variable."""
        aliases = {field.alias for field in cls.model_fields.values()}
        values = {name: value for name, value in env.items() if name in aliases and value.strip()}
        try:
            return cls.model_validate(values)
        except ValidationError as error:
            first = error.errors()[0]
            name = ".".join(str(part) for part in first["loc"])
            raise ValueError(f"{name}: {first['msg']} (got {values.get(name)!r})") from None


class CleanupRequest(ApiModel):
    """Body of POST /function/cleanup: empty for the cron run, {"dryRun": true} to see what would go. With an API
    key, both act in the key's project only."""

    dry_run: bool = False


# --- time boundaries ------------------------------------------------------------------------------


def floor_hour(moment: datetime) -> datetime:
    return UTC_ORIGIN + HOUR * ((moment - UTC_ORIGIN) // HOUR)


def floor_day(moment: datetime) -> datetime:
    return UTC_ORIGIN + DAY * ((moment - UTC_ORIGIN) // DAY)


def results_cutoff(now: datetime, retention_days: int) -> datetime:
    """Raw results before this go: the start of the UTC day that is `retention_days` back, so at least
    that many days are always kept and the raw/rollup boundary falls on a day the daily tier covers."""
    return floor_day(now - timedelta(days=retention_days))


def deletion_cutoff(retention: datetime, daily_through: datetime | None) -> datetime | None:
    """Only what is already rolled up may be deleted: a lagging rollup holds deletion back, never the reverse."""
    if daily_through is None:
        return None
    return min(retention, daily_through)


def settled_hour(now: datetime, settle_minutes: int) -> datetime:
    """The end of the latest hour whose results have all been stored."""
    return floor_hour(now - timedelta(minutes=settle_minutes))


def provisional_due(now: datetime, hourly_through: datetime, settle_minutes: int) -> bool:
    """Whether a rollup step rewrites the provisional location hours: only while the hourly tier is as close to now
    as steady stepping keeps it (settle time, the hour in progress, and an hour's slack). A tier further behind is
    catching up, and rewriting many hours of raw results each step would only slow that down."""
    return now - hourly_through <= timedelta(minutes=settle_minutes) + 2 * HOUR


def hourly_prune_cutoff(
    now: datetime, hourly_days: int, raw_complete_from: datetime | None
) -> datetime | None:
    """Hourly rollups thin out after `hourly_days`, but never where raw results still exist: reconciliation
    before deletion compares raw counts with the hourly tier."""
    if raw_complete_from is None:
        return None
    return min(floor_day(now - timedelta(days=hourly_days)), raw_complete_from)


REGIONS_MAX_HOURS = 720  # GET /regions' longest window (shared.api.requests.RegionsQuery)


def location_hourly_prune_cutoff(now: datetime, hourly_prune: datetime) -> datetime:
    """Location hours go with the per-monitor ones, but never inside the longest /regions window (its ragged first
    day is read by the hour), and a day's margin."""
    return min(hourly_prune, floor_day(now - timedelta(hours=REGIONS_MAX_HOURS)) - DAY)


def alert_cutoff(now: datetime, alert_history_days: int) -> datetime:
    return now - timedelta(days=alert_history_days)


def next_batch_size(done: int, batch_size: int, safety_limit: int) -> int:
    """How many rows the next batch may delete; 0 once the per-run safety limit is spent."""
    return max(0, min(batch_size, safety_limit - done))


@dataclass
class Budget:
    """The per-run safety limit, spent batch by batch."""

    limit: int
    used: int = 0

    def next(self, batch_size: int) -> int:
        return next_batch_size(self.used, batch_size, self.limit)

    @property
    def spent(self) -> bool:
        return self.used >= self.limit


def next_window(start: datetime, target: datetime, step: timedelta, max_steps: int) -> datetime | None:
    """The end of the next incremental rollup step from `start` towards `target`, or None when caught up."""
    if start >= target:
        return None
    return min(target, start + step * max_steps)


def read_window(now: datetime, days: int, raw_complete_from: datetime | None) -> tuple[datetime, datetime]:
    """(since, raw_from): a window inside the raw data reads raw only, from exactly `days` ago. One reaching
    past the raw boundary starts at a UTC day (daily rollups cannot split a day) and switches to raw at it."""
    return _tiered_window(now - timedelta(days=days), raw_complete_from, floor_day)


def regions_window(
    now: datetime, hours: int, hourly_through: datetime | None, daily_through: datetime | None
) -> tuple[datetime, datetime, datetime, datetime]:
    """(since, rolled_until, days_from, days_to) of GET /regions: from the whole hour `hours` back (a location hour
    is never split); final rollups before rolled_until (the hourly watermark, or since when nothing before it is
    rolled), provisional hours from it on; the whole days the daily tier holds in between are [days_from, days_to)
    (empty: both are since), every other hour is read by the hour."""
    since = floor_hour(now - timedelta(hours=hours))
    rolled_until = max(since, hourly_through) if hourly_through else since
    days = whole_days_within(since, rolled_until, daily_through) or (since, since)
    return since, rolled_until, *days


def whole_days_within(
    since: datetime, until: datetime, daily_through: datetime | None
) -> tuple[datetime, datetime] | None:
    """The UTC days inside [since, until) that the daily tier holds, as (first, end), or None: a long window
    reads them as one row per monitor and location a day instead of 24, and only its ragged ends by the hour."""
    if daily_through is None:
        return None
    first = since if since == floor_day(since) else floor_day(since) + DAY
    end = min(floor_day(until), daily_through)
    return (first, end) if first < end else None


def _tiered_window(
    since: datetime, tier_end: datetime | None, floor: Callable[[datetime], datetime]
) -> tuple[datetime, datetime]:
    if tier_end is None or since >= tier_end:
        return since, since
    return floor(since), tier_end


def percentile_cont(histogram: Iterable[tuple[int, int]], fraction: float) -> float | None:
    """PostgreSQL's percentile_cont over the multiset a histogram of (value, count) stands for: linear
    interpolation between the values at rows floor(f*(n-1)) and ceil(f*(n-1)), computed the same way."""
    pairs = sorted((value, count) for value, count in histogram if count > 0)
    total = sum(count for _, count in pairs)
    if total == 0:
        return None
    position = fraction * (total - 1)
    first_row, second_row = floor(position), ceil(position)

    def value_at(row: int) -> float:
        seen = 0
        for value, count in pairs:
            seen += count
            if row < seen:
                return float(value)
        raise AssertionError("row beyond the histogram")

    first = value_at(first_row)
    if second_row == first_row:
        return first
    second = value_at(second_row)
    return first + (position - first_row) * (second - first)


# --- Redis streams ------------------------------------------------------------------------------


StreamId = tuple[int, int]


def parse_stream_id(value: str) -> StreamId:
    ms, _, seq = value.partition("-")
    return int(ms), int(seq or 0)


def format_stream_id(value: StreamId) -> str:
    return f"{value[0]}-{value[1]}"


def next_stream_id(value: StreamId) -> StreamId:
    return (value[0], value[1] + 1)


@dataclass(frozen=True)
class GroupState:
    """What XINFO GROUPS and XPENDING say about one consumer group."""

    name: str
    last_delivered_id: str
    pending: int
    oldest_pending_id: str | None


def stream_trim_floor(cutoff: datetime, groups: Iterable[GroupState]) -> str:
    """The MINID for XTRIM: entries older than the cutoff go, but never one a group still holds pending or has
    not yet been delivered (XTRIM MINID would cut either)."""
    floor = (int(cutoff.timestamp() * 1000), 0)
    for group in groups:
        floor = min(floor, next_stream_id(parse_stream_id(group.last_delivered_id)))
        if group.pending and group.oldest_pending_id:
            floor = min(floor, parse_stream_id(group.oldest_pending_id))
    return format_stream_id(floor)


def stream_cutoff(stream: str, now: datetime, config: RetentionConfig) -> datetime:
    """Dead letters are evidence to inspect: they stay as long as raw results; other entries for a day."""
    if stream.endswith(DEAD_LETTER_SUFFIX):
        return now - timedelta(days=config.retention_days)
    return now - timedelta(hours=config.stream_retention_hours)


# --- synthetic artifacts ------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredObject:
    key: str
    last_modified: datetime


def artifact_owner(key: str) -> tuple[str, str] | None:
    """(run id, location) from 'synthetic/<monitor id>/<run id>/<location>/<file>', or None for other keys."""
    parts = key.split("/")
    if len(parts) < 5 or parts[0] + "/" != ARTIFACT_PREFIX:
        return None
    try:
        run_id = str(uuid.UUID(parts[2]))
    except ValueError:
        return None
    return run_id, parts[3]


def artifacts_to_delete(
    objects: Iterable[StoredObject], cutoff: datetime, kept_results: set[tuple[str, str]]
) -> list[str]:
    """Artifacts older than the retention go, except those of a result kept as a status change: the report
    link on a preserved result must keep working."""
    doomed = []
    for stored in objects:
        if stored.last_modified >= cutoff:
            continue
        if artifact_owner(stored.key) in kept_results:
            continue
        doomed.append(stored.key)
    return doomed


# --- the report ---------------------------------------------------------------------------------


class MonitorCleanup(ApiModel):
    monitor_id: uuid.UUID
    results_deleted: int = 0
    status_changes_kept: int = 0
    runs_deleted: int = 0


class RollupReport(ApiModel):
    hourly_through: datetime | None = None
    daily_through: datetime | None = None
    hours_rolled: int = 0
    days_rolled: int = 0
    hours_reconciled: int = 0
    hourly_pruned: int = 0


class StreamTrim(ApiModel):
    stream: str
    min_id: str
    trimmed: int | None = None  # None on a dry run: the floor is shown, nothing is counted or cut


class ArtifactReport(ApiModel):
    bucket: str | None = None
    deleted: int = 0
    skipped: str | None = None


class CleanupReport(ApiModel):
    """The same shape for a dry run (what would go) and a real one (what went)."""

    dry_run: bool
    started_at: datetime
    retention_days: int
    preserve_status_changes: bool
    results_cutoff: datetime
    alert_history_cutoff: datetime
    project_id: uuid.UUID | None = None  # a run for one project: only its monitors are counted and reported
    results_deleted: int = 0
    status_changes_kept: int = 0
    runs_deleted: int = 0
    alert_history_deleted: int = 0
    alert_events_deleted: int = 0
    # a heartbeat's pings (each may carry a body of up to 100 KB) are raw history: kept as long as results
    heartbeat_pings_deleted: int = 0
    monitor_counters_pruned: int = 0  # Redis fields of deleted monitors' check and alert counters
    safety_limit_reached: bool = False
    monitors: list[MonitorCleanup] = Field(default_factory=list)
    rollups: RollupReport = Field(default_factory=RollupReport)
    streams: list[StreamTrim] = Field(default_factory=list)
    artifacts: ArtifactReport = Field(default_factory=ArtifactReport)
    notes: list[str] = Field(default_factory=list)
    seconds: dict[str, float] = Field(default_factory=dict)  # wall time per phase, for logs and benchmarks

    def monitor(self, monitor_id: uuid.UUID) -> MonitorCleanup:
        for entry in self.monitors:
            if entry.monitor_id == monitor_id:
                return entry
        entry = MonitorCleanup(monitor_id=monitor_id)
        self.monitors.append(entry)
        return entry

    def finish(self) -> CleanupReport:
        """Totals from the per-monitor entries, monitors in a stable order."""
        self.monitors.sort(key=lambda entry: str(entry.monitor_id))
        self.results_deleted = sum(entry.results_deleted for entry in self.monitors)
        self.status_changes_kept = sum(entry.status_changes_kept for entry in self.monitors)
        self.runs_deleted = sum(entry.runs_deleted for entry in self.monitors)
        return self

    def as_json(self) -> dict:
        return self.model_dump(mode="json", by_alias=True)
