"""One schedule tick for 100,000 due monitors x 3 locations (claim, record runs, publish 300,000 jobs), as a
ratio against the floor measured in the same run: a bare UPDATE of the same rows plus pipelined XADDs of the
same jobs, pre-serialized and bundled as the tick bundles them. The old floor (one entry per job) is printed too.

    .venv/bin/python bench/schedule_fanout.py [--monitors 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg  # noqa: E402
import redis  # noqa: E402

from bench.harness import embedded_environment  # noqa: E402


def seed(database_url: str, monitors: int) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("truncate monitors, runs cascade")
        project = conn.execute("select id from projects where is_default").fetchone()[0]
        conn.execute(
            """insert into monitors (project_id, name, type, target, frequency_minutes, next_run_at, config)
               select %s, 'm' || g, 'http_request', 'https://example.invalid/' || g, 1, now() - interval '1 second',
                      '{"timeoutSeconds": 30, "expectedStatusCodes": "200-299"}'
               from generate_series(1, %s) g""",
            (project, monitors),
        )
        conn.execute("vacuum analyze monitors")


def sample_job(index: int) -> str:
    """A job as schedule renders it (shared.models.CheckJob), so the floor moves the same bytes."""
    return json.dumps(
        {
            "v": 1,
            "kind": "check_job",
            "run_id": str(uuid.uuid4()),
            "monitor_id": str(uuid.uuid4()),
            "type": "http_request",
            "target": f"https://example.invalid/{index}",
            "config": {"timeoutSeconds": 30, "expectedStatusCodes": "200-299"},
            "scheduled_at": "2026-11-25T12:00:00.123456+00:00",
            "deadline": "2026-11-25T12:01:00.123456+00:00",
            "location": "us-east",
        },
        separators=(",", ":"),
    )


def floor_seconds(database_url: str, redis_url: str, monitors: int, per_entry: int) -> float:
    """The least work that moves the same jobs: a bare UPDATE of the due monitors, then pipelined XADDs of
    pre-serialized entries (per_entry jobs each, as the tick bundles them; 1 is the old one-entry-per-job floor)."""
    job = sample_job(monitors)
    entry = (
        job if per_entry == 1 else '{"v":1,"kind":"check_jobs","jobs":[' + ",".join([job] * per_entry) + "]}"
    )
    entries = -(-monitors // per_entry)
    r = redis.Redis.from_url(redis_url)
    started = time.perf_counter()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("update monitors set next_run_at = next_run_at + interval '1 minute'")
    pipe = r.pipeline(transaction=False)
    for index in range(entries * 3):
        pipe.xadd(f"floor:{index % 3}", {"data": entry})
        if index % 10_000 == 9_999:
            pipe.execute()
    pipe.execute()
    elapsed = time.perf_counter() - started
    r.delete("floor:0", "floor:1", "floor:2")
    return elapsed


async def tick_seconds() -> tuple[float, int]:
    from shared import db, streams
    from shared.scheduling import schedule_tick

    started = time.perf_counter()
    report = await schedule_tick()
    elapsed = time.perf_counter() - started
    await db.close_pool()
    await streams.close_redis()
    return elapsed, report.jobs_published


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--monitors", type=int, default=100_000)
    args = parser.parse_args()
    with embedded_environment("fanout") as env:
        from shared.streams import jobs_per_entry

        per_entry = jobs_per_entry("http_request")
        seed(env.database_url, args.monitors)
        per_job_floor = floor_seconds(env.database_url, env.redis_url, args.monitors, 1)
        seed(env.database_url, args.monitors)
        floor = floor_seconds(env.database_url, env.redis_url, args.monitors, per_entry)
        seed(env.database_url, args.monitors)
        elapsed, jobs = asyncio.run(tick_seconds())
    assert jobs == args.monitors * 3, jobs
    print(f"monitors={args.monitors} jobs={jobs}")
    print(f"old floor (bare UPDATE + pipelined XADD of {jobs} single-job entries): {per_job_floor:.2f} s")
    print(
        f"floor (bare UPDATE + pipelined XADD of {-(-jobs // per_entry)} entries of {per_entry} jobs): {floor:.2f} s"
    )
    print(f"schedule tick: {elapsed:.2f} s ({jobs / elapsed:,.0f} jobs/s)")
    print(f"ratio tick/floor: {elapsed / floor:.2f}")


if __name__ == "__main__":
    main()
