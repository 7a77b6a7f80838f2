"""Hourly and daily rollups of raw results, built in small steps behind watermarks: the aggregate function's sweep
steps them (rollup_step), cleanup catches up, reconciles and prunes them, shared.pipeline.long_range reads them.

Every rollup keeps the exact response-time histogram, so daily percentiles (and those of any longer window) are
the percentile_cont of the raw rows, not an approximation, and the timing phases' sums and counts. Reads take daily
rollups before the raw boundary (`raw_complete_from`, where cleanup stopped deleting) and raw results from it on.
Beside the per-monitor tiers, a per-project-per-location tier (what GET /regions reads) is written from them in the
same step, plus its provisional hours from the hourly watermark to now.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from psycopg import AsyncConnection

from shared import db
from shared.rules.retention import (
    DAY,
    HOUR,
    UTC_ORIGIN,
    RetentionConfig,
    floor_day,
    floor_hour,
    next_batch_size,
    next_window,
    provisional_due,
    settled_hour,
)
from shared.settings import get_settings

log = logging.getLogger("supercheck.rollups")
ROLLUP_LOCK = 7_340_008  # one rollup writer at a time: the aggregate sweep skips while cleanup catches up
HOURLY_MARK = "rollup_hourly_through"
DAILY_MARK = "rollup_daily_through"
RAW_MARK = "raw_complete_from"
PROVISIONAL_MARK = "rollup_provisional_through"  # raw results before it are in the provisional location hours
UP_STATUSES = ("up", "degraded")  # as the results API counts them
PERCENTILES = (0.5, 0.95, 0.99)

# Timing phases: per phase a sum and a count of the results that carried it (a phase may be null), so any span's
# mean is sum / count. A day knows its phases only if each of its hours does (hours rolled up before migration
# 0012 whose raw rows were gone have none).
PHASES = ("dns", "connect", "tls", "first_byte")
_PHASE_COLUMNS = ", ".join(f"{phase}_count, {phase}_sum_ms" for phase in PHASES)
_PHASE_COLUMNS_OF_T = ", ".join(f"t.{phase}_count, t.{phase}_sum_ms" for phase in PHASES)
_PHASE_UPDATES = ", ".join(
    f"{phase}_count = excluded.{phase}_count, {phase}_sum_ms = excluded.{phase}_sum_ms" for phase in PHASES
)
_DAY_PHASES = ", ".join(
    f"case when count({phase}_count) = count(*) then sum({phase}_count)::int end as {phase}_count, "
    f"case when count({phase}_count) = count(*) then sum({phase}_sum_ms) end as {phase}_sum_ms"
    for phase in PHASES
)

# `{monitors}` is every monitor, or a chosen few when reconciling. The lateral per-monitor range scan uses the
# (monitor_id, checked_at) index; a plain range on checked_at would scan the whole table (it has no index).
_HOURLY_UPSERT = f"""
with raw as materialized (
    select r.monitor_id, r.location, date_bin('1 hour', r.checked_at, %(origin)s) as bucket,
           r.status = any(%(up)s) as is_up, r.response_time_ms as v,
           r.dns_ms, r.connect_ms, r.tls_ms, r.first_byte_ms
    from {{monitors}}
    cross join lateral (
        select x.monitor_id, x.location, x.checked_at, x.status, x.response_time_ms,
               x.dns_ms, x.connect_ms, x.tls_ms, x.first_byte_ms
        from monitor_results x
        where x.monitor_id = m.id and x.checked_at >= %(lo)s and x.checked_at < %(hi)s
    ) r
),
totals as (
    select monitor_id, location, bucket, count(*) as checks, count(*) filter (where is_up) as up_checks,
           count(v) as response_count, coalesce(sum(v), 0) as response_sum_ms, min(v) as min_ms, max(v) as max_ms,
           percentile_cont(%(fractions)s::float8[]) within group (order by v) as pcts,
           count(dns_ms) as dns_count, coalesce(sum(dns_ms::float8), 0) as dns_sum_ms,
           count(connect_ms) as connect_count, coalesce(sum(connect_ms::float8), 0) as connect_sum_ms,
           count(tls_ms) as tls_count, coalesce(sum(tls_ms::float8), 0) as tls_sum_ms,
           count(first_byte_ms) as first_byte_count, coalesce(sum(first_byte_ms::float8), 0) as first_byte_sum_ms
    from raw group by monitor_id, location, bucket
),
histograms as (
    select monitor_id, location, bucket, array_agg(v order by v) as vals, array_agg(c order by v) as cnts
    from (select monitor_id, location, bucket, v, count(*)::int as c
          from raw where v is not null group by monitor_id, location, bucket, v) per_value
    group by monitor_id, location, bucket
)
insert into rollup_hourly as h (
    monitor_id, location, bucket, checks, up_checks, response_count, response_sum_ms,
    min_response_ms, max_response_ms, p50_response_ms, p95_response_ms, p99_response_ms,
    response_values_ms, response_value_counts, {_PHASE_COLUMNS})
select t.monitor_id, t.location, t.bucket, t.checks, t.up_checks, t.response_count, t.response_sum_ms,
       t.min_ms, t.max_ms, t.pcts[1], t.pcts[2], t.pcts[3],
       coalesce(g.vals, '{{{{}}}}'), coalesce(g.cnts, '{{{{}}}}'), {_PHASE_COLUMNS_OF_T}
from totals t left join histograms g using (monitor_id, location, bucket)
on conflict (monitor_id, location, bucket) do update set
    checks = excluded.checks, up_checks = excluded.up_checks, response_count = excluded.response_count,
    response_sum_ms = excluded.response_sum_ms, min_response_ms = excluded.min_response_ms,
    max_response_ms = excluded.max_response_ms, p50_response_ms = excluded.p50_response_ms,
    p95_response_ms = excluded.p95_response_ms, p99_response_ms = excluded.p99_response_ms,
    response_values_ms = excluded.response_values_ms, response_value_counts = excluded.response_value_counts,
    {_PHASE_UPDATES}
"""

# A day from its 24 hourly rows: sums, and percentile_cont over the merged histograms expanded back into values,
# which is the same multiset the raw rows held.
_DAILY_UPSERT = f"""
with hours as materialized (
    select monitor_id, location, date_bin('1 day', bucket, %(origin)s) as bucket, checks, up_checks,
           response_count, response_sum_ms, min_response_ms, max_response_ms,
           response_values_ms, response_value_counts, {_PHASE_COLUMNS}
    from rollup_hourly
    where bucket >= %(lo)s and bucket < %(hi)s {{monitor_filter}}
),
totals as (
    select monitor_id, location, bucket, sum(checks)::int as checks, sum(up_checks)::int as up_checks,
           sum(response_count)::int as response_count, sum(response_sum_ms)::bigint as response_sum_ms,
           min(min_response_ms) as min_ms, max(max_response_ms) as max_ms,
           {_DAY_PHASES}
    from hours group by monitor_id, location, bucket
),
per_value as (
    select monitor_id, location, bucket, u.v, sum(u.c)::int as c
    from hours cross join lateral unnest(response_values_ms, response_value_counts) as u(v, c)
    group by monitor_id, location, bucket, u.v
),
histograms as (
    select monitor_id, location, bucket, array_agg(v order by v) as vals, array_agg(c order by v) as cnts
    from per_value group by monitor_id, location, bucket
),
percentiles as (
    select monitor_id, location, bucket,
           percentile_cont(%(fractions)s::float8[]) within group (order by v) as pcts
    from per_value cross join lateral generate_series(1, c) group by monitor_id, location, bucket
)
insert into rollup_daily (
    monitor_id, location, bucket, checks, up_checks, response_count, response_sum_ms,
    min_response_ms, max_response_ms, p50_response_ms, p95_response_ms, p99_response_ms,
    response_values_ms, response_value_counts, {_PHASE_COLUMNS})
select t.monitor_id, t.location, t.bucket, t.checks, t.up_checks, t.response_count, t.response_sum_ms,
       t.min_ms, t.max_ms, p.pcts[1], p.pcts[2], p.pcts[3],
       coalesce(g.vals, '{{{{}}}}'), coalesce(g.cnts, '{{{{}}}}'), {_PHASE_COLUMNS_OF_T}
from totals t
left join histograms g using (monitor_id, location, bucket)
left join percentiles p using (monitor_id, location, bucket)
on conflict (monitor_id, location, bucket) do update set
    checks = excluded.checks, up_checks = excluded.up_checks, response_count = excluded.response_count,
    response_sum_ms = excluded.response_sum_ms, min_response_ms = excluded.min_response_ms,
    max_response_ms = excluded.max_response_ms, p50_response_ms = excluded.p50_response_ms,
    p95_response_ms = excluded.p95_response_ms, p99_response_ms = excluded.p99_response_ms,
    response_values_ms = excluded.response_values_ms, response_value_counts = excluded.response_value_counts,
    {_PHASE_UPDATES}
"""

# --- the per-project-per-location tier, which GET /regions reads ---------------------------------------------
# Each write first deletes its range, then inserts the range's rows from a source that gives, per project,
# location and bucket, partial sums and histograms (`{source}`); they are summed and the histograms merged (exact),
# so re-running a range rewrites it exactly. Final hours and days come from the per-monitor rows of their tier (each
# written first, in the same transaction), provisional hours (at or after the hourly watermark) from raw results.
_LOCATION_INSERT = """
with rows as materialized ({source}),
totals as (
    select project_id, location, bucket, sum(checks)::bigint as checks, sum(up_checks)::bigint as up_checks,
           sum(response_count)::bigint as response_count, sum(response_sum_ms)::bigint as response_sum_ms
    from rows group by 1, 2, 3
),
histograms as (
    select project_id, location, bucket, array_agg(v order by v) as vals, array_agg(c order by v) as cnts
    from (select project_id, location, bucket, u.v, sum(u.c)::bigint as c
          from rows cross join lateral unnest(response_values_ms, response_value_counts) as u(v, c)
          group by 1, 2, 3, 4) per_value
    group by 1, 2, 3
)
insert into {table} (project_id, location, bucket, checks, up_checks, response_count, response_sum_ms,
                     response_values_ms, response_value_counts)
select t.project_id, t.location, t.bucket, t.checks, t.up_checks, t.response_count, t.response_sum_ms,
       coalesce(g.vals, '{{}}'), coalesce(g.cnts, '{{}}')
from totals t left join histograms g using (project_id, location, bucket)
"""

_FROM_MONITOR_HOURS = """
select m.project_id, h.location, h.bucket, h.checks, h.up_checks, h.response_count, h.response_sum_ms,
       h.response_values_ms, h.response_value_counts
from rollup_hourly h join monitors m on m.id = h.monitor_id
where h.bucket >= %(lo)s and h.bucket < %(hi)s {project_filter}
"""

_FROM_MONITOR_DAYS = _FROM_MONITOR_HOURS.replace("rollup_hourly", "rollup_daily")

# Raw results grouped by response time first (one row per distinct value, a histogram of one bar), through the
# per-monitor (monitor_id, checked_at) index: monitor_results has no index on checked_at alone.
_FROM_RAW = """
select m.project_id, x.location, date_bin('1 hour', x.checked_at, %(origin)s) as bucket, count(*) as checks,
       count(*) filter (where x.status = any(%(up)s)) as up_checks, count(x.response_time_ms) as response_count,
       coalesce(sum(x.response_time_ms), 0) as response_sum_ms,
       case when x.response_time_ms is null then '{{}}'::int[] else array[x.response_time_ms] end
           as response_values_ms,
       case when x.response_time_ms is null then '{{}}'::bigint[] else array[count(*)] end as response_value_counts
from monitors m
cross join lateral (
    select location, checked_at, status, response_time_ms from monitor_results x
    where x.monitor_id = m.id and x.checked_at >= %(lo)s and x.checked_at < %(hi)s
) x
group by m.project_id, x.location, 3, x.response_time_ms
"""


# Hours whose raw row count differs from their hourly rollup: a result stored after its hour was rolled up.
_UNRECONCILED_HOURS = """
select m.id as monitor_id, m.project_id, r.bucket
from monitors m
cross join lateral (
    select x.location, date_bin('1 hour', x.checked_at, %(origin)s) as bucket, count(*) as n
    from monitor_results x
    where x.monitor_id = m.id and x.checked_at >= %(lo)s and x.checked_at < %(hi)s
    group by x.location, bucket
) r
left join rollup_hourly h on h.monitor_id = m.id and h.location = r.location and h.bucket = r.bucket
where h.checks is distinct from r.n
group by m.id, m.project_id, r.bucket
order by m.id, r.bucket
"""


@dataclass
class RollupProgress:
    hourly_through: datetime | None = None
    daily_through: datetime | None = None
    hours_rolled: int = 0
    days_rolled: int = 0
    busy: bool = False

    def add(self, step: RollupProgress) -> None:
        self.hourly_through, self.daily_through = step.hourly_through, step.daily_through
        self.hours_rolled += step.hours_rolled
        self.days_rolled += step.days_rolled


async def read_marks(conn: AsyncConnection) -> dict[str, datetime]:
    rows = await (await conn.execute("select name, at from retention_marks")).fetchall()
    return {row["name"]: row["at"] for row in rows}


async def set_mark(conn: AsyncConnection, name: str, at: datetime) -> None:
    """Marks only move forward, so a slower concurrent writer can never pull one back."""
    await conn.execute(
        """insert into retention_marks (name, at) values (%s, %s)
           on conflict (name) do update set at = greatest(retention_marks.at, excluded.at), updated_at = now()""",
        (name, at),
    )


def _params(lo: datetime, hi: datetime, **extra) -> dict:
    return {
        "origin": UTC_ORIGIN,
        "up": list(UP_STATUSES),
        "fractions": list(PERCENTILES),
        "lo": lo,
        "hi": hi,
        **extra,
    }


async def roll_hours(
    conn: AsyncConnection, lo: datetime, hi: datetime, monitor_ids: list[uuid.UUID] | None = None
) -> None:
    if monitor_ids is None:
        sql = _HOURLY_UPSERT.format(monitors="monitors m")
        await conn.execute(sql, _params(lo, hi), prepare=False)
    else:
        sql = _HOURLY_UPSERT.format(monitors="unnest(%(monitor_ids)s::uuid[]) as m(id)")
        await conn.execute(sql, _params(lo, hi, monitor_ids=monitor_ids), prepare=False)


async def roll_days(
    conn: AsyncConnection, lo: datetime, hi: datetime, monitor_ids: list[uuid.UUID] | None = None
) -> None:
    if monitor_ids is None:
        await conn.execute(_DAILY_UPSERT.format(monitor_filter=""), _params(lo, hi), prepare=False)
    else:
        sql = _DAILY_UPSERT.format(monitor_filter="and monitor_id = any(%(monitor_ids)s::uuid[])")
        await conn.execute(sql, _params(lo, hi, monitor_ids=monitor_ids), prepare=False)


async def _write_location_tier(
    conn: AsyncConnection,
    table: str,
    source: str,
    lo: datetime,
    hi: datetime,
    project_ids: list[uuid.UUID] | None,
) -> None:
    project_filter = "" if project_ids is None else "and project_id = any(%(project_ids)s::uuid[])"
    params = _params(lo, hi, project_ids=project_ids)
    await conn.execute(
        f"delete from {table} where bucket >= %(lo)s and bucket < %(hi)s {project_filter}",
        params,
        prepare=False,
    )
    # unqualified project_id: rollup_hourly has none, so in _FROM_MONITOR_HOURS it is the monitor's
    sql = _LOCATION_INSERT.format(table=table, source=source.format(project_filter=project_filter))
    await conn.execute(sql, params, prepare=False)


async def roll_location_hours(
    conn: AsyncConnection, lo: datetime, hi: datetime, project_ids: list[uuid.UUID] | None = None
) -> None:
    """The final location hours of [lo, hi) from the per-monitor hourly rows (written first)."""
    await _write_location_tier(conn, "rollup_location_hourly", _FROM_MONITOR_HOURS, lo, hi, project_ids)


async def roll_location_days(
    conn: AsyncConnection, lo: datetime, hi: datetime, project_ids: list[uuid.UUID] | None = None
) -> None:
    """The location days of [lo, hi) from the per-monitor daily rows (written first)."""
    await _write_location_tier(conn, "rollup_location_daily", _FROM_MONITOR_DAYS, lo, hi, project_ids)


async def roll_provisional_hours(conn: AsyncConnection, hourly_through: datetime, now: datetime) -> None:
    """Every location hour from the hourly watermark on, rewritten from raw results up to `now` (the current hour
    partial), and the mark saying how far they reach. The next final roll of an hour replaces its row."""
    await conn.execute(
        "delete from rollup_location_hourly where bucket >= %s", (hourly_through,), prepare=False
    )
    sql = _LOCATION_INSERT.format(table="rollup_location_hourly", source=_FROM_RAW.format())
    await conn.execute(sql, _params(hourly_through, now), prepare=False)
    # Not set_mark: the mark describes the rows just written, even when a test's clock goes back.
    await conn.execute(
        """insert into retention_marks (name, at) values (%s, %s)
           on conflict (name) do update set at = excluded.at, updated_at = now()""",
        (PROVISIONAL_MARK, now),
    )


async def _earliest_result(conn: AsyncConnection) -> datetime | None:
    row = await (
        await conn.execute(
            """select min(first.checked_at) as at from monitors m cross join lateral (
                   select checked_at from monitor_results x where x.monitor_id = m.id
                   order by checked_at limit 1) first"""
        )
    ).fetchone()
    return row["at"]


def _config_for_rollups() -> RetentionConfig:
    """The aggregate sweep calls rollup_step every minute: a bad MONITOR_* variable (cleanup's to report) must
    not stop its deadline sweep, so the defaults apply and the error is logged."""
    try:
        return RetentionConfig.from_variables(get_settings().monitor_variables)
    except ValueError as error:
        log.warning("rollups use the default settings: %s", error)
        return RetentionConfig()


async def rollup_step(
    now: datetime | None = None,
    max_hours: int = 2,
    max_days: int = 2,
    wait: bool = False,
    config: RetentionConfig | None = None,
    provisional: bool = True,
) -> RollupProgress:
    """One small incremental step: up to `max_hours` settled hours into the hourly tiers, then up to `max_days`
    complete days into the daily tiers, in one transaction; then, with `provisional` and the hourly tier near
    now, the provisional location hours from its watermark to now. Safe to call from any number of places at once:
    without `wait` it returns busy=True while another step runs (the aggregate sweep can call it every minute)."""
    config = config or _config_for_rollups()
    now = now or datetime.now(UTC)
    target_hour = settled_hour(now, config.rollup_settle_minutes)
    async with db.transaction() as conn:
        lock = "pg_advisory_xact_lock" if wait else "pg_try_advisory_xact_lock"
        acquired = (await (await conn.execute(f"select {lock}(%s) as ok", (ROLLUP_LOCK,))).fetchone())["ok"]
        if acquired is False:
            return RollupProgress(busy=True)
        marks = await read_marks(conn)
        progress = RollupProgress()
        hourly = marks.get(HOURLY_MARK)
        if hourly is None:
            earliest = await _earliest_result(conn)
            hourly = floor_hour(earliest) if earliest else target_hour
            await set_mark(conn, HOURLY_MARK, hourly)
        daily = marks.get(DAILY_MARK)
        if daily is None:
            daily = floor_day(hourly)
            await set_mark(conn, DAILY_MARK, daily)
        hourly_end = next_window(hourly, target_hour, HOUR, max_hours)
        if hourly_end is not None:
            await roll_hours(conn, hourly, hourly_end)
            await roll_location_hours(conn, hourly, hourly_end)
            await set_mark(conn, HOURLY_MARK, hourly_end)
            progress.hours_rolled = (hourly_end - hourly) // HOUR
            hourly = hourly_end
        daily_end = next_window(daily, floor_day(hourly), DAY, max_days)
        if daily_end is not None:
            await roll_days(conn, daily, daily_end)
            await roll_location_days(conn, daily, daily_end)
            await set_mark(conn, DAILY_MARK, daily_end)
            progress.days_rolled = (daily_end - daily) // DAY
            daily = daily_end
        if provisional and provisional_due(now, hourly, config.rollup_settle_minutes):
            await roll_provisional_hours(conn, hourly, now)
        progress.hourly_through, progress.daily_through = hourly, daily
        return progress


async def catch_up(now: datetime | None = None, config: RetentionConfig | None = None) -> RollupProgress:
    """Steps until every settled hour and complete day is rolled up (cleanup runs this before deleting).
    Each step commits, so a run cut short keeps its progress."""
    config = config or RetentionConfig.from_variables(get_settings().monitor_variables)
    now = now or datetime.now(UTC)
    total = RollupProgress()
    while True:
        # cleanup needs no provisional hours; the aggregate sweep's next step writes them
        step = await rollup_step(now, max_hours=24, max_days=31, wait=True, config=config, provisional=False)
        total.add(step)
        if step.hours_rolled == 0 and step.days_rolled == 0:
            return total


async def reconcile(lo: datetime | None, hi: datetime) -> int:
    """Before raw rows in [lo, hi) are deleted: re-roll any hour whose raw count differs from its rollup (a result
    stored after its hour was rolled up), and the days above it. Returns how many hours were re-rolled."""
    lo = lo or datetime(1970, 1, 1, tzinfo=UTC)
    async with db.transaction() as conn:
        await conn.execute("select pg_advisory_xact_lock(%s)", (ROLLUP_LOCK,))
        stale = await (await conn.execute(_UNRECONCILED_HOURS, _params(lo, hi), prepare=False)).fetchall()
        marks = await read_marks(conn)
        daily_through = marks.get(DAILY_MARK)
        projects_by_hour: dict[datetime, set[uuid.UUID]] = {}
        for row in stale:
            await roll_hours(conn, row["bucket"], row["bucket"] + HOUR, [row["monitor_id"]])
            projects_by_hour.setdefault(row["bucket"], set()).add(row["project_id"])
            day = floor_day(row["bucket"])
            if daily_through is not None and day < daily_through:
                await roll_days(conn, day, day + DAY, [row["monitor_id"]])
        projects_by_day: dict[datetime, set[uuid.UUID]] = {}
        for hour, projects in projects_by_hour.items():
            await roll_location_hours(conn, hour, hour + HOUR, sorted(projects))
            if daily_through is not None and floor_day(hour) < daily_through:
                projects_by_day.setdefault(floor_day(hour), set()).update(projects)
        for day, projects in projects_by_day.items():
            await roll_location_days(conn, day, day + DAY, sorted(projects))
    return len(stale)


async def prune_hourly(
    before: datetime, batch_size: int, limit: int, location_before: datetime | None = None
) -> int:
    """The tiered part: hourly rows older than the hourly window go, once the daily tier holds their days; location
    hours before `location_before` too (a few rows per project and hour, in one statement)."""
    if location_before is not None:
        async with db.transaction() as conn:
            await conn.execute(
                """delete from rollup_location_hourly where bucket < %s and bucket < coalesce(
                       (select at from retention_marks where name = %s), '-infinity')""",
                (location_before, DAILY_MARK),
            )
    deleted = 0
    while size := next_batch_size(deleted, batch_size, limit):
        async with db.transaction() as conn:
            cursor = await conn.execute(
                """delete from rollup_hourly where (monitor_id, location, bucket) in (
                       select monitor_id, location, bucket from rollup_hourly
                       where bucket < %s and bucket < coalesce(
                           (select at from retention_marks where name = %s), '-infinity')
                       limit %s)""",
                (before, DAILY_MARK, size),
                prepare=False,
            )
        deleted += cursor.rowcount
        if cursor.rowcount < size:
            break
    return deleted
