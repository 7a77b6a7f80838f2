"""Rollups against the raw data they came from: exact percentiles, incremental steps, and long-range reads that
give the raw figures after the raw rows are gone."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

import pytest

from shared.api.services import results
from shared.api.services.regions import regions_report
from shared.pipeline import long_range, rollups
from shared.pipeline.cleanup import run_cleanup
from shared.rules.retention import RetentionConfig, floor_day, floor_hour, percentile_cont
from shared.settings import reset_settings_cache
from tests.factories import CUTOFF, NOW, seed_year

FRACTIONS = [0.0, 0.25, 0.5, 0.95, 0.99, 1.0]
_rng = random.Random(8)
MULTISETS = [
    [7],
    [1, 2],
    [1, 1, 1, 100],
    [5, 5, 5, 5],
    [3, 1, 2, 9, 9, 40, 7],
    [_rng.randint(1, 3000) for _ in range(997)],
    [_rng.choice([20, 21, 22, 500, 30_000]) for _ in range(1440)],
]


@pytest.mark.parametrize("values", MULTISETS, ids=lambda values: f"{len(values)}-values")
def test_percentiles_from_a_histogram_equal_postgres_percentile_cont_over_the_values(infra, values):
    (expected,) = infra.sql(
        "select percentile_cont(%s::float8[]) within group (order by v) from unnest(%s::int[]) v",
        (FRACTIONS, values),
    )[0]
    histogram = {}
    for value in values:
        histogram[value] = histogram.get(value, 0) + 1
    assert [percentile_cont(histogram.items(), f) for f in FRACTIONS] == expected


def test_an_empty_histogram_has_no_percentile():
    assert percentile_cont([], 0.5) is None and percentile_cont([(10, 0)], 0.5) is None


_RAW_BUCKETS = """
select monitor_id, location, date_bin(%(width)s::interval, checked_at, %(origin)s) as bucket, count(*) as checks,
       count(*) filter (where status in ('up', 'degraded')) as up_checks, count(response_time_ms),
       coalesce(sum(response_time_ms), 0), min(response_time_ms), max(response_time_ms),
       percentile_cont(array[0.5, 0.95, 0.99]) within group (order by response_time_ms)
from monitor_results where checked_at < %(through)s
group by 1, 2, 3 order by 1, 2, 3
"""

_ROLLUP_BUCKETS = """
select monitor_id, location, bucket, checks, up_checks, response_count, response_sum_ms, min_response_ms,
       max_response_ms, array[p50_response_ms, p95_response_ms, p99_response_ms]
from rollup_{tier} where bucket < %(through)s order by 1, 2, 3
"""


def raw_buckets(infra, width: str, through) -> list[tuple]:
    rows = infra.sql(_RAW_BUCKETS, {"width": width, "origin": rollups.UTC_ORIGIN, "through": through})
    # percentile_cont over no values is null; the rollup stores the three as null too
    return [(*row[:9], row[9] if row[9] is not None else [None, None, None]) for row in rows]


def rollup_buckets(infra, tier: str, through) -> list[tuple]:
    return infra.sql(_ROLLUP_BUCKETS.format(tier=tier), {"through": through})


def test_hourly_and_daily_rollups_equal_the_raw_aggregates_percentiles_included(clean, aio):
    seed_year(clean, monitors=2)
    progress = aio.run(rollups.catch_up(NOW, RetentionConfig()))
    assert progress.hourly_through == floor_hour(NOW - timedelta(minutes=15))
    assert progress.daily_through == floor_day(NOW)
    hourly = rollup_buckets(clean, "hourly", progress.hourly_through)
    assert len(hourly) > 20_000
    assert hourly == raw_buckets(clean, "1 hour", progress.hourly_through)
    daily = rollup_buckets(clean, "daily", progress.daily_through)
    assert len(daily) == 2 * 3 * 365
    assert daily == raw_buckets(clean, "1 day", progress.daily_through)
    uptime = clean.sql(
        "select count(*) from rollup_daily where uptime_percentage <> 100.0 * up_checks / checks"
    )
    assert uptime == [(0,)]


def test_small_steps_build_the_same_rollups_and_skip_unsettled_hours(clean, aio):
    seed_year(clean, monitors=1, step="20 minutes", days=4)
    config = RetentionConfig(rollup_settle_minutes=15)
    steps = 0
    while True:
        step = aio.run(rollups.rollup_step(NOW, max_hours=3, max_days=1, config=config))
        steps += 1
        if step.hours_rolled == 0 and step.days_rolled == 0:
            break
        assert step.hours_rolled <= 3 and step.days_rolled <= 1
    assert steps > 30
    assert step.hourly_through == floor_hour(NOW) - timedelta(
        hours=1
    )  # 01:00-02:00 has not settled at 02:00:07
    stepped = rollup_buckets(clean, "hourly", NOW) + rollup_buckets(clean, "daily", NOW)
    assert stepped == raw_buckets(clean, "1 hour", step.hourly_through) + raw_buckets(
        clean, "1 day", step.daily_through
    )
    # Running every step again (as after a crash between commit and mark) changes nothing.
    clean.sql("delete from retention_marks")
    aio.run(rollups.catch_up(NOW, config))
    assert rollup_buckets(clean, "hourly", NOW) + rollup_buckets(clean, "daily", NOW) == stepped


_RAW_LOCATION_STATS = """
select location, count(*), count(*) filter (where status in ('up', 'degraded')), avg(response_time_ms)::float,
       min(response_time_ms)::float, max(response_time_ms)::float,
       percentile_cont(array[0.5, 0.95, 0.99]) within group (order by response_time_ms)
from monitor_results where monitor_id = %s and checked_at >= %s
group by location order by location
"""

_RAW_DAILY_UPTIME = """
select date_bin('1 day', checked_at, %s)::date, count(*), count(*) filter (where status in ('up', 'degraded'))
from monitor_results where monitor_id = %s and checked_at >= %s group by 1 order by 1
"""


def stat_tuple(stat) -> tuple:
    return (
        stat.location,
        stat.total_checks,
        stat.up_checks,
        pytest.approx(stat.avg_response_time, rel=1e-12),
        stat.min_response_time,
        stat.max_response_time,
        [stat.p50_response_time, stat.p95_response_time, stat.p99_response_time],
    )


def test_long_range_stats_after_cleanup_equal_what_the_raw_data_gave(clean, aio):
    monitor_id, _ = seed_year(clean, monitors=2)
    windows = {
        7: NOW - timedelta(days=7),  # inside the raw window: from exactly 7 days back
        90: floor_day(NOW - timedelta(days=90)),  # beyond it: from the start of that UTC day
        365: floor_day(NOW - timedelta(days=365)),
    }
    expected_stats = {
        days: clean.sql(_RAW_LOCATION_STATS, (monitor_id, since)) for days, since in windows.items()
    }
    expected_uptime = {
        days: clean.sql(_RAW_DAILY_UPTIME, (rollups.UTC_ORIGIN, monitor_id, since))
        for days, since in windows.items()
    }
    before_cleanup = aio.run(long_range.location_stats(monitor_id, 7, now=NOW))

    report = aio.run(run_cleanup(dry_run=False, now=NOW, config=RetentionConfig()))
    assert report.results_deleted > 50_000 and report.rollups.hourly_pruned > 0
    assert clean.sql("select min(bucket) from rollup_hourly")[0][0] >= floor_day(NOW - timedelta(days=90))

    for days, since in windows.items():
        stats = aio.run(long_range.location_stats(monitor_id, days, now=NOW))
        assert stats.since == since and stats.raw_from == (since if days == 7 else CUTOFF)
        assert [stat_tuple(stat) for stat in stats.data] == expected_stats[days], f"{days} days"
        uptime = aio.run(long_range.uptime(monitor_id, days, now=NOW))
        assert [(d.day, d.checks, d.up_checks) for d in uptime.days] == expected_uptime[days], f"{days} days"
        total = sum(row[1] for row in expected_uptime[days])
        up = sum(row[2] for row in expected_uptime[days])
        assert (uptime.checks, uptime.up_checks) == (total, up)
        assert uptime.uptime_percentage == pytest.approx(100.0 * up / total, rel=1e-12)
    assert aio.run(long_range.location_stats(monitor_id, 7, now=NOW)) == before_cleanup


def test_inside_the_raw_window_the_figures_are_the_results_apis(clean, aio):
    monitor_id, _ = seed_year(clean, monitors=2, step="20 minutes", days=20)
    project_id = clean.sql("select project_id from monitors where id = %s", (monitor_id,))[0][0]
    api = aio.run(results.location_stats(project_id, monitor_id, 14, now=NOW))
    ours = aio.run(long_range.location_stats(monitor_id, 14, now=NOW))
    assert [
        (
            s.location,
            s.total_checks,
            s.up_checks,
            s.uptime_percentage,
            s.avg_response_time,
            s.p95_response_time,
        )
        for s in api.data
    ] == [
        (
            s.location,
            s.total_checks,
            s.up_checks,
            round(s.uptime_percentage, 3),
            round(s.avg_response_time, 2),
            round(s.p95_response_time, 2),
        )
        for s in ours.data
    ]


def test_the_sweep_step_works_on_defaults_when_a_cleanup_variable_is_bad(clean, aio, monkeypatch):
    seed_year(clean, monitors=1, step="30 minutes", days=2)
    monkeypatch.setenv("MONITOR_RETENTION_DAYS", "a month")
    reset_settings_cache()
    step = aio.run(rollups.rollup_step(NOW))  # what the aggregate cron sweep calls, every minute
    assert not step.busy and step.hours_rolled == 2 and step.days_rolled == 0


# --- the per-project-per-location tier and the timing phases, against the raw rows ---------------------------

# Two projects (two monitors and one), every 7 minutes in three locations for 3 days up to NOW; timeouts carry no
# response time and no phases, plain-HTTP-like checks (one in four) no TLS phase.
_SEED_PHASES = """
with p as (
    insert into projects (name) values ('tier A'), ('tier B') returning id, name
),
m as (
    insert into monitors (project_id, name, type, target, frequency_minutes, status)
    select p.id, p.name || ' ' || i, 'http_request', 'http://127.0.0.1:9/', 5, 'up'
    from p cross join generate_series(1, case when p.name = 'tier A' then 2 else 1 end) i
    returning id
),
r as (
    insert into runs (monitor_id, scheduled_at, expected_locations, deadline, finalized_at, status)
    select m.id, t, %(locations)s, t + interval '1 minute', t + interval '1 minute', 'up'
    from m, generate_series(%(start)s::timestamptz, %(end)s::timestamptz, interval '7 minutes') t
    returning id, monitor_id, scheduled_at
)
insert into monitor_results (run_id, monitor_id, location, status, checked_at, response_time_ms,
                             dns_ms, connect_ms, tls_ms, first_byte_ms)
select r.id, r.monitor_id, loc, s.status, r.scheduled_at + make_interval(secs => 1 + h %% 50),
       case when s.status = 'timeout' then null else 20 + h %% 480 end,
       case when s.status <> 'timeout' then (h %% 97) / 7.0 end,
       case when s.status <> 'timeout' then (h %% 89) / 3.0 end,
       case when s.status <> 'timeout' and h %% 4 <> 0 then (h %% 83) / 1.7 end,
       case when s.status <> 'timeout' then (h %% 331) / 1.3 end
from r
cross join unnest(%(locations)s::text[]) as loc
cross join lateral (select abs(hashtext(r.id::text || loc)) as h) hashes
cross join lateral (
    select case when h %% 100 < 3 then 'timeout' when h %% 100 < 8 then 'down' when h %% 100 < 12 then 'degraded'
                else 'up' end as status
) s
"""

# The raw rows per project, location and bucket as the location tier holds them: totals and the histogram.
_RAW_LOCATION_BUCKETS = """
with raw as (
    select m.project_id, x.location, date_bin(%(width)s::interval, x.checked_at, %(origin)s) as bucket, x.status,
           x.response_time_ms as v
    from monitor_results x join monitors m on m.id = x.monitor_id
    where x.checked_at >= %(lo)s and x.checked_at < %(hi)s
)
select t.project_id, t.location, t.bucket, t.checks, t.up_checks, t.response_count, t.response_sum_ms,
       coalesce(h.vals, '{}'), coalesce(h.cnts, '{}')
from (select project_id, location, bucket, count(*) as checks,
             count(*) filter (where status in ('up', 'degraded')) as up_checks, count(v) as response_count,
             coalesce(sum(v), 0) as response_sum_ms
      from raw group by 1, 2, 3) t
left join (select project_id, location, bucket, array_agg(v order by v) as vals, array_agg(c order by v) as cnts
           from (select project_id, location, bucket, v, count(*) as c from raw where v is not null
                 group by 1, 2, 3, 4) per_value
           group by 1, 2, 3) h using (project_id, location, bucket)
order by 1, 2, 3
"""

_LOCATION_TIER = """
select project_id, location, bucket, checks, up_checks, response_count, response_sum_ms, response_values_ms,
       response_value_counts
from rollup_location_{tier} where bucket >= %(lo)s and bucket < %(hi)s order by 1, 2, 3
"""

# Each phase's mean per monitor, location and bucket, as PostgreSQL's avg gives it over the raw rows, and as the
# per-monitor tier's sum over count gives it.
_RAW_PHASE_MEANS = """
select monitor_id, location, date_bin(%(width)s::interval, checked_at, %(origin)s) as bucket,
       avg(dns_ms), avg(connect_ms), avg(tls_ms), avg(first_byte_ms),
       count(dns_ms), count(connect_ms), count(tls_ms), count(first_byte_ms)
from monitor_results where checked_at >= %(lo)s and checked_at < %(hi)s group by 1, 2, 3 order by 1, 2, 3
"""

_ROLLUP_PHASE_MEANS = """
select monitor_id, location, bucket,
       dns_sum_ms / nullif(dns_count, 0), connect_sum_ms / nullif(connect_count, 0),
       tls_sum_ms / nullif(tls_count, 0), first_byte_sum_ms / nullif(first_byte_count, 0),
       dns_count, connect_count, tls_count, first_byte_count
from rollup_{tier} where bucket >= %(lo)s and bucket < %(hi)s order by 1, 2, 3
"""


def seed_phases(infra, days: int = 3) -> dict[str, object]:
    infra.sql(
        _SEED_PHASES,
        {
            "locations": ["us-east", "eu-central", "asia-pacific"],
            "start": floor_day(NOW - timedelta(days=days)) + timedelta(minutes=3),
            "end": NOW - timedelta(minutes=1),
        },
    )
    infra.sql("analyze monitor_results")
    return dict(infra.sql("select name, id from projects where name like 'tier %'"))


def raw_location_buckets(infra, width: str, lo, hi) -> list[tuple]:
    params = {"width": width, "origin": rollups.UTC_ORIGIN, "lo": lo, "hi": hi}
    return infra.sql(_RAW_LOCATION_BUCKETS, params)


def location_tier(infra, tier: str, lo, hi) -> list[tuple]:
    return infra.sql(_LOCATION_TIER.format(tier=tier), {"lo": lo, "hi": hi})


def phase_means(infra, sql: str, width: str, lo, hi) -> list[tuple]:
    rows = infra.sql(sql, {"width": width, "origin": rollups.UTC_ORIGIN, "lo": lo, "hi": hi})
    return [
        (*row[:3], *(None if mean is None else pytest.approx(mean, rel=1e-12) for mean in row[3:7]), *row[7:])
        for row in rows
    ]


def every_tier(infra) -> list[list[tuple]]:
    return [
        infra.sql(f"select * from {table} order by 1, 2, 3")
        for table in ("rollup_hourly", "rollup_daily", "rollup_location_hourly", "rollup_location_daily")
    ]


def test_the_location_tier_and_the_phases_equal_the_raw_rows_across_the_watermark_and_on_a_rerun(clean, aio):
    projects = seed_phases(clean)
    config = RetentionConfig()
    aio.run(rollups.catch_up(NOW, config))
    step = aio.run(rollups.rollup_step(NOW, config=config))  # the sweep's step: the provisional hours
    hourly_through, daily_through = step.hourly_through, step.daily_through
    assert hourly_through == floor_hour(NOW) - timedelta(hours=1) and daily_through == floor_day(NOW)
    start = floor_day(NOW - timedelta(days=3))

    # final hours before the watermark, provisional ones (01:00, not settled at 02:00:07) from it to NOW: both as
    # the raw rows give them, none counted twice
    hours = location_tier(clean, "hourly", start, NOW)
    assert hours == raw_location_buckets(clean, "1 hour", start, NOW)
    assert {row[2] for row in hours if row[2] >= hourly_through} == {hourly_through}
    assert location_tier(clean, "daily", start, daily_through) == raw_location_buckets(
        clean, "1 day", start, daily_through
    )
    assert clean.sql("select at from retention_marks where name = %s", (rollups.PROVISIONAL_MARK,)) == [
        (NOW,)
    ]

    # phases: each tier's sum over count is PostgreSQL's avg over the raw rows, and its counts are theirs
    for tier, width, hi in (("hourly", "1 hour", hourly_through), ("daily", "1 day", daily_through)):
        assert phase_means(clean, _ROLLUP_PHASE_MEANS.format(tier=tier), width, start, hi) == phase_means(
            clean, _RAW_PHASE_MEANS, width, start, hi
        ), tier

    # the regions figures over 48 hours (whole days from the daily tier, the ends by the hour) are the raw rows'
    since = floor_hour(NOW - timedelta(hours=48))
    ((checks, up_checks, average, p95),) = clean.sql(
        """select count(*), count(*) filter (where x.status in ('up', 'degraded')), avg(x.response_time_ms)::float,
                  percentile_cont(0.95) within group (order by x.response_time_ms)
           from monitor_results x join monitors m on m.id = x.monitor_id
           where m.project_id = %s and x.location = 'eu-central' and x.checked_at >= %s and x.checked_at < %s""",
        (projects["tier A"], since, NOW),
    )
    report = aio.run(regions_report(projects["tier A"], 48, now=NOW))
    eu = {region.location: region for region in report.data}["eu-central"]
    assert (report.since, report.rolled_until, report.provisional_until) == (since, hourly_through, NOW)
    assert (eu.checks, eu.up_checks) == (checks, up_checks)
    assert (eu.avg_response_ms, eu.p95_response_ms) == (round(average, 2), round(p95, 2))

    # every step run again (as after a crash between commit and mark) rewrites every tier exactly
    written = every_tier(clean)
    clean.sql("delete from retention_marks")
    aio.run(rollups.catch_up(NOW, config))
    aio.run(rollups.rollup_step(NOW, config=config))
    assert every_tier(clean) == written


def test_a_late_result_reconciled_by_cleanup_is_in_the_location_tier_and_the_phases(clean, aio):
    projects = seed_phases(clean, days=40)
    config = RetentionConfig()
    aio.run(rollups.catch_up(NOW, config))
    late_hour = floor_day(NOW - timedelta(days=35)) + timedelta(hours=6)
    monitor_id = clean.sql("select id from monitors where project_id = %s limit 1", (projects["tier B"],))[0][
        0
    ]
    run_id = clean.sql(
        """insert into runs (monitor_id, scheduled_at, expected_locations, deadline)
           values (%s, %s, '{us-east}', %s) returning id""",
        (monitor_id, late_hour + timedelta(minutes=4), late_hour + timedelta(minutes=5)),
    )[0][0]
    clean.sql(
        """insert into monitor_results (run_id, monitor_id, location, status, checked_at, response_time_ms,
                                        dns_ms, connect_ms, tls_ms, first_byte_ms)
           values (%s, %s, 'us-east', 'down', %s, 12345, 100, 200, null, 400)""",
        (run_id, monitor_id, late_hour + timedelta(minutes=4)),
    )
    day = floor_day(late_hour)
    expected_hours = raw_location_buckets(clean, "1 hour", day, day + timedelta(days=1))
    expected_day = raw_location_buckets(clean, "1 day", day, day + timedelta(days=1))
    expected_phases = {
        (tier, width): phase_means(clean, _RAW_PHASE_MEANS, width, day, day + timedelta(days=1))
        for tier, width in (("hourly", "1 hour"), ("daily", "1 day"))
    }
    assert (
        location_tier(clean, "hourly", day, day + timedelta(days=1)) != expected_hours
    )  # stale before cleanup

    report = aio.run(run_cleanup(dry_run=False, now=NOW, config=config))
    assert report.rollups.hours_reconciled == 1
    assert clean.sql("select count(*) from monitor_results where run_id = %s", (run_id,)) == [(0,)]
    assert location_tier(clean, "hourly", day, day + timedelta(days=1)) == expected_hours
    assert location_tier(clean, "daily", day, day + timedelta(days=1)) == expected_day
    for (tier, width), expected in expected_phases.items():
        sql = _ROLLUP_PHASE_MEANS.format(tier=tier)
        assert phase_means(clean, sql, width, day, day + timedelta(days=1)) == expected, tier


def test_provisional_hours_follow_new_results_and_give_way_to_the_final_hour(clean, aio):
    projects = seed_phases(clean, days=1)
    config = RetentionConfig()
    aio.run(rollups.catch_up(NOW, config))
    aio.run(rollups.rollup_step(NOW, config=config))
    monitor_id = clean.sql("select id from monitors where project_id = %s", (projects["tier B"],))[0][0]
    run_id = clean.sql(
        """insert into runs (monitor_id, scheduled_at, expected_locations, deadline)
           values (%s, %s, '{us-east}', %s) returning id""",
        (monitor_id, NOW + timedelta(minutes=3), NOW + timedelta(minutes=4)),
    )[0][0]
    clean.sql(
        """insert into monitor_results (run_id, monitor_id, location, status, checked_at, response_time_ms)
           values (%s, %s, 'us-east', 'up', %s, 77)""",
        (run_id, monitor_id, NOW + timedelta(minutes=3)),
    )
    start, later = floor_day(NOW - timedelta(days=1)), NOW + timedelta(minutes=10)
    # ten minutes on, the hourly tier has not moved: the new result is in a provisional 02:00 hour
    step = aio.run(rollups.rollup_step(later, config=config))
    assert step.hours_rolled == 0
    assert location_tier(clean, "hourly", start, later) == raw_location_buckets(clean, "1 hour", start, later)
    assert floor_hour(NOW) in {row[2] for row in location_tier(clean, "hourly", start, later)}
    # once 01:00 has settled it is rolled for good, from the per-monitor hours, and equals the raw rows still
    settled = NOW + timedelta(minutes=20)
    step = aio.run(rollups.rollup_step(settled, config=config))
    assert step.hours_rolled == 1 and step.hourly_through == floor_hour(NOW)
    assert location_tier(clean, "hourly", start, settled) == raw_location_buckets(
        clean, "1 hour", start, settled
    )


MIGRATION_0012 = Path(rollups.__file__).parents[1] / "migrations" / "0012_location_rollups_and_phases.sql"


def test_migration_0012_backfills_phases_where_raw_rows_remain_and_the_location_tier_from_the_rollups(
    clean, aio
):
    seed_phases(clean, days=3)
    config = RetentionConfig()
    aio.run(rollups.catch_up(NOW, config))
    start, raw_from = floor_day(NOW - timedelta(days=3)), floor_day(NOW) - timedelta(days=1)
    location_tiers = [location_tier(clean, tier, start, NOW) for tier in ("hourly", "daily")]
    phases = {
        tier: phase_means(clean, _ROLLUP_PHASE_MEANS.format(tier=tier), width, start, NOW)
        for tier, width in (("hourly", "1 hour"), ("daily", "1 day"))
    }
    # the rows as they stood before 0012: no phases, no location tier; and cleanup had deleted raw rows before a day
    columns = ", ".join(f"{phase}_count = null, {phase}_sum_ms = null" for phase in rollups.PHASES)
    for tier in ("hourly", "daily"):
        clean.sql(f"update rollup_{tier} set {columns}")
        clean.sql(f"delete from rollup_location_{tier}")
    clean.sql("delete from monitor_results where checked_at < %s", (raw_from,))
    clean.sql("insert into retention_marks (name, at) values (%s, %s)", (rollups.RAW_MARK, raw_from))

    backfill = MIGRATION_0012.read_text().split("-- Backfill (", 1)[1].split("\n", 1)[1]
    clean.sql(backfill)

    assert [location_tier(clean, tier, start, NOW) for tier in ("hourly", "daily")] == location_tiers
    for tier, width in (("hourly", "1 hour"), ("daily", "1 day")):
        after = phase_means(clean, _ROLLUP_PHASE_MEANS.format(tier=tier), width, start, NOW)
        assert [row for row in after if row[2] >= raw_from] == [
            row for row in phases[tier] if row[2] >= raw_from
        ]
        older = [row for row in after if row[2] < raw_from]
        assert older and all(value is None for row in older for value in row[3:]), tier
