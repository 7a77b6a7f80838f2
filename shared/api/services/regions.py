"""The regional dashboard's figures, as GET /regions reads them (shared/api/routes/history.py): per location,
over the last `hours`, one project's checks, uptime, mean and p95 response time, and its failing monitors.

Complete hours come from rollup_hourly and only the not-yet-rolled tail (after `rollup_hourly_through`, about
15 to 75 minutes) from monitor_results, as shared.pipeline.long_range combines daily rollups and raw rows; the
p95 is percentile_cont over the merged histograms (long_range.figures_by_location), so exact. Every read of
monitor_results is a per-monitor range scan of its (monitor_id, location, checked_at) index: the table has no
index on checked_at alone."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from shared import db
from shared.api.schemas import FailingMonitor, RegionOut, RegionsReport
from shared.pipeline.long_range import figures_by_location
from shared.pipeline.rollups import HOURLY_MARK, UP_STATUSES, read_marks
from shared.rules.retention import hourly_read_window
from shared.settings import get_settings

FAILING_SHOWN = 20

# The configured order (SC_LOCATIONS) first, as the schedule orders them; then any other active region.
_REGIONS = """
select code, name, city from regions where active
order by array_position(%(configured)s::text[], code) nulls last, created_at, code
"""

_PROJECT_MONITORS = "select id from monitors where project_id = %(project_id)s"

_RAW_TAIL = """
select x.location, x.status, x.response_time_ms
from monitors m
cross join lateral (
    select location, status, response_time_ms from monitor_results x
    where x.monitor_id = m.id and x.checked_at >= %(raw_from)s
) x
where m.project_id = %(project_id)s
"""

_TOTALS = f"""
select location, sum(checks)::bigint as checks, sum(up_checks)::bigint as up_checks,
       sum(response_count)::bigint as response_count, sum(response_sum_ms)::bigint as response_sum_ms,
       min(min_ms) as min_ms, max(max_ms) as max_ms
from (
    select h.location, h.checks, h.up_checks, h.response_count, h.response_sum_ms,
           h.min_response_ms as min_ms, h.max_response_ms as max_ms
    from rollup_hourly h
    where h.monitor_id in ({_PROJECT_MONITORS}) and h.bucket >= %(since)s and h.bucket < %(raw_from)s
    union all
    select location, count(*), count(*) filter (where status = any(%(up)s)), count(response_time_ms),
           coalesce(sum(response_time_ms), 0), min(response_time_ms), max(response_time_ms)
    from ({_RAW_TAIL}) tail
    group by location
) parts
group by location
"""

_HISTOGRAMS = f"""
select location, v, sum(c)::bigint as c
from (
    select h.location, u.v, u.c
    from rollup_hourly h
    cross join lateral unnest(h.response_values_ms, h.response_value_counts) as u(v, c)
    where h.monitor_id in ({_PROJECT_MONITORS}) and h.bucket >= %(since)s and h.bucket < %(raw_from)s
    union all
    select location, response_time_ms, count(*)
    from ({_RAW_TAIL}) tail
    where response_time_ms is not null
    group by location, response_time_ms
) parts
group by location, v
"""

# Each enabled monitor's latest result per location inside the window: one backward step of the
# (monitor_id, location, checked_at desc) index per monitor and location. Paused monitors are left out: their
# last result says nothing about now.
_FAILING = """
with latest as (
    select l.code as location, m.id, m.name, r.status
    from monitors m
    cross join unnest(%(locations)s::text[]) as l(code)
    cross join lateral (
        select status from monitor_results x
        where x.monitor_id = m.id and x.location = l.code and x.checked_at >= %(since)s
        order by x.checked_at desc limit 1
    ) r
    where m.project_id = %(project_id)s and m.enabled and r.status <> 'up'
),
ranked as (
    select *, count(*) over (partition by location) as failing_count,
           row_number() over (partition by location order by status = 'degraded', name, id) as place
    from latest
)
select location, id, name, status, failing_count from ranked where place <= %(shown)s
order by location, place
"""


async def regions_report(project_id: uuid.UUID, hours: int, now: datetime | None = None) -> RegionsReport:
    now = now or datetime.now(UTC)
    async with db.transaction() as conn:
        marks = await read_marks(conn)
        since, raw_from = hourly_read_window(now, hours, marks.get(HOURLY_MARK))
        regions = await (
            await conn.execute(_REGIONS, {"configured": list(get_settings().locations)})
        ).fetchall()
        params = {
            "project_id": project_id,
            "since": since,
            "raw_from": raw_from,
            "up": list(UP_STATUSES),
            "locations": [region["code"] for region in regions],
            "shown": FAILING_SHOWN,
        }
        totals = await (await conn.execute(_TOTALS, params, prepare=False)).fetchall()
        histogram_rows = await (await conn.execute(_HISTOGRAMS, params, prepare=False)).fetchall()
        failing_rows = await (await conn.execute(_FAILING, params, prepare=False)).fetchall()
    figures = {figure.location: figure for figure in figures_by_location(totals, histogram_rows)}
    failing: dict[str, list[dict]] = {}
    for row in failing_rows:
        failing.setdefault(row["location"], []).append(row)
    data = []
    for region in regions:
        figure = figures.get(region["code"])
        shown = failing.get(region["code"], [])
        data.append(
            RegionOut(
                location=region["code"],
                name=region["name"],
                city=region["city"],
                checks=figure.total_checks if figure else 0,
                up_checks=figure.up_checks if figure else 0,
                uptime_percentage=_round(figure.uptime_percentage, 3) if figure else None,
                avg_response_ms=_round(figure.avg_response_time, 2) if figure else None,
                p95_response_ms=_round(figure.p95_response_time, 2) if figure else None,
                failing_monitors=shown[0]["failing_count"] if shown else 0,
                failing=[
                    FailingMonitor(id=row["id"], name=row["name"], status=row["status"]) for row in shown
                ],
            )
        )
    return RegionsReport(since=since, rolled_until=raw_from, until=now, data=data)


def _round(value: float | None, digits: int) -> float | None:
    return round(value, digits) if value is not None else None
