"""The regional dashboard's figures, as GET /regions reads them (shared/api/routes/history.py): per location,
over the last `hours`, one project's checks, uptime, mean and p95 response time, and its failing monitors.

Everything comes from the per-project-per-location tier (shared.pipeline.rollups): whole UTC days from
rollup_location_daily where the daily tier holds them, every other hour from rollup_location_hourly, whose hours
from the hourly watermark on are provisional (rewritten from raw results by every rollup step, so as fresh as the
last one: the aggregate sweep steps it every minute). A few rows per location, whatever the number of monitors.
The p95 is percentile_cont over the merged histograms, so exact. A deleted monitor's past checks stay in the
location tier's rows (they happened in that region) until an hour is re-rolled, unlike the per-monitor tiers, whose
rows go with the monitor. Failing monitors are read from each enabled
monitor's latest applied run (monitors.last_run_id) and its results, one index probe per monitor."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime

from shared import db
from shared.api.schemas import FailingMonitor, RegionOut, RegionsReport
from shared.pipeline.rollups import DAILY_MARK, HOURLY_MARK, PROVISIONAL_MARK, read_marks
from shared.rules.retention import percentile_cont, regions_window
from shared.settings import get_settings

FAILING_SHOWN = 20
P95 = 0.95

# The configured order (SC_LOCATIONS) first, as the schedule orders them; then any other active region.
_REGIONS = """
select code, name, city from regions where active
order by array_position(%(configured)s::text[], code) nulls last, created_at, code
"""

# Whole days from the daily location tier, every other hour of the window from the hourly one (provisional hours
# included): two bucket ranges, so the hourly table is read by its primary key's (project, location, bucket) range.
_LOCATION_ROWS = """
select {columns} from rollup_location_hourly
where project_id = %(project_id)s
  and ((bucket >= %(since)s and bucket < %(days_from)s) or (bucket >= %(days_to)s and bucket < %(until)s))
union all
select {columns} from rollup_location_daily
where project_id = %(project_id)s and bucket >= %(days_from)s and bucket < %(days_to)s
"""

_TOTALS = f"""
select location, sum(checks)::bigint as checks, sum(up_checks)::bigint as up_checks,
       sum(response_count)::bigint as response_count, sum(response_sum_ms)::bigint as response_sum_ms
from ({_LOCATION_ROWS.format(columns="location, checks, up_checks, response_count, response_sum_ms")}) rows
group by location
"""

_HISTOGRAMS = f"""
select location, u.v, sum(u.c)::bigint as c
from ({_LOCATION_ROWS.format(columns="location, response_values_ms, response_value_counts")}) rows
cross join lateral unnest(response_values_ms, response_value_counts) as u(v, c)
group by location, u.v
"""

# Per location, the enabled monitors whose latest applied run (the one their state stands on) checked there
# inside the window and was not up: one probe of the (run_id, location) key per monitor. `offset 0` keeps the
# subquery from being flattened into a join, which the planner ran as a hash over a scan of every result. A location the run did not reach is not counted as failing there. Paused
# monitors are left out: their last result says nothing about now.
_FAILING = """
with latest as (
    select x.location, m.id, m.name, x.status
    from monitors m
    cross join lateral (
        select location, status from monitor_results x
        where x.run_id = m.last_run_id and x.checked_at >= %(since)s and x.status <> 'up'
        offset 0
    ) x
    where m.project_id = %(project_id)s and m.enabled
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
        since, rolled_until, days_from, days_to = regions_window(
            now, hours, marks.get(HOURLY_MARK), marks.get(DAILY_MARK)
        )
        regions = await (
            await conn.execute(_REGIONS, {"configured": list(get_settings().locations)})
        ).fetchall()
        params = {
            "project_id": project_id,
            "since": since,
            "until": now,
            "days_from": days_from,
            "days_to": days_to,
            "shown": FAILING_SHOWN,
        }
        totals = {row["location"]: row for row in await (await conn.execute(_TOTALS, params)).fetchall()}
        histogram_rows = await (await conn.execute(_HISTOGRAMS, params)).fetchall()
        failing_rows = await (await conn.execute(_FAILING, params)).fetchall()
    histograms: dict[str, Counter] = {}
    for row in histogram_rows:
        histograms.setdefault(row["location"], Counter())[row["v"]] += row["c"]
    failing: dict[str, list[dict]] = {}
    for row in failing_rows:
        failing.setdefault(row["location"], []).append(row)
    data = []
    for region in regions:
        total = totals.get(region["code"])
        shown = failing.get(region["code"], [])
        data.append(
            RegionOut(
                location=region["code"],
                name=region["name"],
                city=region["city"],
                checks=total["checks"] if total else 0,
                up_checks=total["up_checks"] if total else 0,
                uptime_percentage=round(100.0 * total["up_checks"] / total["checks"], 3)
                if total and total["checks"]
                else None,
                avg_response_ms=round(total["response_sum_ms"] / total["response_count"], 2)
                if total and total["response_count"]
                else None,
                p95_response_ms=_round(percentile_cont(histograms.get(region["code"], {}).items(), P95), 2),
                failing_monitors=shown[0]["failing_count"] if shown else 0,
                failing=[
                    FailingMonitor(id=row["id"], name=row["name"], status=row["status"]) for row in shown
                ],
            )
        )
    return RegionsReport(
        since=since,
        rolled_until=rolled_until,
        provisional_until=marks.get(PROVISIONAL_MARK),
        until=now,
        data=data,
    )


def _round(value: float | None, digits: int) -> float | None:
    return round(value, digits) if value is not None else None
