"""Results-page and location-stats latency (p50/p99) through the gateway with 10 million result rows, as a
ratio against GET /health (the same HTTP path, no database) measured in the same run.

    .venv/bin/python bench/api_latency.py [--rows 10000000] [--monitors 1000] [--requests 400]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402
import psycopg  # noqa: E402

from bench.harness import embedded_environment  # noqa: E402
from openfaas.local.runtime import LocalStack  # noqa: E402
from openfaas.local.services import free_port  # noqa: E402

LOCATIONS = ["us-east", "eu-central", "asia-pacific"]


def seed(database_url: str, rows: int, monitors: int) -> list[str]:
    runs_per_monitor = rows // (monitors * len(LOCATIONS))
    with psycopg.connect(database_url, autocommit=True) as conn:
        project = conn.execute("select id from projects where is_default").fetchone()[0]
        conn.execute(
            """insert into monitors (project_id, name, type, target, frequency_minutes, enabled)
                        select %s, 'bench ' || g, 'http_request', 'https://example.invalid/', 1, false
                        from generate_series(1, %s) g""",
            (project, monitors),
        )
        conn.execute("set synchronous_commit = off")
        started = time.perf_counter()
        conn.execute(
            """insert into runs (id, monitor_id, scheduled_at, expected_locations, deadline, finalized_at, status)
               select gen_random_uuid(), m.id, now() - make_interval(mins => g), %s, now(), now(), 'up'
               from monitors m, generate_series(1, %s) g""",
            (LOCATIONS, runs_per_monitor),
        )
        conn.execute(
            """insert into monitor_results (run_id, monitor_id, location, status, checked_at, response_time_ms)
               select r.id, r.monitor_id, l.location,
                      case when random() < 0.02 then 'down' else 'up' end,
                      r.scheduled_at + make_interval(secs => random()), (20 + random() * 300)::int
               from runs r cross join unnest(%s::text[]) as l(location)""",
            (LOCATIONS,),
        )
        conn.execute("vacuum analyze monitor_results")
        conn.execute("vacuum analyze runs")
        total = conn.execute("select count(*) from monitor_results").fetchone()[0]
        print(f"seeded {total} result rows for {monitors} monitors in {time.perf_counter() - started:.0f} s")
        return [str(row[0]) for row in conn.execute("select id from monitors")]


def measure(client: httpx.Client, paths: list[str]) -> list[float]:
    timings = []
    for path in paths:
        started = time.perf_counter()
        response = client.get(path)
        timings.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return timings


def p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--monitors", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=400)
    args = parser.parse_args()
    with embedded_environment("api", SC_ALLOW_ANONYMOUS_LOCAL="true") as env:
        monitor_ids = seed(env.database_url, args.rows, args.monitors)
        stack = LocalStack(
            env={},
            log_dir=env.base / "logs",
            gateway_port=free_port(),
            with_connector=False,
            with_cron=False,
            only_functions=["api"],
        ).start()
        try:
            rng = random.Random(7)
            results_paths = [
                f"/monitors/{rng.choice(monitor_ids)}/results?page={rng.randint(1, 10)}&limit=10"
                + (f"&location={rng.choice(LOCATIONS)}" if rng.random() < 0.5 else "")
                for _ in range(args.requests)
            ]
            stats_paths = [
                f"/monitors/{rng.choice(monitor_ids)}/location-stats?days=7"
                for _ in range(args.requests // 4)
            ]
            with httpx.Client(base_url=f"{stack.gateway_url}/function/api", timeout=30) as client:
                measure(client, ["/health"] * 20 + results_paths[:20])  # warm the pools and caches
                health = measure(client, ["/health"] * args.requests)
                results = measure(client, results_paths)
                stats = measure(client, stats_paths)
        finally:
            stack.stop()
    print(f"GET /health               p50 {p(health, 50):6.1f} ms  p99 {p(health, 99):6.1f} ms")
    print(f"GET results page          p50 {p(results, 50):6.1f} ms  p99 {p(results, 99):6.1f} ms")
    print(f"GET location-stats 7 days p50 {p(stats, 50):6.1f} ms  p99 {p(stats, 99):6.1f} ms")
    print(f"results page p99 / health p99: {p(results, 99) / p(health, 99):.2f}")


if __name__ == "__main__":
    main()
