"""CPU per job inside a check function (check-http's handler, in this process): connector POSTs of one bundle of
50 jobs each against a loopback target, parsed, validated per job, checked, stored once and announced, as a
ratio against the bare check engine (shared.checks.run_check) running the same jobs in the same run. The same
jobs as 50 single-job entries per POST (the shape before bundles) are measured too.

    .venv/bin/python bench/check_batch_overhead.py [--runs 300]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402
import psycopg  # noqa: E402

from bench.harness import embedded_environment  # noqa: E402
from shared.redis import close_redis

PROJECT_ROOT = Path(__file__).resolve().parents[1]
LOCATIONS = ["us-east", "eu-central", "asia-pacific"]
BUNDLE = 50


def seed_runs(database_url: str, target: str, runs: int) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """Monitors and runs the jobs belong to (results reference both)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        project = conn.execute("select id from projects where is_default").fetchone()[0]
        monitor_ids = [
            row[0]
            for row in conn.execute(
                """insert into monitors (project_id, name, type, target, frequency_minutes, next_run_at)
                   select %s, 'm' || g, 'http_request', %s, 1, now() + interval '1 hour'
                   from generate_series(1, %s) g returning id""",
                (project, target, runs),
            ).fetchall()
        ]
        run_ids = [uuid.uuid4() for _ in monitor_ids]
        conn.execute(
            """insert into runs (id, monitor_id, scheduled_at, expected_locations, deadline)
               select r, m, now(), %s, now() + interval '1 minute' from unnest(%s::uuid[], %s::uuid[]) as x(r, m)""",
            (LOCATIONS, run_ids, monitor_ids),
        )
    return list(zip(run_ids, monitor_ids, strict=True))


def jobs_for(runs: list[tuple[uuid.UUID, uuid.UUID]], target: str) -> list[dict]:
    now = datetime.now(UTC).isoformat()
    return [
        {
            "v": 1,
            "kind": "check_job",
            "run_id": str(run_id),
            "monitor_id": str(monitor_id),
            "location": location,
            "type": "http_request",
            "target": target,
            "config": {"timeoutSeconds": 30},
            "scheduled_at": now,
            "deadline": now,
        }
        for run_id, monitor_id in runs
        for location in LOCATIONS
    ]


def posts_of(jobs: list[dict], bundled: bool) -> list[dict]:
    """What the connector POSTs: one bundle of 50 jobs of one location, or (before bundles) 50 single-job
    entries."""
    posts = []
    for location in LOCATIONS:
        of_location = [job for job in jobs if job["location"] == location]
        for n in range(0, len(of_location), BUNDLE):
            chunk = of_location[n : n + BUNDLE]
            if bundled:  # as schedule renders them: type and location once per bundle
                common = {"v", "kind", "type", "location"}
                jobs_only = [{k: v for k, v in job.items() if k not in common} for job in chunk]
                data = {"v": 1, "kind": "check_jobs", "type": "http_request", "location": location}
                messages = [{"id": f"{n}-0", "data": {**data, "jobs": jobs_only}}]
            else:
                messages = [{"id": f"{n}-{i}", "data": job} for i, job in enumerate(chunk)]
            posts.append({"messages": messages})
    return posts


async def handler_cpu_per_job(jobs: list[dict], bundled: bool) -> float:
    from functions_framework.aio import create_asgi_app

    from shared.internal_auth import sign
    from shared.streams import jobs_in_envelope as streams_jobs

    app = create_asgi_app(target="handle", source=str(PROJECT_ROOT / "functions/check_http/main.py"))
    posts = posts_of(jobs, bundled)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as client:
        # signed as the connector signs them: the function refuses unsigned batches
        bodies = [json.dumps(body).encode() for body in [{"messages": []}, *posts]]
        await client.post("/", content=bodies[0], headers=sign(bodies[0]))  # imports and pools warmed up
        started = time.process_time()
        for body, content in zip(posts, bodies[1:], strict=True):
            response = await client.post("/", content=content, headers=sign(content))
            executed = sum(streams_jobs(message["data"]) for message in body["messages"])
            assert response.status_code == 200 and response.json()["executed"] == executed, response.text
    return (time.process_time() - started) / len(jobs)


async def engine_cpu_per_job(jobs: list[dict]) -> float:
    from shared.checks import run_check
    from shared.models import CheckJob
    from shared.settings import get_settings

    checks = [CheckJob.model_validate({**job, "run_id": str(uuid.uuid4())}) for job in jobs]
    limit = asyncio.Semaphore(get_settings().check_concurrency)

    async def one(job: CheckJob):
        async with limit:
            return await run_check(job)

    started = time.process_time()
    await asyncio.gather(*(one(job) for job in checks))
    return (time.process_time() - started) / len(jobs)


async def measure(jobs: list[dict]) -> tuple[float, float, float]:
    """Best of two rounds each, alternating, after a warm-up (imports, first connections)."""
    from shared import db

    await engine_cpu_per_job(jobs[:BUNDLE])
    engine, bundled, single = [], [], []
    for _ in range(2):
        engine.append(await engine_cpu_per_job(jobs))
        for figures, as_bundles in ((bundled, True), (single, False)):
            figures.append(await handler_cpu_per_job(jobs, as_bundles))
            async with (
                db.transaction() as conn
            ):  # the next round runs the jobs again, not skips them as stored
                await conn.execute("delete from monitor_results")
    await db.close_pool()
    await close_redis()
    return min(engine), min(bundled), min(single)


def start_target() -> subprocess.Popen:
    """The loopback target in its own process, so this process's CPU time is the function's alone."""
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; sys.path.insert(0, sys.argv[1]);"
            "from bench.loopback_target import start_in_thread; print(start_in_thread(), flush=True);"
            "time.sleep(3600)",
            str(PROJECT_ROOT),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()
    server = start_target()
    try:
        target = server.stdout.readline().strip()
        with embedded_environment(
            "check-overhead", ALLOW_INTERNAL_TARGETS="true", SC_INTERNAL_TOKEN=secrets.token_hex(32)
        ) as env:
            jobs = jobs_for(seed_runs(env.database_url, target, args.runs), target)
            engine, handler, unbundled = asyncio.run(measure(jobs))
    finally:
        server.kill()
    print(f"jobs={len(jobs)} per round, connector POSTs of one bundle of {BUNDLE} jobs")
    print(f"bare engine: {engine * 1000:.3f} ms CPU per check")
    print(
        f"check function, 50 single-job entries per POST (before bundles): {unbundled * 1000:.3f} ms CPU per job"
    )
    print(f"check function (parse, validate, check, store, announce): {handler * 1000:.3f} ms CPU per job")
    print(f"overhead beyond the check: {(handler - engine) * 1000:.3f} ms per job")
    print(f"ratio function/engine: {handler / engine:.2f}")


if __name__ == "__main__":
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    main()
