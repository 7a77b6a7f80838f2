"""GET /regions, /alerts, /monitors/{id}/alerts and /monitors/{id}/incidents latency (p50/p95, in-process api app,
so no gateway hop) at 10,000 monitors x 3 locations checked every minute: `--hours` of hourly rollups (60 checks,
40 distinct times each), `--days` of daily ones before them (100 distinct times), the not-yet-rolled raw tail
(`--tail-minutes`), alert history (20 deliveries a monitor) and status changes (20 a monitor).

    .venv/bin/python bench/history_reads.py [--monitors 10000] [--hours 24] [--days 0] [--tail-minutes 60]
                                            [--requests 20]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402
import psycopg  # noqa: E402

from bench.harness import embedded_environment  # noqa: E402

LOCATIONS = ["us-east", "eu-central", "asia-pacific"]


def seed(database_url: str, monitors: int, hours: int, tail_minutes: int, days: int, now: datetime) -> str:
    # the rollup watermark: the raw tail after it is what regions reads raw (15 to 75 minutes in production)
    mark = now.replace(second=0, microsecond=0) - timedelta(minutes=tail_minutes)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("set synchronous_commit = off")
        project = conn.execute("select id from projects where is_default").fetchone()[0]
        started = time.perf_counter()
        conn.execute(
            """insert into monitors (project_id, name, type, target, frequency_minutes, status)
               select %s, 'bench ' || g, 'http_request', 'https://example.invalid/', 1,
                      case when g %% 50 = 0 then 'down' else 'up' end
               from generate_series(1, %s) g""",
            (project, monitors),
        )
        # hourly rollups: 60 checks, 40 distinct whole-ms times (20 + 7k ms), one check in 60 down
        conn.execute(
            """insert into rollup_hourly (monitor_id, location, bucket, checks, up_checks, response_count,
                   response_sum_ms, min_response_ms, max_response_ms, p95_response_ms, response_values_ms,
                   response_value_counts)
               select m.id, l, %s - make_interval(hours => h), 60, 59, 60, 60 * 160, 20, 293, 286,
                      (select array_agg(20 + 7 * v order by v) from generate_series(0, 39) v),
                      array_fill(1, array[20]) || array_fill(2, array[20])
               from monitors m, unnest(%s::text[]) l, generate_series(1, %s) h""",
            (mark, LOCATIONS, hours),
        )
        conn.execute(
            """insert into retention_marks (name, at) values ('rollup_hourly_through', %s)
               on conflict (name) do update set at = excluded.at""",
            (mark,),
        )
        # daily rollups before the mark's day: 1,440 checks, 100 distinct times (20 + 3k ms)
        daily_through = mark.replace(hour=0, minute=0)
        conn.execute(
            """insert into rollup_daily (monitor_id, location, bucket, checks, up_checks, response_count,
                   response_sum_ms, min_response_ms, max_response_ms, p95_response_ms, response_values_ms,
                   response_value_counts)
               select m.id, l, %s - make_interval(days => d), 1440, 1430, 1440, 1440 * 170, 20, 317, 305,
                      (select array_agg(20 + 3 * v order by v) from generate_series(0, 99) v),
                      array_fill(14, array[60]) || array_fill(15, array[40])
               from monitors m, unnest(%s::text[]) l, generate_series(1, %s) d""",
            (daily_through, LOCATIONS, days),
        )
        if days:
            conn.execute(
                """insert into retention_marks (name, at) values ('rollup_daily_through', %s)
                   on conflict (name) do update set at = excluded.at""",
                (daily_through,),
            )
        tail = int((now - mark).total_seconds() // 60)
        conn.execute(
            """insert into runs (id, monitor_id, scheduled_at, expected_locations, deadline, finalized_at, status)
               select gen_random_uuid(), m.id, %s + make_interval(mins => g), %s, now(), now(), 'up'
               from monitors m, generate_series(0, %s - 1) g""",
            (mark, LOCATIONS, tail),
        )
        conn.execute(
            """insert into monitor_results (run_id, monitor_id, location, status, checked_at, response_time_ms)
               select r.id, r.monitor_id, l.location,
                      case when random() < 0.02 then 'down' else 'up' end,
                      r.scheduled_at + make_interval(secs => random()), (20 + random() * 300)::int
               from runs r cross join unnest(%s::text[]) as l(location)""",
            (LOCATIONS,),
        )
        # alert history: 20 deliveries per monitor over 90 days; status changes: 10 incidents per monitor
        provider = conn.execute(
            """insert into notification_providers (project_id, name, type, config_encrypted)
               values (%s, 'hook', 'webhook', 'enc:v2:x:y') returning id""",
            (project,),
        ).fetchone()[0]
        conn.execute(
            """insert into alert_history (monitor_id, run_id, provider_id, kind, status, attempts, title,
                   error, created_at, sent_at)
               select m.id, gen_random_uuid(), %s, case when g %% 2 = 0 then 'failure' else 'recovery' end,
                      case when g %% 7 = 0 then 'failed' else 'sent' end, 1, 'Monitor Down - ' || m.name,
                      case when g %% 7 = 0 then 'HTTP 500' end, now() - make_interval(mins => g * 6480, secs => random() * 60),
                      now()
               from monitors m, generate_series(1, 20) g""",
            (provider,),
        )
        conn.execute(
            """with picked as (select r.id, r.monitor_id, r.scheduled_at,
                                      row_number() over (partition by r.monitor_id order by r.scheduled_at) as n
                               from runs r)
               insert into status_changes (monitor_id, run_id, from_status, to_status, changed_at)
               select monitor_id, id, case when mod(n, 2) = 1 then 'up' else 'down' end,
                      case when mod(n, 2) = 1 then 'down' else 'up' end, scheduled_at
               from picked where n <= 20""",
        )
        for table in (
            "monitors",
            "rollup_hourly",
            "runs",
            "monitor_results",
            "alert_history",
            "status_changes",
        ):
            conn.execute(f"vacuum analyze {table}")
        counts = {
            table: conn.execute(f"select count(*) from {table}").fetchone()[0]
            for table in (
                "rollup_hourly",
                "rollup_daily",
                "monitor_results",
                "alert_history",
                "status_changes",
            )
        }
        print(f"seeded in {time.perf_counter() - started:.0f} s: {counts}; raw tail {tail} min from {mark}")
        return str(conn.execute("select id from monitors order by name limit 1").fetchone()[0])


async def measure(key: str, paths: list[str], requests: int) -> dict[str, list[float]]:
    from shared import auth  # noqa: F401  (after the environment is set)
    from tests.api_client import api_app

    timings: dict[str, list[float]] = {}
    transport = httpx.ASGITransport(app=api_app())
    async with httpx.AsyncClient(
        transport=transport, base_url="http://gateway/function/api", timeout=120
    ) as client:
        for path in paths:
            first = await client.get(path, headers={"Authorization": f"Bearer {key}"})
            first.raise_for_status()  # warms the pool and the plan cache
            for _ in range(requests):
                started = time.perf_counter()
                response = await client.get(path, headers={"Authorization": f"Bearer {key}"})
                timings.setdefault(path, []).append((time.perf_counter() - started) * 1000)
                response.raise_for_status()
    return timings


async def make_key() -> str:
    from shared import auth, db

    async with db.transaction() as conn:
        project = await (await conn.execute("select id from projects where is_default")).fetchone()
        _, key = await auth.store_key(conn, project["id"], "bench")
    return key


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--monitors", type=int, default=10_000)
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--tail-minutes", type=int, default=60)
    parser.add_argument("--days", type=int, default=0, help="daily rollups before the hourly ones")
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args()
    with embedded_environment("history") as env:
        monitor = seed(
            env.database_url, args.monitors, args.hours, args.tail_minutes, args.days, datetime.now(UTC)
        )
        paths = [
            *([f"/regions?hours={min(720, 24 * (args.days + 1))}"] if args.days else []),
            f"/regions?hours={args.hours}",
            "/regions?hours=1",
            "/alerts",
            "/alerts?status=failed&kind=failure&page=50",
            f"/monitors/{monitor}/alerts",
            f"/monitors/{monitor}/incidents",
        ]

        async def run() -> dict[str, list[float]]:
            key = await make_key()
            try:
                return await measure(key, paths, args.requests)
            finally:
                from shared.db import close_pool

                await close_pool()

        timings = asyncio.run(run())
    for path, values in timings.items():
        ordered = sorted(values)
        p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
        print(f"{path:60s} p50 {statistics.median(values):8.1f} ms   p95 {p95:8.1f} ms   (n={len(values)})")


if __name__ == "__main__":
    main()
