"""Hourly and daily rollups of raw results, built in small steps behind watermarks: the aggregate function's sweep
steps them (rollup_step), cleanup catches up, reconciles and prunes them, shared.pipeline.long_range reads them.

Every rollup keeps the exact response-time histogram, so daily percentiles (and those of any longer window) are
the percentile_cont of the raw rows, not an approximation. Reads take daily rollups before the raw boundary
(`raw_complete_from`, where cleanup stopped deleting) and raw results from it on.
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
    settled_hour,
)
from shared.settings import get_settings

log = logging.getLogger("supercheck.rollups")
ROLLUP_LOCK = 7_340_008  # one rollup writer at a time: the aggregate sweep skips while cleanup catches up
HOURLY_MARK = "rollup_hourly_through"
DAILY_MARK = "rollup_daily_through"
RAW_MARK = "raw_complete_from"
UP_STATUSES = ("up", "degraded")  # as the results API counts them
PERCENTILES = (0.5, 0.95, 0.99)

# `{monitors}` is every monitor, or a chosen few when reconciling. The lateral per-monitor range scan uses the
# (monitor_id, checked_at) index; a plain range on checked_at would scan the whole table (it has no index).
_HOURLY_UPSERT = """
with raw as materialized (
    select r.monitor_id, r.location, date_bin('1 hour', r.checked_at, %(origin)s) as bucket,
           r.status = any(%(up)s) as is_up, r.response_time_ms as v
    from {monitors}
    cross join lateral (
        select x.monitor_id, x.location, x.checked_at, x.status, x.response_time_ms
        from monitor_results x
        where x.monitor_id = m.id and x.checked_at >= %(lo)s and x.checked_at < %(hi)s
    ) r
),
totals as (
    select monitor_id, location, bucket, count(*) as checks, count(*) filter (where is_up) as up_checks,
           count(v) as response_count, coalesce(sum(v), 0) as response_sum_ms, min(v) as min_ms, max(v) as max_ms,
           percentile_cont(%(fractions)s::float8[]) within group (order by v) as pcts
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
    response_values_ms, response_value_counts)
select t.monitor_id, t.location, t.bucket, t.checks, t.up_checks, t.response_count, t.response_sum_ms,
       t.min_ms, t.max_ms, t.pcts[1], t.pcts[2], t.pcts[3],
       coalesce(g.vals, '{{}}'), coalesce(g.cnts, '{{}}')
from totals t left join histograms g using (monitor_id, location, bucket)
on conflict (monitor_id, location, bucket) do update set
    checks = excluded.checks, up_checks = excluded.up_checks, response_count = excluded.response_count,
    response_sum_ms = excluded.response_sum_ms, min_response_ms = excluded.min_response_ms,
    max_response_ms = excluded.max_response_ms, p50_response_ms = excluded.p50_response_ms,
    p95_response_ms = excluded.p95_response_ms, p99_response_ms = excluded.p99_response_ms,
    response_values_ms = excluded.response_values_ms, response_value_counts = excluded.response_value_counts
"""

# A day from its 24 hourly rows: sums, and percentile_cont over the merged histograms expanded back into values,
# which is the same multiset the raw rows held.
_DAILY_UPSERT = """
with hours as materialized (
    select monitor_id, location, date_bin('1 day', bucket, %(origin)s) as bucket, checks, up_checks,
           response_count, response_sum_ms, min_response_ms, max_response_ms,
           response_values_ms, response_value_counts
    from rollup_hourly
    where bucket >= %(lo)s and bucket < %(hi)s {monitor_filter}
),
totals as (
    select monitor_id, location, bucket, sum(checks)::int as checks, sum(up_checks)::int as up_checks,
           sum(response_count)::int as response_count, sum(response_sum_ms)::bigint as response_sum_ms,
           min(min_response_ms) as min_ms, max(max_response_ms) as max_ms
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
    response_values_ms, response_value_counts)
select t.monitor_id, t.location, t.bucket, t.checks, t.up_checks, t.response_count, t.response_sum_ms,
       t.min_ms, t.max_ms, p.pcts[1], p.pcts[2], p.pcts[3],
       coalesce(g.vals, '{{}}'), coalesce(g.cnts, '{{}}')
from totals t
left join histograms g using (monitor_id, location, bucket)
left join percentiles p using (monitor_id, location, bucket)
on conflict (monitor_id, location, bucket) do update set
    checks = excluded.checks, up_checks = excluded.up_checks, response_count = excluded.response_count,
    response_sum_ms = excluded.response_sum_ms, min_response_ms = excluded.min_response_ms,
    max_response_ms = excluded.max_response_ms, p50_response_ms = excluded.p50_response_ms,
    p95_response_ms = excluded.p95_response_ms, p99_response_ms = excluded.p99_response_ms,
    response_values_ms = excluded.response_values_ms, response_value_counts = excluded.response_value_counts
"""

# Hours whose raw row count differs from their hourly rollup: a result stored after its hour was rolled up.
_UNRECONCILED_HOURS = """
select m.id as monitor_id, r.bucket
from monitors m
cross join lateral (
    select x.location, date_bin('1 hour', x.checked_at, %(origin)s) as bucket, count(*) as n
    from monitor_results x
    where x.monitor_id = m.id and x.checked_at >= %(lo)s and x.checked_at < %(hi)s
    group by x.location, bucket
) r
left join rollup_hourly h on h.monitor_id = m.id and h.location = r.location and h.bucket = r.bucket
where h.checks is distinct from r.n
group by m.id, r.bucket
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
) -> RollupProgress:
    """One small incremental step: up to `max_hours` settled hours into the hourly tier, then up to `max_days`
    complete days into the daily tier, in one transaction. Safe to call from any number of places at once:
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
            await set_mark(conn, HOURLY_MARK, hourly_end)
            progress.hours_rolled = (hourly_end - hourly) // HOUR
            hourly = hourly_end
        daily_end = next_window(daily, floor_day(hourly), DAY, max_days)
        if daily_end is not None:
            await roll_days(conn, daily, daily_end)
            await set_mark(conn, DAILY_MARK, daily_end)
            progress.days_rolled = (daily_end - daily) // DAY
            daily = daily_end
        progress.hourly_through, progress.daily_through = hourly, daily
        return progress


async def catch_up(now: datetime | None = None, config: RetentionConfig | None = None) -> RollupProgress:
    """Steps until every settled hour and complete day is rolled up (cleanup runs this before deleting).
    Each step commits, so a run cut short keeps its progress."""
    config = config or RetentionConfig.from_variables(get_settings().monitor_variables)
    now = now or datetime.now(UTC)
    total = RollupProgress()
    while True:
        step = await rollup_step(now, max_hours=24, max_days=31, wait=True, config=config)
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
        for row in stale:
            await roll_hours(conn, row["bucket"], row["bucket"] + HOUR, [row["monitor_id"]])
            day = floor_day(row["bucket"])
            if daily_through is not None and day < daily_through:
                await roll_days(conn, day, day + DAY, [row["monitor_id"]])
    return len(stale)


async def prune_hourly(before: datetime, batch_size: int, limit: int) -> int:
    """The tiered part: hourly rows older than the hourly window go, once the daily tier holds their days."""
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
