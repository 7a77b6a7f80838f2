"""The regional dashboard's figures, as GET /regions reads them (shared/api/routes/history.py): per location,
over the last `hours`, one project's checks, uptime, mean and p95 response time, and its failing monitors.

Complete hours come from rollups (whole UTC days from rollup_daily where it holds them, the other hours from
rollup_hourly) and only the not-yet-rolled tail (after `rollup_hourly_through`, about 15 to 75 minutes) from
monitor_results, as shared.pipeline.long_range combines daily rollups and raw rows. The p95 is percentile_cont
over the merged histograms, as long_range's, so exact; only their top is read. Every read of monitor_results
is a per-monitor range scan of its (monitor_id, location, checked_at) index: the table has no index on
checked_at alone."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime

from shared import db
from shared.api.schemas import FailingMonitor, RegionOut, RegionsReport
from shared.pipeline.rollups import DAILY_MARK, HOURLY_MARK, UP_STATUSES, read_marks
from shared.rules.retention import (
    hourly_read_window,
    percentile_cont,
    percentile_cont_of_top,
    whole_days_within,
)
from shared.settings import get_settings

FAILING_SHOWN = 20

# The configured order (SC_LOCATIONS) first, as the schedule orders them; then any other active region.
_REGIONS = """
select code, name, city from regions where active
order by array_position(%(configured)s::text[], code) nulls last, created_at, code
"""

_PROJECT_MONITORS = "select id from monitors where project_id = %(project_id)s"

# The rolled part of the window: whole UTC days from rollup_daily where the daily tier holds them, the hours
# before and after them from rollup_hourly (two bucket ranges, so both tables are read by their bucket).
_ROLLED_ROWS = f"""
select {{columns}} from rollup_hourly
where monitor_id in ({_PROJECT_MONITORS})
  and ((bucket >= %(since)s and bucket < %(days_from)s) or (bucket >= %(days_to)s and bucket < %(raw_from)s))
union all
select {{columns}} from rollup_daily
where monitor_id in ({_PROJECT_MONITORS}) and bucket >= %(days_from)s and bucket < %(days_to)s
"""

_ROLLED_TOTALS = f"""
select location, sum(checks)::bigint as checks, sum(up_checks)::bigint as up_checks,
       sum(response_count)::bigint as response_count, sum(response_sum_ms)::bigint as response_sum_ms,
       min(min_response_ms) as min_ms, max(max_response_ms) as max_ms, avg(p95_response_ms) as mean_rollup_p95
from ({
    _ROLLED_ROWS.format(
        columns="location, checks, up_checks, response_count, response_sum_ms, min_response_ms, "
        "max_response_ms, p95_response_ms"
    )
}) rolled
group by location
"""

# The p95 needs only the largest values (rules.retention.top_rows_needed): each hourly row's histogram from a
# floor up, found by binary search (width_bucket counts the values under it) and sliced off in C. Merging every
# (value, count) pair of every row instead is what made the p95 cost seconds at 10,000 monitors. The
# set-returning functions in the select list run zipped, as ROWS FROM.
_ROLLED_TOP_HISTOGRAMS = f"""
select location, v, sum(c)::bigint as c
from (select r.location,
             unnest(r.response_values_ms[width_bucket(f.floor_ms - 1, r.response_values_ms) + 1:]) as v,
             unnest(r.response_value_counts[width_bucket(f.floor_ms - 1, r.response_values_ms) + 1:]) as c
      from ({
    _ROLLED_ROWS.format(columns="location, max_response_ms, response_values_ms, response_value_counts")
}) r
      join unnest(%(floor_locations)s::text[], %(floors)s::int[]) as f(location, floor_ms)
        on f.location = r.location
      where r.max_response_ms >= f.floor_ms) per_value
group by location, v
"""
# The floor is first guessed low: the lower of the raw tail's own GUESS_FRACTION percentile (the latest hour is
# a fair guess at the window's spread) and the mean of the rollups' own p95s. Where the guess proves too high, that
# location is read again from 0, all of it; the answer is exact either way.
P95 = 0.95
GUESS_FRACTION = 0.8

# The raw tail read once, grouped by location and response time: both its totals and its histogram follow.
_RAW_TAIL = """
select x.location, x.response_time_ms as v, count(*) as checks,
       count(*) filter (where x.status = any(%(up)s)) as up_checks
from monitors m
cross join lateral (
    select location, status, response_time_ms from monitor_results x
    where x.monitor_id = m.id and x.checked_at >= %(raw_from)s
) x
where m.project_id = %(project_id)s
group by x.location, x.response_time_ms
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
        days_from, days_to = whole_days_within(since, raw_from, marks.get(DAILY_MARK)) or (raw_from, raw_from)
        regions = await (
            await conn.execute(_REGIONS, {"configured": list(get_settings().locations)})
        ).fetchall()
        params = {
            "project_id": project_id,
            "since": since,
            "raw_from": raw_from,
            "days_from": days_from,
            "days_to": days_to,
            "up": list(UP_STATUSES),
            "locations": [region["code"] for region in regions],
            "shown": FAILING_SHOWN,
        }
        rolled = await (await conn.execute(_ROLLED_TOTALS, params, prepare=False)).fetchall()
        tail = await (await conn.execute(_RAW_TAIL, params, prepare=False)).fetchall()
        totals = {row["location"]: row for row in _with_tail(rolled, tail)}
        p95 = await _p95_by_location(conn, params, rolled, tail)
        failing_rows = await (await conn.execute(_FAILING, params, prepare=False)).fetchall()
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
                p95_response_ms=_round(p95.get(region["code"]), 2),
                failing_monitors=shown[0]["failing_count"] if shown else 0,
                failing=[
                    FailingMonitor(id=row["id"], name=row["name"], status=row["status"]) for row in shown
                ],
            )
        )
    return RegionsReport(since=since, rolled_until=raw_from, until=now, data=data)


async def _p95_by_location(conn, params: dict, rolled: list[dict], tail: list[dict]) -> dict[str, float]:
    """Each location's exact p95 over the rolled hours and the raw tail, reading the rolled histograms only
    from a floor up (see _ROLLED_TOP_HISTOGRAMS); a location whose guessed floor proves too high is read whole."""
    tails: dict[str, Counter] = {}
    for row in tail:
        if row["v"] is not None:
            tails.setdefault(row["location"], Counter())[row["v"]] += row["checks"]
    rolled_counts = {row["location"]: row["response_count"] for row in rolled if row["response_count"]}
    floors = _first_floors(rolled, tails)
    found: dict[str, float] = {}
    while floors:
        rows = await (
            await conn.execute(
                _ROLLED_TOP_HISTOGRAMS,
                {**params, "floor_locations": list(floors), "floors": list(floors.values())},
                prepare=False,
            )
        ).fetchall()
        tops: dict[str, Counter] = {location: Counter() for location in floors}
        for row in rows:
            tops[row["location"]][row["v"]] += row["c"]
        retry = {}
        for location, floor_ms in floors.items():
            top, tail_values = tops[location], tails.get(location, Counter())
            top.update({v: c for v, c in tail_values.items() if v >= floor_ms})
            below = rolled_counts[location] + sum(tail_values.values()) - sum(top.values())
            value = percentile_cont_of_top(top.items(), below, P95)
            if value is not None:
                found[location] = value
            elif floor_ms > 0:
                retry[location] = (
                    0  # from 0, the whole histogram: enough unless the rows contradict themselves
                )
        floors = retry
    for location, tail_values in tails.items():  # only raw rows there (no rolled hours)
        if location not in rolled_counts:
            found[location] = percentile_cont(tail_values.items(), P95)
    return found


def _first_floors(rolled: list[dict], tails: dict[str, Counter]) -> dict[str, int]:
    """Per location with rolled response times, the first floor to read its hours' histograms from."""
    floors = {}
    for row in rolled:
        if row["response_count"]:
            guesses = [
                percentile_cont(tails.get(row["location"], Counter()).items(), GUESS_FRACTION),
                row["mean_rollup_p95"],
            ]
            known = [guess for guess in guesses if guess is not None]
            floors[row["location"]] = int(min(known)) if known else 0
    return floors


def _with_tail(rolled: list[dict], tail: list[dict]) -> list[dict]:
    """The rolled hours' totals per location with the raw tail's (grouped by response time) added in."""
    totals = {row["location"]: dict(row) for row in rolled}
    for row in tail:
        total = totals.setdefault(
            row["location"],
            {
                "location": row["location"],
                "checks": 0,
                "up_checks": 0,
                "response_count": 0,
                "response_sum_ms": 0,
                "min_ms": None,
                "max_ms": None,
            },
        )
        total["checks"] += row["checks"]
        total["up_checks"] += row["up_checks"]
        if row["v"] is not None:
            total["response_count"] += row["checks"]
            total["response_sum_ms"] += row["v"] * row["checks"]
            total["min_ms"] = row["v"] if total["min_ms"] is None else min(total["min_ms"], row["v"])
            total["max_ms"] = row["v"] if total["max_ms"] is None else max(total["max_ms"], row["v"])
    return list(totals.values())


def _round(value: float | None, digits: int) -> float | None:
    return round(value, digits) if value is not None else None
