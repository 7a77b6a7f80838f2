"""One schedule tick for 100,000 due monitors x 3 locations (claim, record runs, publish 300,000 jobs), as a
ratio against the floor measured in the same run: a bare UPDATE of the same rows plus pipelined XADDs of the
same jobs, pre-serialized and bundled as the tick bundles them. The old floor (one entry per job) is printed too.

    .venv/bin/python bench/schedule_fanout.py [--monitors 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg  # noqa: E402
import redis  # noqa: E402

from bench.harness import embedded_environment  # noqa: E402
from shared.redis import close_redis, get_redis


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
        # neither the floor nor the tick should pay for flushing the seed, whichever a checkpoint would hit
        conn.execute("checkpoint")


def sample_job(index: int, in_bundle: bool) -> str:
    """A job as schedule renders it (shared.models.CheckJob; in a bundle, without the type and location the
    bundle says once), so the floor moves the same bytes."""
    job = {
        "run_id": str(uuid.uuid4()),
        "monitor_id": str(uuid.uuid4()),
        "target": f"https://example.invalid/{index}",
        "config": {"timeoutSeconds": 30, "expectedStatusCodes": "200-299"},
        "scheduled_at": "2026-11-25T12:00:00.123456+00:00",
        "deadline": "2026-11-25T12:01:00.123456+00:00",
    }
    if not in_bundle:
        job = {"v": 1, "kind": "check_job", "type": "http_request", "location": "us-east", **job}
    return json.dumps(job, separators=(",", ":"))


def cpu_seconds(pid: int) -> float:
    """CPU time a process used so far (user + system), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def floor_seconds(database_url: str, redis_url: str, monitors: int, per_entry: int) -> tuple[float, float]:
    """The least work that moves the same jobs: a bare UPDATE of the due monitors, then pipelined XADDs of
    pre-serialized entries (per_entry jobs each, as the tick bundles them; 1 is the old one-entry-per-job floor)."""
    if per_entry == 1:
        entry = sample_job(monitors, in_bundle=False)
    else:
        jobs = ",".join([sample_job(monitors, in_bundle=True)] * per_entry)
        entry = '{"v":1,"kind":"check_jobs","type":"http_request","location":"us-east","jobs":[' + jobs + "]}"
    entries = -(-monitors // per_entry)
    r = redis.Redis.from_url(redis_url)
    redis_pid = r.info("server")["process_id"]
    with psycopg.connect(database_url, autocommit=True) as conn:
        backend = conn.execute("select pg_backend_pid()").fetchone()[0]
        cpu_before = time.process_time() + cpu_seconds(backend) + cpu_seconds(redis_pid)
        started = time.perf_counter()
        conn.execute("update monitors set next_run_at = next_run_at + interval '1 minute'")
        pipe = r.pipeline(transaction=False)
        for index in range(entries * 3):
            pipe.xadd(f"floor:{index % 3}", {"data": entry})
            if index % 10_000 == 9_999:
                pipe.execute()
        pipe.execute()
        elapsed = time.perf_counter() - started
        cpu = time.process_time() + cpu_seconds(backend) + cpu_seconds(redis_pid) - cpu_before
    r.delete("floor:0", "floor:1", "floor:2")
    return elapsed, cpu


async def tick_seconds(redis_url: str, workers: int) -> tuple[float, float, int]:
    """A tick in a warm schedule process (imports done, pools open), as under cron; wall and CPU seconds."""
    from shared import db
    from shared.checks import configured_timeout
    from shared.pipeline import schedule as scheduling

    configured_timeout("http_request", {})  # check config models are imported on first use
    scheduling.CLAIM_WORKERS = workers
    async with db.transaction() as conn:
        await conn.execute("select 1")
    redis_pid = (await get_redis(redis_url).info("server"))["process_id"]
    cpu_before = time.process_time() + cpu_seconds(redis_pid)
    started = time.perf_counter()
    report = await scheduling.schedule_tick()
    elapsed = time.perf_counter() - started
    async with db.transaction() as conn:  # the pool's backends: Postgres' share of the tick's work
        backends = await (
            await conn.execute("select pid from pg_stat_activity where backend_type = 'client backend'")
        ).fetchall()
    cpu = time.process_time() + cpu_seconds(redis_pid) - cpu_before
    cpu += sum(cpu_seconds(row["pid"]) for row in backends)
    await db.close_pool()
    await close_redis()
    return elapsed, cpu, report.jobs_published


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--monitors", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=None, help="claim workers (default: CLAIM_WORKERS)")
    args = parser.parse_args()
    with embedded_environment("fanout") as env:
        from shared.pipeline.routing import jobs_per_entry
        from shared.pipeline.schedule import CLAIM_WORKERS

        per_entry = jobs_per_entry("http_request")
        seed(env.database_url, args.monitors)
        per_job_floor, _ = floor_seconds(env.database_url, env.redis_url, args.monitors, 1)
        seed(env.database_url, args.monitors)
        floor, floor_cpu = floor_seconds(env.database_url, env.redis_url, args.monitors, per_entry)
        seed(env.database_url, args.monitors)
        elapsed, cpu, jobs = asyncio.run(tick_seconds(env.redis_url, args.workers or CLAIM_WORKERS))
    assert jobs == args.monitors * 3, jobs
    entries = -(-jobs // per_entry)
    print(
        f"monitors={args.monitors} jobs={jobs} load average={os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"
    )
    print(f"old floor (bare UPDATE + pipelined XADD of {jobs} single-job entries): {per_job_floor:.2f} s")
    print(f"floor (bare UPDATE + pipelined XADD of {entries} entries of {per_entry} jobs): {floor:.2f} s")
    print(f"CPU (Postgres backend, Redis, this process): floor {floor_cpu:.2f} s, tick {cpu:.2f} s")
    print(f"schedule tick: {elapsed:.2f} s ({jobs / elapsed:,.0f} jobs/s)")
    print(f"ratio tick/floor: {elapsed / floor:.2f}")


if __name__ == "__main__":
    main()
