"""Rollups against the raw data they came from: exact percentiles, incremental steps, and long-range reads that
give the raw figures after the raw rows are gone."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from shared.api.services import results
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
