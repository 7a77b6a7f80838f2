"""Cleanup throughput on 10 million result rows and the database size before and after, as a ratio against a
plain single DELETE of the same rows in a copy of the same database, measured in the same run.

    .venv/bin/python bench/cleanup_throughput.py [--rows 10000000] [--monitors 6] [--days 365]

A year of results (1% of them status changes) is generated with INSERT ... SELECT generate_series, in time order
as checks would write them (monitors interleaved on the heap pages), the database is copied (CREATE DATABASE ... TEMPLATE), then:
  - cleanup: rollups caught up (hourly and daily, exact histograms), then the real cleanup run (reconciliation,
    batched deletes of 1,000 rows per transaction, old runs), safety limit raised to cover every row;
  - baseline, in the copy: one `DELETE FROM monitor_results WHERE checked_at < cutoff AND NOT is_status_change`,
    then one DELETE of the runs left without results: what a cleanup without batching or rollups would do, holding
    its locks and its transaction for the whole time.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg  # noqa: E402

from bench.harness import embedded_environment  # noqa: E402
from shared import db  # noqa: E402
from shared.pipeline import rollups
from shared.pipeline.cleanup import run_cleanup  # noqa: E402
from shared.rules.retention import RetentionConfig, results_cutoff  # noqa: E402

LOCATIONS = ["us-east", "eu-central", "asia-pacific"]
BASELINE_DB = "cleanup_baseline"


def seed(database_url: str, rows: int, monitors: int, days: int, now: datetime) -> None:
    runs_per_monitor = rows // (monitors * len(LOCATIONS))
    every = timedelta(days=days) / runs_per_monitor
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("set synchronous_commit = off")
        started = time.perf_counter()
        conn.execute(
            """insert into monitors (project_id, name, type, target, frequency_minutes, enabled)
               select (select id from projects where is_default), 'bench ' || g, 'http_request',
                      'https://example.invalid/', 1, false
               from generate_series(1, %s) g""",
            (monitors,),
        )
        conn.execute(
            """insert into runs (monitor_id, scheduled_at, expected_locations, deadline, finalized_at, status)
               select m.id, %s - g * %s::interval, %s, %s, %s, 'up'
               from monitors m, generate_series(1, %s) g
               order by g desc, m.id""",
            (now, every, LOCATIONS, now, now, runs_per_monitor),
        )
        conn.execute(
            """insert into monitor_results (run_id, monitor_id, location, status, checked_at, response_time_ms,
                                            is_status_change)
               select r.id, r.monitor_id, l.location, case when random() < 0.02 then 'down' else 'up' end,
                      r.scheduled_at + make_interval(secs => random() * 5), (20 + random() * 300)::int,
                      random() < 0.01
               from runs r cross join unnest(%s::text[]) as l(location)
               order by r.scheduled_at, r.monitor_id""",
            (LOCATIONS,),
        )
        conn.execute("vacuum analyze")
        total = conn.execute("select count(*) from monitor_results").fetchone()[0]
        print(
            f"seeded {total:,} result rows for {monitors} monitors over {days} days in {time.perf_counter() - started:.0f} s"
        )


def sizes(database_url: str) -> dict[str, int]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(
            """select pg_database_size(current_database()), pg_total_relation_size('monitor_results'),
                      pg_total_relation_size('runs'),
                      pg_total_relation_size('rollup_hourly') + pg_total_relation_size('rollup_daily')"""
        ).fetchone()
    return dict(zip(("database", "monitor_results", "runs", "rollups"), row, strict=True))


def mb(value: int) -> str:
    return f"{value / 2**20:,.0f} MB"


def show(label: str, measured: dict[str, int]) -> None:
    print(f"  {label:<34} " + ", ".join(f"{name} {mb(value)}" for name, value in measured.items()))


def copy_database(database_url: str) -> str:
    """CREATE DATABASE ... TEMPLATE needs the source to itself; connect to another database to run it."""
    source = database_url.rsplit("/", 1)[1]
    admin_url = database_url.rsplit("/", 1)[0] + "/template1"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"drop database if exists {BASELINE_DB}")
        for attempt in range(30):  # an autovacuum worker may be in the source for a moment
            try:
                conn.execute(f"create database {BASELINE_DB} template {source}")
                break
            except psycopg.errors.ObjectInUse:
                if attempt == 29:
                    raise
                time.sleep(1)
    return admin_url.rsplit("/", 1)[0] + f"/{BASELINE_DB}"


def baseline(database_url: str, cutoff: datetime) -> tuple[int, float, int, float]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        started = time.perf_counter()
        results = conn.execute(
            "delete from monitor_results where checked_at < %s and not is_status_change", (cutoff,)
        ).rowcount
        results_seconds = time.perf_counter() - started
        started = time.perf_counter()
        runs = conn.execute(
            """delete from runs r where r.scheduled_at < %s
                 and not exists (select 1 from monitor_results x where x.run_id = r.id)
                 and not exists (select 1 from status_changes s where s.run_id = r.id)""",
            (cutoff,),
        ).rowcount
        runs_seconds = time.perf_counter() - started
    return results, results_seconds, runs, runs_seconds


async def cleanup(now: datetime, config: RetentionConfig):
    started = time.perf_counter()
    progress = await rollups.catch_up(now, config)
    rollup_seconds = time.perf_counter() - started
    report = await run_cleanup(dry_run=False, now=now, config=config)
    # The steady state: the next day's run deletes the one day that has aged past the retention.
    next_day = await run_cleanup(dry_run=False, now=now + timedelta(days=1), config=config)
    await db.close_pool()
    return progress, rollup_seconds, report, next_day


def vacuum(database_url: str, full: bool) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        for table in ("monitor_results", "runs", "rollup_hourly", "rollup_daily"):
            conn.execute(f"vacuum {'full ' if full else ''}{table}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    # 6 monitors x 3 locations x one check a minute for a year is 9.5 million results: the seed's own assumption
    parser.add_argument("--monitors", type=int, default=6)
    parser.add_argument("--days", type=int, default=365)
    args = parser.parse_args()
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    config = RetentionConfig(safety_limit=args.rows * 2)  # one run covers the whole year for the figure
    cutoff = results_cutoff(now, config.retention_days)

    with embedded_environment("cleanup") as env:
        seed(env.database_url, args.rows, args.monitors, args.days, now)
        print("database size:")
        before = sizes(env.database_url)
        show("before", before)
        baseline_url = copy_database(env.database_url)

        progress, rollup_seconds, report, next_day = asyncio.run(cleanup(now, config))
        after = sizes(env.database_url)
        show("after cleanup", after)
        vacuum(env.database_url, full=False)
        show("after VACUUM (space reusable)", sizes(env.database_url))
        vacuum(env.database_url, full=True)
        show("after VACUUM FULL (space returned)", sizes(env.database_url))

        base_results, base_results_s, base_runs, base_runs_s = baseline(baseline_url, cutoff)

    phases = report.seconds
    delete_seconds = phases["results"]
    print(
        f"rollups caught up: {progress.hours_rolled:,} hours, {progress.days_rolled:,} days in {rollup_seconds:.1f} s "
        f"({(report.results_deleted + report.status_changes_kept) / rollup_seconds:,.0f} old rows/s rolled)"
    )
    print(f"cleanup phases (s): {phases}")
    print(
        f"cleanup: {report.results_deleted:,} results in {delete_seconds:.1f} s "
        f"= {report.results_deleted / delete_seconds:,.0f} rows/s (batches of {config.batch_size}); "
        f"{report.runs_deleted:,} runs in {phases.get('runs', 0):.1f} s; "
        f"{report.status_changes_kept:,} status changes kept; reconciliation {phases.get('reconcile', 0):.1f} s"
    )
    print(
        f"baseline single DELETE: {base_results:,} results in {base_results_s:.1f} s "
        f"= {base_results / base_results_s:,.0f} rows/s; {base_runs:,} runs in {base_runs_s:.1f} s"
    )
    assert base_results == report.results_deleted, "both deleted the same rows"
    print(
        f"next day's run: {next_day.results_deleted:,} results, {next_day.runs_deleted:,} runs "
        f"in {next_day.seconds['total']:.1f} s; phases (s): {next_day.seconds}"
    )
    whole = report.results_deleted / (rollup_seconds + phases["total"])
    print(f"whole cleanup incl. rollups and reconciliation: {whole:,.0f} result rows/s")
    print(
        f"ratio batched/single-DELETE results throughput: {(report.results_deleted / delete_seconds) / (base_results / base_results_s):.2f}"
    )


if __name__ == "__main__":
    main()
