"""Sustained pipeline: N monitors at a 1-minute frequency x 3 locations for D minutes, with everything on this
machine and the real cron emulator: schedule -> connector -> check-http -> persist -> aggregate.

Reports scheduling lag (due time -> check start) p50/p99, checks per second, missed runs and duplicate results,
and prints last the ratio of the pipeline's checks/s to the bare check engine's, measured in the same run.

    .venv/bin/python bench/sustained_pipeline.py --monitors 20000 --minutes 5
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
from bench.loopback_target import start_in_thread  # noqa: E402
from bench.pipeline_throughput import bare_engine_rate  # noqa: E402
from openfaas.local.runtime import LocalStack  # noqa: E402
from openfaas.local.services import free_port  # noqa: E402


def seed(database_url: str, target: str, monitors: int, first_due: datetime) -> None:
    """Due times spread evenly over the first minute, as monitors created over time would be."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        project = conn.execute("select id from projects where is_default").fetchone()[0]
        conn.execute(
            """insert into monitors (project_id, name, type, target, frequency_minutes, next_run_at, config)
               select %s, 'sustained ' || g, 'http_request', %s, 1,
                      %s + make_interval(secs => (g %% 60) + (g / 60 %% 100) / 100.0),
                      '{"timeoutSeconds": 10, "expectedStatusCodes": "200-299"}'
               from generate_series(0, %s - 1) g""",
            (project, target, first_due, monitors),
        )


def report(database_url: str, start: datetime, end: datetime, monitors: int) -> dict:
    with psycopg.connect(database_url, autocommit=True) as conn:
        lag = conn.execute(
            """select percentile_cont(0.5) within group (order by lag), percentile_cont(0.99) within group (order by lag),
                      count(*)
               from (select extract(epoch from m.checked_at - r.scheduled_at) as lag
                     from monitor_results m join runs r on r.id = m.run_id
                     where r.scheduled_at >= %s and r.scheduled_at < %s) l""",
            (start, end),
        ).fetchone()
        runs = conn.execute(
            "select count(*) from runs where scheduled_at >= %s and scheduled_at < %s", (start, end)
        ).fetchone()[0]
        expected = monitors * round((end - start).total_seconds() / 60)
        duplicates = conn.execute(
            """select (select count(*) - count(distinct (run_id, location)) from monitor_results)
                    + (select count(*) - count(distinct (monitor_id, scheduled_at)) from runs)"""
        ).fetchone()[0]
        unfinished = conn.execute(
            "select count(*) from runs where scheduled_at >= %s and scheduled_at < %s and finalized_at is null",
            (start, end),
        ).fetchone()[0]
    return {
        "lag_p50": lag[0],
        "lag_p99": lag[1],
        "checks": lag[2],
        "runs": runs,
        "expected_runs": expected,
        "missed": max(0, expected - runs),
        "duplicates": duplicates,
        "unfinished": unfinished,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--monitors", type=int, default=20_000)
    parser.add_argument("--minutes", type=int, default=5)
    args = parser.parse_args()
    with embedded_environment("sustained", ALLOW_INTERNAL_TARGETS="true") as env:
        target = start_in_thread()
        stack = LocalStack(
            env={"ALLOW_INTERNAL_TARGETS": "true", "CONNECTOR_BATCH_SIZE": "200"},
            log_dir=env.base / "logs",
            gateway_port=free_port(),
            with_cron=True,
        ).start()
        try:
            baseline = asyncio.run(bare_engine_rate(target, 3000))
            first_minute = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
            seed(env.database_url, target, args.monitors, first_minute)
            end = first_minute + timedelta(minutes=args.minutes)
            print(
                f"{args.monitors} monitors x 3 locations from {first_minute:%H:%M:%S} to {end:%H:%M:%S} UTC",
                flush=True,
            )
            time.sleep(
                max(0.0, (end - datetime.now(UTC)).total_seconds()) + 30
            )  # the last minute's runs finish
            figures = report(env.database_url, first_minute, end, args.monitors)
        finally:
            stack.stop()
    rate = figures["checks"] / (args.minutes * 60)
    print(f"bare check engine: {baseline:.0f} checks/s")
    print(
        f"scheduling lag (due -> check start): p50 {figures['lag_p50']:.3f} s, p99 {figures['lag_p99']:.3f} s"
    )
    print(
        f"runs {figures['runs']} of {figures['expected_runs']} due; missed {figures['missed']}; "
        f"unfinished {figures['unfinished']}; duplicate results {figures['duplicates']}"
    )
    print(f"pipeline: {rate:.0f} checks/s sustained")
    print(f"ratio pipeline/bare engine: {rate / baseline:.2f}")


if __name__ == "__main__":
    main()
