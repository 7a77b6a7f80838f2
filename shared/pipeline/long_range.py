"""The long-range reads for the api function's location stats and uptime (shared.api.services.results): daily
rollups before the raw boundary (`raw_complete_from`, where cleanup stopped deleting), raw results from it on, so
a window of any length gives the figures the raw rows gave while they existed."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime

from psycopg import AsyncConnection
from pydantic import Field

from shared import db
from shared.models import ApiModel
from shared.pipeline.rollups import PERCENTILES, RAW_MARK, UP_STATUSES, read_marks
from shared.rules.retention import UTC_ORIGIN, percentile_cont, read_window


@dataclass(frozen=True)
class LocationFigures:
    """One location's figures over a window, unrounded; the API rounds them into its LocationStat."""

    location: str
    total_checks: int
    up_checks: int
    uptime_percentage: float | None
    avg_response_time: float | None
    min_response_time: float | None
    max_response_time: float | None
    p50_response_time: float | None
    p95_response_time: float | None
    p99_response_time: float | None


@dataclass(frozen=True)
class LongRangeStats:
    monitor_id: uuid.UUID
    since: datetime
    raw_from: datetime
    until: datetime
    data: list[LocationFigures]


class DayUptime(ApiModel):
    day: date
    checks: int
    up_checks: int
    uptime_percentage: float


class UptimeReport(ApiModel):
    monitor_id: uuid.UUID
    since: datetime
    raw_from: datetime
    until: datetime
    checks: int
    up_checks: int
    uptime_percentage: float | None
    days: list[DayUptime] = Field(default_factory=list)


_LOCATION_TOTALS = """
select location, sum(checks)::bigint as checks, sum(up_checks)::bigint as up_checks,
       sum(response_count)::bigint as response_count, sum(response_sum_ms)::bigint as response_sum_ms,
       min(min_ms) as min_ms, max(max_ms) as max_ms
from (
    select location, checks, up_checks, response_count, response_sum_ms,
           min_response_ms as min_ms, max_response_ms as max_ms
    from rollup_daily where monitor_id = %(monitor_id)s and bucket >= %(since)s and bucket < %(raw_from)s
    union all
    select location, count(*), count(*) filter (where status = any(%(up)s)), count(response_time_ms),
           coalesce(sum(response_time_ms), 0), min(response_time_ms), max(response_time_ms)
    from monitor_results where monitor_id = %(monitor_id)s and checked_at >= %(raw_from)s
    group by location
) parts
group by location order by location
"""

_LOCATION_HISTOGRAMS = """
select location, v, sum(c)::bigint as c
from (
    select d.location, u.v, u.c
    from rollup_daily d cross join lateral unnest(d.response_values_ms, d.response_value_counts) as u(v, c)
    where d.monitor_id = %(monitor_id)s and d.bucket >= %(since)s and d.bucket < %(raw_from)s
    union all
    select location, response_time_ms, count(*)
    from monitor_results
    where monitor_id = %(monitor_id)s and checked_at >= %(raw_from)s and response_time_ms is not null
    group by location, response_time_ms
) parts
group by location, v order by location, v
"""

_DAILY_UPTIME = """
select day, sum(checks)::bigint as checks, sum(up_checks)::bigint as up_checks
from (
    select bucket as day, checks, up_checks
    from rollup_daily where monitor_id = %(monitor_id)s and bucket >= %(since)s and bucket < %(raw_from)s
    union all
    select date_bin('1 day', checked_at, %(origin)s), count(*), count(*) filter (where status = any(%(up)s))
    from monitor_results where monitor_id = %(monitor_id)s and checked_at >= %(raw_from)s
    group by 1
) parts
group by day order by day
"""


async def _window(conn: AsyncConnection, now: datetime, days: int) -> tuple[datetime, datetime]:
    marks = await read_marks(conn)
    return read_window(now, days, marks.get(RAW_MARK))


async def location_stats(monitor_id: uuid.UUID, days: int, now: datetime | None = None) -> LongRangeStats:
    """Per location over the last `days`: what the raw rows gave while they existed, for any length of window."""
    now = now or datetime.now(UTC)
    async with db.transaction() as conn:
        since, raw_from = await _window(conn, now, days)
        params = {"monitor_id": monitor_id, "since": since, "raw_from": raw_from, "up": list(UP_STATUSES)}
        totals = await (await conn.execute(_LOCATION_TOTALS, params, prepare=False)).fetchall()
        histogram_rows = await (await conn.execute(_LOCATION_HISTOGRAMS, params, prepare=False)).fetchall()
    data = figures_by_location(totals, histogram_rows)
    return LongRangeStats(monitor_id=monitor_id, since=since, raw_from=raw_from, until=now, data=data)


def figures_by_location(totals: list[dict], histogram_rows: list[dict]) -> list[LocationFigures]:
    """Each location's figures from its summed totals (location, checks, up_checks, response_count,
    response_sum_ms, min_ms, max_ms) and its merged histogram rows (location, v, c): the percentiles are
    percentile_cont of the raw rows the histograms stand for, exact however many rollups were merged."""
    histograms: dict[str, Counter] = {}
    for row in histogram_rows:
        histograms.setdefault(row["location"], Counter())[row["v"]] += row["c"]
    data = []
    for row in totals:
        histogram = histograms.get(row["location"], Counter())
        pct = {f: percentile_cont(histogram.items(), f) for f in PERCENTILES}
        data.append(
            LocationFigures(
                location=row["location"],
                total_checks=row["checks"],
                up_checks=row["up_checks"],
                uptime_percentage=100.0 * row["up_checks"] / row["checks"] if row["checks"] else None,
                avg_response_time=row["response_sum_ms"] / row["response_count"]
                if row["response_count"]
                else None,
                min_response_time=row["min_ms"],
                max_response_time=row["max_ms"],
                p50_response_time=pct[0.5],
                p95_response_time=pct[0.95],
                p99_response_time=pct[0.99],
            )
        )
    return data


async def uptime(monitor_id: uuid.UUID, days: int, now: datetime | None = None) -> UptimeReport:
    """Uptime over the last `days` (up or degraded location checks over all of them), with a UTC-day series."""
    now = now or datetime.now(UTC)
    async with db.transaction() as conn:
        since, raw_from = await _window(conn, now, days)
        rows = await (
            await conn.execute(
                _DAILY_UPTIME,
                {
                    "monitor_id": monitor_id,
                    "since": since,
                    "raw_from": raw_from,
                    "up": list(UP_STATUSES),
                    "origin": UTC_ORIGIN,
                },
                prepare=False,
            )
        ).fetchall()
    series = [
        DayUptime(
            day=row["day"].astimezone(UTC).date(),
            checks=row["checks"],
            up_checks=row["up_checks"],
            uptime_percentage=100.0 * row["up_checks"] / row["checks"],
        )
        for row in rows
    ]
    checks = sum(day.checks for day in series)
    up_checks = sum(day.up_checks for day in series)
    return UptimeReport(
        monitor_id=monitor_id,
        since=since,
        raw_from=raw_from,
        until=now,
        checks=checks,
        up_checks=up_checks,
        uptime_percentage=100.0 * up_checks / checks if checks else None,
        days=series,
    )
