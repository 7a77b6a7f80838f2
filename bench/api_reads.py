"""Server time (p50/p99) of the dashboard's API reads at 10,000 monitors: the list page (50, include=summary, with
search and sort), the status counts, response-times for every range and the certificate. Requests go to the api
function's ASGI app in this process (no gateway), so the figure is the function's own time; GET /health, the
same app without the database, is the baseline measured in the same run.

Seeded with generate_series: 10,000 monitors, each with 2 days of hourly rollups in 3 locations; for `--rolled` of
them 30 days of hourly rollups and 90 days of daily ones; for the first 5 a day of raw results every minute; for
one, 30 days of raw results every minute (what phases over 30d/90d read at the default retention).

    .venv/bin/python bench/api_reads.py [--monitors 10000] [--rolled 300] [--requests 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402
import psycopg  # noqa: E402

from bench.harness import embedded_environment  # noqa: E402
from shared.rules.retention import floor_day, floor_hour  # noqa: E402

LOCATIONS = ["us-east", "eu-central", "asia-pacific"]

_MONITORS = """
insert into monitors (project_id, name, type, target, frequency_minutes, enabled, status, tags, last_check_at,
                      created_at)
select %(project)s, 'Service ' || g || case when g %% 7 = 0 then ' checkout' else '' end,
       (array['http_request', 'website', 'ping_host', 'port_check'])[1 + g %% 4],
       case when g %% 4 in (0, 1) then 'https://svc' || g || '.example.net/health'
                                       || case when g %% 10 = 0 then '?token=secret' || g else '' end
            else 'svc' || g || '.example.net' end,
       1, g %% 20 <> 0, (array['up', 'up', 'up', 'down', 'degraded', 'pending'])[1 + g %% 6],
       array['team-' || g %% 10], now() - make_interval(secs => g), now() - make_interval(mins => g)
from generate_series(1, %(monitors)s) g
"""

# 60 checks an hour, 20 distinct response times (as the rollups keep them: ascending values, their counts)
_HOURLY = """
insert into rollup_hourly (monitor_id, location, bucket, checks, up_checks, response_count, response_sum_ms,
    min_response_ms, max_response_ms, p50_response_ms, p95_response_ms, p99_response_ms,
    response_values_ms, response_value_counts)
select m.id, l, b, 60, 59, 60, 60 * 90, 27, 160, 90, 150, 158,
       array(select 20 + 7 * i from generate_series(1, 20) i), array_fill(3, array[20])
from (select id from monitors order by created_at desc, id offset %(offset)s limit %(rolled)s) m
cross join unnest(%(locations)s::text[]) l
cross join generate_series(%(hourly_from)s::timestamptz, %(hourly_to)s::timestamptz - interval '1 hour',
                           interval '1 hour') b
"""

_DAILY = """
insert into rollup_daily (monitor_id, location, bucket, checks, up_checks, response_count, response_sum_ms,
    min_response_ms, max_response_ms, p50_response_ms, p95_response_ms, p99_response_ms,
    response_values_ms, response_value_counts)
select m.id, l, b, 1440, 1430, 1440, 1440 * 90, 21, 320, 90, 150, 300,
       array(select 20 + 3 * i from generate_series(1, 100) i), array_fill(14, array[100])
from (select id from monitors order by created_at desc, id limit %(rolled)s) m
cross join unnest(%(locations)s::text[]) l
cross join generate_series(%(daily_from)s::timestamptz, %(daily_to)s::timestamptz - interval '1 day',
                           interval '1 day') b
"""

_RAW = """
with m as (select id from monitors order by created_at desc, id offset %(offset)s limit %(count)s),
r as (
    insert into runs (monitor_id, scheduled_at, expected_locations, deadline, finalized_at, status)
    select m.id, t, %(locations)s, t, t, 'up'
    from m, generate_series(%(raw_from)s::timestamptz, now(), interval '1 minute') t
    returning id, monitor_id, scheduled_at
)
insert into monitor_results (run_id, monitor_id, location, status, checked_at, response_time_ms,
                             dns_ms, connect_ms, tls_ms, first_byte_ms, details)
select r.id, r.monitor_id, l, case when random() < 0.02 then 'down' else 'up' end, r.scheduled_at,
       (20 + random() * 300)::int, random() * 5, random() * 20, random() * 30, random() * 100,
       case when extract(minute from r.scheduled_at) = 0 and extract(hour from r.scheduled_at) = 0
            then '{"ssl": {"checked": true, "validTo": "2027-06-01T00:00:00+00:00", "issuer": "CN=Bench CA",
                   "subject": "CN=svc", "sans": ["svc.example.net"]}}'::jsonb
            else '{"ssl": {"checked": false}}'::jsonb end
from r cross join unnest(%(locations)s::text[]) l
"""


def seed(database_url: str, monitors: int, rolled: int) -> tuple[list[str], str]:
    now = datetime.now(UTC)
    hourly_through, daily_through = floor_hour(now) - timedelta(hours=1), floor_day(now)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("set synchronous_commit = off")
        project = conn.execute("select id from projects where is_default").fetchone()[0]
        started = time.perf_counter()
        conn.execute(_MONITORS, {"project": project, "monitors": monitors})
        common = {"rolled": rolled, "locations": LOCATIONS}
        month, two_days = floor_day(now - timedelta(days=30)), hourly_through - timedelta(hours=47)
        conn.execute(_HOURLY, {**common, "offset": 0, "hourly_from": month, "hourly_to": hourly_through})
        # every other monitor has its recent hours rolled up too, as in a running system: the summary's 24 hours
        # then share their buckets with 10,000 monitors' rows
        recent = {
            **common,
            "offset": rolled,
            "rolled": None,
            "hourly_from": two_days,
            "hourly_to": hourly_through,
        }
        conn.execute(_HOURLY, recent)
        conn.execute(
            _DAILY, {**common, "daily_from": floor_day(now - timedelta(days=91)), "daily_to": daily_through}
        )
        conn.execute(
            _RAW, {"offset": 0, "count": 5, "locations": LOCATIONS, "raw_from": now - timedelta(days=1)}
        )
        conn.execute(
            _RAW, {"offset": 5, "count": 1, "locations": LOCATIONS, "raw_from": now - timedelta(days=30)}
        )
        for name, at in (
            ("rollup_hourly_through", hourly_through),
            ("rollup_daily_through", daily_through),
            ("raw_complete_from", floor_day(now - timedelta(days=30))),
        ):
            conn.execute("insert into retention_marks (name, at) values (%s, %s)", (name, at))
        for table in ("monitors", "runs", "monitor_results", "rollup_hourly", "rollup_daily"):
            conn.execute(f"vacuum analyze {table}")
        counts = {
            table: conn.execute(f"select count(*) from {table}").fetchone()[0]
            for table in ("monitors", "monitor_results", "rollup_hourly", "rollup_daily")
        }
        print(f"seeded {counts} in {time.perf_counter() - started:.0f} s")
        ids = [
            str(row[0])
            for row in conn.execute("select id from monitors order by created_at desc, id limit 6")
        ]
        from shared import auth

        async def key() -> str:
            from shared import db

            async with db.transaction() as aconn:
                return (await auth.store_key(aconn, project, "bench"))[1]

    return ids, asyncio.run(key())


def p(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1]


API_HANDLER = str(Path(__file__).resolve().parents[1] / "functions/api/main.py")


async def measure(key: str, cases: dict[str, str], requests: int) -> dict[str, list[float]]:
    from functions_framework.aio import create_asgi_app

    app = create_asgi_app(target="handle", source=API_HANDLER)
    timings: dict[str, list[float]] = {name: [] for name in cases}
    cpu: dict[str, list[float]] = {name: [] for name in cases}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://gateway/function/api",
        headers={"Authorization": f"Bearer {key}"},
        timeout=60,
    ) as client:
        for path in cases.values():  # warm: imports, pools, plans
            for _ in range(3):
                (await client.get(path)).raise_for_status()
        for _ in range(requests):
            for name, path in cases.items():
                started, started_cpu = time.perf_counter(), time.process_time()
                response = await client.get(path)
                timings[name].append((time.perf_counter() - started) * 1000)
                cpu[name].append((time.process_time() - started_cpu) * 1000)
                response.raise_for_status()
    return timings, cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--monitors", type=int, default=10_000)
    parser.add_argument("--rolled", type=int, default=300)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    with embedded_environment("api-reads"):
        ids, key = seed(os.environ["DATABASE_URL"], args.monitors, args.rolled)
        day_raw, month_raw = ids[0], ids[5]
        cases = {
            "health (baseline)": "/health",
            "list 50 include=summary": "/monitors?limit=50&include=summary",
            "list 50 summary search=checkout sort=-lastCheckAt": "/monitors?limit=50&include=summary&search=checkout&sort=-lastCheckAt",
            "list 50 summary search=example.net sort=name page=20": "/monitors?limit=50&include=summary&search=example.net&sort=name&page=20",
            "list 50 summary sort=status": "/monitors?limit=50&include=summary&sort=status",
            "counts": "/monitors/summary",
            "counts search=checkout": "/monitors/summary?search=checkout",
            **{
                f"response-times {r} (1 day raw)": f"/monitors/{day_raw}/response-times?range={r}"
                for r in ("1h", "24h", "7d", "30d", "90d")
            },
            **{
                f"response-times {r} (30 days raw)": f"/monitors/{month_raw}/response-times?range={r}"
                for r in ("24h", "7d", "30d", "90d")
            },
            "certificate (30 days raw)": f"/monitors/{month_raw}/certificate",
        }
        timings, cpu = asyncio.run(measure(key, cases, args.requests))
    width = max(len(name) for name in cases)
    # The machine is shared: wall time includes waiting for a core; the api process's own CPU time does not
    # (PostgreSQL's share of the work is in the wall time only).
    print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}; {args.requests} requests each")
    print(f"{'read':<{width}}  p50 ms  p99 ms  min ms  api CPU p50 ms")
    for name, values in timings.items():
        print(
            f"{name:<{width}}  {p(values, 50):6.1f}  {p(values, 99):6.1f}  {min(values):6.1f}  {p(cpu[name], 50):6.1f}"
        )


if __name__ == "__main__":
    main()
