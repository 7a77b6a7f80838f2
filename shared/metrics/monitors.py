"""Every monitor's state and timings as Prometheus families: a few set-based reads per scrape (never one query per
monitor), the per-monitor counters the pipeline keeps in Redis (shared/telemetry.py), and uptime from rollups."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric, StateSetMetricFamily

from shared import db
from shared.pipeline.rollups import DAILY_MARK, HOURLY_MARK, read_marks
from shared.rules.alerts import MaintenanceWindow
from shared.rules.retention import DAY
from shared.rules.series import floor_to
from shared.telemetry import METRICS, read_counter

log = logging.getLogger("supercheck.metrics")

MONITOR_LABELS = ("monitor_id", "monitor_name", "type", "project")
STATES = ("up", "down", "degraded", "paused", "pending", "unknown", "maintenance")
# The stored status a finalized run leaves (shared.models.MonitorStatus) as the state set shows it: an error run
# is a failed one, as the alerts treat it.
_STATE_OF_STATUS = {"up": "up", "down": "down", "degraded": "degraded", "error": "down", "pending": "pending"}
_UP_VALUE = {"up": 1, "degraded": 1, "down": 0, "error": 0}
PHASES = {"dns": "dns_ms", "connect": "connect_ms", "tls": "tls_ms", "ttfb": "first_byte_ms"}
WINDOWS = {"1d": timedelta(days=1), "7d": timedelta(days=7), "30d": timedelta(days=30)}

_MONITORS = """
select m.id, m.name, m.type, m.project_id, p.name as project, m.status, m.enabled, m.last_check_at,
       coalesce((m.alert_state ->> 'consecutive_failures')::int, 0) as consecutive_failures
from monitors m join projects p on p.id = m.project_id
where %(project_id)s::uuid is null or m.project_id = %(project_id)s
"""

# The last finalized run's result per location (runs' results are keyed on (run_id, location)).
_LAST_RESULTS = """
select r.monitor_id, r.location, r.response_time_ms, r.dns_ms, r.connect_ms, r.tls_ms, r.first_byte_ms,
       r.details -> 'ssl' ->> 'validTo' as cert_valid_to
from monitors m join monitor_results r on r.run_id = m.last_run_id
where %(project_id)s::uuid is null or m.project_id = %(project_id)s
"""

_ACTIVE_WINDOWS = """
select project_id, monitor_ids, name, starts_at, ends_at, cron, duration_minutes, timezone
from maintenance_windows
where (%(project_id)s::uuid is null or project_id = %(project_id)s)
  and (cron is not null or (starts_at <= %(now)s and ends_at > %(now)s))
"""

# Uptime per window from the rollup tiers only: settled hours up to the hourly watermark, whole UTC days before
# the daily one. 1d is the 24 settled hours; 7d and 30d are whole UTC days plus the settled hours of today.
_UPTIME = """
select monitor_id,
       sum(checks) filter (where src = 'h' and bucket >= %(w1_from)s) as checks_1d,
       sum(up_checks) filter (where src = 'h' and bucket >= %(w1_from)s) as up_1d,
       sum(checks) filter (where (src = 'd' and bucket >= %(w7_from)s) or (src = 'h' and bucket >= %(w7_hourly)s))
           as checks_7d,
       sum(up_checks) filter (where (src = 'd' and bucket >= %(w7_from)s) or (src = 'h' and bucket >= %(w7_hourly)s))
           as up_7d,
       sum(checks) filter (where src = 'd' or bucket >= %(w30_hourly)s) as checks_30d,
       sum(up_checks) filter (where src = 'd' or bucket >= %(w30_hourly)s) as up_30d
from (
    select monitor_id, bucket, checks, up_checks, 'h' as src from rollup_hourly
    where bucket >= %(hourly_from)s and bucket < %(hourly_to)s
    union all
    select monitor_id, bucket, checks, up_checks, 'd' from rollup_daily
    where bucket >= %(w30_from)s and bucket < %(daily_to)s
) tiers
group by monitor_id
"""


@dataclass
class Fleet:
    """What one scrape read about the monitors it may show."""

    monitors: list[dict]
    last_results: list[dict]
    in_maintenance: set[uuid.UUID]
    uptime: dict[uuid.UUID, dict[str, float]]
    counters: dict[str, dict[tuple[str, ...], float]] = field(default_factory=dict)


def monitor_state(status: str, enabled: bool, in_maintenance: bool) -> str:
    if not enabled:
        return "paused"
    if in_maintenance:
        return "maintenance"
    return _STATE_OF_STATUS.get(status, "unknown")


def uptime_params(hourly_through: datetime, daily_through: datetime | None) -> dict[str, datetime]:
    """The [from, to) of each tier a window reads; the daily tier ends at its mark, the hourly one takes over."""
    today = floor_to(hourly_through, DAY)
    w7_from, w30_from = today - WINDOWS["7d"], today - WINDOWS["30d"]
    daily_to = max(daily_through or w30_from, w30_from)
    w1_from = hourly_through - WINDOWS["1d"]
    return {
        "w1_from": w1_from,
        "w7_from": w7_from,
        "w7_hourly": max(w7_from, daily_to),
        "w30_from": w30_from,
        "w30_hourly": max(w30_from, daily_to),
        "hourly_from": min(w1_from, max(w30_from, daily_to)),
        "hourly_to": hourly_through,
        "daily_to": daily_to,
    }


def uptime_ratios(row: dict) -> dict[str, float]:
    ratios = {}
    for window in WINDOWS:
        checks = row[f"checks_{window}"]
        if checks:
            ratios[window] = row[f"up_{window}"] / checks
    return ratios


class UptimeCache:
    """Uptime windows change only when a rollup watermark moves (about once an hour): computed for every monitor
    once per pair of marks, kept per process, and refreshed in the background while the previous figures serve."""

    def __init__(self) -> None:
        self.marks: tuple | None = None
        self.ratios: dict[uuid.UUID, dict[str, float]] = {}
        self._refreshing: asyncio.Task | None = None

    async def current(self, conn) -> dict[uuid.UUID, dict[str, float]]:
        marks = await read_marks(conn)
        hourly, daily = marks.get(HOURLY_MARK), marks.get(DAILY_MARK)
        if hourly is None:
            return {}
        if (hourly, daily) == self.marks:
            return self.ratios
        if self.marks is None:
            await self._compute(hourly, daily)
        elif self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.create_task(self._compute(hourly, daily))
        return self.ratios

    async def _compute(self, hourly: datetime, daily: datetime | None) -> None:
        try:
            async with db.transaction() as conn:
                rows = await (await conn.execute(_UPTIME, uptime_params(hourly, daily))).fetchall()
        except Exception:
            log.exception("uptime from rollups could not be read; the previous figures stay")
            return
        self.ratios = {row["monitor_id"]: uptime_ratios(row) for row in rows}
        self.marks = (hourly, daily)


uptime_cache = UptimeCache()


async def read_fleet(project_id: uuid.UUID | None, now: datetime | None = None) -> Fleet:
    """project_id None: every project (the operator token)."""
    from shared.metrics.pipeline import read_servers

    now = now or datetime.now(UTC)
    params = {"project_id": project_id, "now": now}
    counters_read = asyncio.create_task(read_servers([METRICS[name] for name in _monitor_specs()], False))
    async with db.transaction() as conn:
        monitors = await (await conn.execute(_MONITORS, params)).fetchall()
        last_results = await (await conn.execute(_LAST_RESULTS, params)).fetchall()
        windows = await (await conn.execute(_ACTIVE_WINDOWS, params)).fetchall()
        uptime = await uptime_cache.current(conn)
    stored, _, _ = await counters_read
    return Fleet(
        monitors=monitors,
        last_results=last_results,
        in_maintenance=_in_maintenance(monitors, windows, now),
        uptime=uptime,
        counters={name: read_counter(METRICS[name], stored.get(name, {})) for name in _monitor_specs()},
    )


def _monitor_specs() -> list[str]:
    return [name for name, spec in METRICS.items() if spec.scope == "monitor"]


def _in_maintenance(monitors: list[dict], windows: list[dict], now: datetime) -> set[uuid.UUID]:
    active = [
        w
        for w in windows
        if MaintenanceWindow(
            name=w["name"],
            starts_at=w["starts_at"],
            ends_at=w["ends_at"],
            cron=w["cron"],
            duration_minutes=w["duration_minutes"],
            timezone=w["timezone"],
        ).active_at(now)
    ]
    found = set()
    for monitor in monitors:
        for window in active:
            if window["project_id"] == monitor["project_id"] and (
                not window["monitor_ids"] or monitor["id"] in window["monitor_ids"]
            ):
                found.add(monitor["id"])
    return found


def monitor_families(fleet: Fleet) -> list[Metric]:  # noqa: C901 - one pass per family reads better whole
    """The per-monitor families (pure over what was read). Labels name a monitor, never its target."""
    base = {m["id"]: [str(m["id"]), m["name"], m["type"], m["project"]] for m in fleet.monitors}

    up = GaugeMetricFamily(
        "supercheck_monitor_up",
        "1 if the last finalized run was up (or degraded), else 0.",
        labels=MONITOR_LABELS,
    )
    status = StateSetMetricFamily("supercheck_monitor_status", "The monitor's state.", labels=MONITOR_LABELS)
    last_check = GaugeMetricFamily(
        "supercheck_monitor_last_check_timestamp_seconds",
        "When the monitor last ran (Unix time).",
        labels=MONITOR_LABELS,
    )
    failures = GaugeMetricFamily(
        "supercheck_monitor_consecutive_failures",
        "Failed runs in a row, as alerting counts them.",
        labels=MONITOR_LABELS,
    )
    for monitor in fleet.monitors:
        labels = base[monitor["id"]]
        state = monitor_state(monitor["status"], monitor["enabled"], monitor["id"] in fleet.in_maintenance)
        status.add_metric(labels, {name: name == state for name in STATES})
        if monitor["enabled"] and monitor["status"] in _UP_VALUE:
            up.add_metric(labels, _UP_VALUE[monitor["status"]])
        if monitor["last_check_at"] is not None:
            last_check.add_metric(labels, monitor["last_check_at"].timestamp())
        failures.add_metric(labels, monitor["consecutive_failures"])

    located = (*MONITOR_LABELS, "location")
    response = GaugeMetricFamily(
        "supercheck_monitor_response_time_seconds",
        "Response time of the last finalized run, per location.",
        labels=located,
    )
    phases = GaugeMetricFamily(
        "supercheck_monitor_phase_seconds",
        "Phases of the last finalized run's request, per location.",
        labels=(*located, "phase"),
    )
    expiry: dict[uuid.UUID, float] = {}
    for result in fleet.last_results:
        labels = base.get(result["monitor_id"])
        if labels is None:
            continue
        location_labels = [*labels, result["location"]]
        if result["response_time_ms"] is not None:
            response.add_metric(location_labels, result["response_time_ms"] / 1000)
        for phase, column in PHASES.items():
            if result[column] is not None:
                phases.add_metric([*location_labels, phase], result[column] / 1000)
        valid_to = _timestamp(result["cert_valid_to"])
        if valid_to is not None:
            expiry[result["monitor_id"]] = min(valid_to, expiry.get(result["monitor_id"], valid_to))
    cert = GaugeMetricFamily(
        "supercheck_monitor_cert_expiry_timestamp_seconds",
        "When the TLS certificate the last run saw expires (Unix time; the earliest over locations).",
        labels=MONITOR_LABELS,
    )
    for monitor_id, valid_to in expiry.items():
        cert.add_metric(base[monitor_id], valid_to)

    uptime = GaugeMetricFamily(
        "supercheck_monitor_uptime_ratio",
        "Share of checks up (or degraded) over the window, from the rollups (settled hours).",
        labels=(*MONITOR_LABELS, "window"),
    )
    for monitor_id, ratios in fleet.uptime.items():
        labels = base.get(monitor_id)
        for window, ratio in ratios.items() if labels else ():
            uptime.add_metric([*labels, window], ratio)

    return [up, status, response, phases, *_counter_families(fleet, base), cert, uptime, last_check, failures]


def _counter_families(fleet: Fleet, base: dict[uuid.UUID, list[str]]) -> Iterable[Metric]:
    for name in _monitor_specs():
        spec = METRICS[name]
        family = CounterMetricFamily(name, spec.help, labels=(*MONITOR_LABELS, *spec.labels[1:]))
        for labels, value in fleet.counters.get(name, {}).items():
            monitor = base.get(_as_uuid(labels[0]))
            if monitor is not None:  # a deleted monitor's counts, or another project's
                family.add_metric([*monitor, *labels[1:]], value)
        yield family


def _as_uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


def _timestamp(text: str | None) -> float | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
