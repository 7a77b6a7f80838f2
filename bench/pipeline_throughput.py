"""Checks per second through the whole local pipeline (schedule -> connector -> check-http -> persist -> aggregate),
as a ratio against the bare check engine running the same checks in one process, measured in the same run.

    .venv/bin/python bench/pipeline_throughput.py [--monitors 300] [--replicas 1,2,3] [--env NAME=VALUE]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402
import psycopg  # noqa: E402

from bench.harness import embedded_environment  # noqa: E402
from bench.loopback_target import start_in_thread  # noqa: E402
from openfaas.local.runtime import LocalStack  # noqa: E402
from openfaas.local.services import free_port  # noqa: E402

LOCATIONS = 3


async def bare_engine_rate(target: str, checks: int) -> float:
    from shared.checks import run_check
    from shared.models import CheckJob
    from shared.settings import get_settings

    now = datetime.now(UTC)
    jobs = [
        CheckJob(
            run_id=uuid.uuid4(),
            monitor_id=uuid.uuid4(),
            location="bench",
            type="http_request",
            target=target,
            config={},
            scheduled_at=now,
            deadline=now,
        )
        for _ in range(checks)
    ]
    limit = asyncio.Semaphore(get_settings().check_concurrency)

    async def one(job):
        async with limit:
            return await run_check(job)

    started = time.perf_counter()
    outcomes = await asyncio.gather(*(one(job) for job in jobs))
    elapsed = time.perf_counter() - started
    assert all(o.status == "up" for o in outcomes), {o.message for o in outcomes if o.status != "up"}
    return checks / elapsed


def pipeline_rate(stack: LocalStack, database_url: str, target: str, monitors: int) -> tuple[float, float]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        project = conn.execute("select id from projects where is_default").fetchone()[0]
        conn.execute("truncate monitors cascade")
        conn.execute(
            """insert into monitors (project_id, name, type, target, frequency_minutes, next_run_at)
               select %s, 'bench ' || g, 'http_request', %s, 1, now() from generate_series(1, %s) g""",
            (project, target, monitors),
        )
        started = time.perf_counter()
        tick = httpx.post(f"{stack.gateway_url}/function/schedule", content=b"", timeout=120)
        tick.raise_for_status()
        tick_seconds = time.perf_counter() - started
        while True:
            done = conn.execute("select count(*) from runs where finalized_at is not null").fetchone()[0]
            if done >= monitors:
                break
            if time.perf_counter() - started > 600:
                raise SystemExit(f"only {done}/{monitors} runs finalized after 600 s")
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        checks = conn.execute("select count(*) from monitor_results").fetchone()[0]
        assert checks == monitors * LOCATIONS, checks
    return checks / elapsed, tick_seconds


def measure(env, target: str, monitors: int, replicas: int, tuning: dict[str, str]) -> None:
    """One stack with `replicas` check-http processes: the bare engine, then one tick's checks through it."""
    stack = LocalStack(
        env={"ALLOW_INTERNAL_TARGETS": "true", **tuning},
        log_dir=env.base / f"logs-{replicas}",
        gateway_port=free_port(),
        with_cron=False,
        replicas={"check-http": replicas},
    ).start()
    try:
        checks = monitors * LOCATIONS
        baseline = asyncio.run(bare_engine_rate(target, checks))
        rate, tick_seconds = pipeline_rate(stack, env.database_url, target, monitors)
        load = os.getloadavg()[0]
        print(f"check-http processes={replicas} monitors={monitors} locations={LOCATIONS} checks={checks}")
        print(f"  bare check engine (one process, no persistence): {baseline:.0f} checks/s")
        print(f"  schedule tick (claim + record + publish): {tick_seconds * 1000:.0f} ms")
        print(f"  whole pipeline (schedule -> check -> persist -> aggregate): {rate:.0f} checks/s")
        print(f"  ratio pipeline/bare engine: {rate / baseline:.2f}   (load average {load:.1f})", flush=True)
    finally:
        stack.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--monitors", type=int, default=300)
    parser.add_argument("--replicas", default="1", help="check-http processes, e.g. 1,2,3: one stack each")
    parser.add_argument("--env", action="append", default=[], help="tuning: NAME=VALUE for every process")
    args = parser.parse_args()
    tuning = dict(pair.split("=", 1) for pair in args.env)
    print(f"tuning: {tuning or 'none (shipped defaults)'}")
    with embedded_environment("pipeline", ALLOW_INTERNAL_TARGETS="true", **tuning) as env:
        target = start_in_thread()
        for replicas in [int(n) for n in args.replicas.split(",")]:
            measure(env, target, args.monitors, replicas, tuning)


if __name__ == "__main__":
    main()
