"""Sustained pipeline as a user gets it: N `http_request` monitors at a 1-minute frequency x 3 locations, created
through the API (POST /function/api/monitors with an array, each against its own path of a loopback target,
default configs), the local stack run with its shipped defaults and the real cron emulator: schedule ->
connector -> check-http -> persist -> aggregate, everything on this machine.

After a warm-up (every monitor has had its first run), a window of D whole minutes is measured: scheduling lag
(due time -> check start) p50/p99, checks per second, missed runs, duplicate results, and the CPU seconds each
component spent in the window (from /proc; Postgres backends by the function that holds them). The ratio to the
bare check engine, measured in the same run, comes last.

    .venv/bin/python bench/sustained_pipeline.py --monitors 20000 --minutes 3

Tuning (anything but the shipped defaults) is given as --env NAME=VALUE or --replicas FUNCTION=N; it is printed,
and the headline row then says so.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402
import psycopg  # noqa: E402

from bench.harness import embedded_environment  # noqa: E402
from bench.loopback_target import start_in_thread  # noqa: E402
from openfaas.local.runtime import LocalStack  # noqa: E402
from openfaas.local.services import free_port  # noqa: E402

# A loopback target is an internal address, which a user's real targets are not: the one setting the bench
# needs that a user does not, and it changes no work the pipeline does.
NEEDED_FOR_LOOPBACK = {"ALLOW_INTERNAL_TARGETS": "true"}
COMPONENTS = ("schedule", "connector", "check-http", "aggregate", "api", "gateway", "cron")


async def bare_engine_rate(target: str, checks: int, config: dict) -> float:
    """The check engine alone, in this process: the same checks, no pipeline, no persistence."""
    import uuid

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
            target=f"{target}m/{index}",
            config=config,
            scheduled_at=now,
            deadline=now,
        )
        for index in range(checks)
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


def default_config(target: str) -> dict:
    """The config the API stores for an http_request monitor given none: what the pipeline carries."""
    from shared.api.requests import MonitorCreate

    body = {"name": "x", "type": "http_request", "target": f"{target}m/0", "frequencyMinutes": 1}
    return MonitorCreate.model_validate(body).config


def api_key(database_url: str) -> str:
    async def bootstrap() -> str:
        from shared import auth, db

        try:
            async with db.transaction() as conn:
                return await auth.bootstrap(conn)
        finally:
            await db.close_pool()

    return asyncio.run(bootstrap())


def create_monitors(gateway_url: str, key: str, target: str, monitors: int, per_request: int) -> float:
    """Through the API as a user (or `supercheck apply`) would: arrays of default-config monitors."""
    started = time.perf_counter()
    with httpx.Client(timeout=600, headers={"Authorization": f"Bearer {key}"}) as client:
        for first in range(0, monitors, per_request):
            batch = [
                {
                    "name": f"sustained {index}",
                    "type": "http_request",
                    "target": f"{target}m/{index}",
                    "frequencyMinutes": 1,
                }
                for index in range(first, min(monitors, first + per_request))
            ]
            response = client.post(f"{gateway_url}/function/api/monitors", json=batch)
            assert response.status_code == 201, response.text[:500]
    return time.perf_counter() - started


def due_spread(database_url: str) -> tuple[int, float]:
    """The busiest second of the minute in monitors due, and the average: how evenly due times fell."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute(
            "select floor(extract(second from next_run_at)) s, count(*) from monitors group by 1"
        ).fetchall()
    counts = [row[1] for row in rows]
    return max(counts, default=0), sum(counts) / 60


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
        duplicates = conn.execute(
            """select (select count(*) - count(distinct (run_id, location)) from monitor_results)
                    + (select count(*) - count(distinct (monitor_id, scheduled_at)) from runs)"""
        ).fetchone()[0]
        unfinished = conn.execute(
            "select count(*) from runs where scheduled_at >= %s and scheduled_at < %s and finalized_at is null",
            (start, end),
        ).fetchone()[0]
    expected = monitors * round((end - start).total_seconds() / 60)
    return {
        "lag_p50": lag[0] or 0.0,
        "lag_p99": lag[1] or 0.0,
        "checks": lag[2],
        "runs": runs,
        "expected_runs": expected,
        "missed": max(0, expected - runs),
        "duplicates": duplicates,
        "unfinished": unfinished,
    }


# --- CPU seconds per component, from /proc --------------------------------------------------------------


def _process_table() -> tuple[dict[int, int], dict[int, float]]:
    parents, seconds = {}, {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        seconds[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return parents, seconds


def _root_of(pid: int, roots: dict[int, str], parents: dict[int, int]) -> str | None:
    while pid > 1:
        if pid in roots:
            return roots[pid]
        pid = parents.get(pid, 0)
    return None


def cpu_snapshot(stack: LocalStack, postgres_pid: int, redis_pid: int, database_url: str) -> dict[str, float]:
    """CPU seconds so far of each stack process (with the processes under it), of Redis, and of each Postgres
    backend counted to the function holding it (application_name); other backends are `postgres (other)`."""
    roots = {child.process.pid: name.split("#")[0] for name, child in stack.children.items() if child.process}
    roots[redis_pid] = "redis"
    roots[os.getpid()] = "bench (target, client)"
    with psycopg.connect(database_url, autocommit=True) as conn:
        holders = dict(conn.execute("select pid, application_name from pg_stat_activity").fetchall())
    parents, seconds = _process_table()
    totals: dict[str, float] = {}
    for pid, spent in seconds.items():
        if pid in holders or _root_of(pid, {postgres_pid: "postgres"}, parents):
            name = f"postgres ({holders.get(pid) or 'other'})"
        else:
            name = _root_of(pid, roots, parents)
        if name:
            totals[name] = totals.get(name, 0.0) + spent
    return totals


def cpu_spent(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """Per component; a process gone in between takes its seconds along, so a negative share reads 0."""
    return {name: max(0.0, after[name] - before.get(name, 0.0)) for name in after}


def print_cpu(spent: dict[str, float], seconds: float) -> None:
    print(f"CPU seconds in the {seconds:.0f} s window (cores busy = seconds / window):")
    for name, value in sorted(spent.items(), key=lambda item: -item[1]):
        if value >= 0.05:
            print(f"  {name:36s} {value:8.1f} s  {value / seconds:5.2f} cores")
    print(f"  {'total':36s} {sum(spent.values()):8.1f} s  {sum(spent.values()) / seconds:5.2f} cores")


# --- the run ----------------------------------------------------------------------------------------------


def parse_pairs(pairs: list[str], what: str) -> dict[str, str]:
    parsed = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"{what} {pair!r}: expected NAME=VALUE")
        parsed[name] = value
    return parsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--monitors", type=int, default=20_000)
    parser.add_argument("--minutes", type=int, default=3, help="the measured window, whole minutes")
    parser.add_argument("--warmup", type=float, default=1.0, help="minutes after creation before the window")
    parser.add_argument("--per-request", type=int, default=20_000, help="monitors per POST /monitors")
    parser.add_argument("--env", action="append", default=[], help="tuning: NAME=VALUE for every process")
    parser.add_argument("--replicas", action="append", default=[], help="tuning: FUNCTION=N processes")
    args = parser.parse_args()
    tuning = parse_pairs(args.env, "--env")
    replicas = {name: int(n) for name, n in parse_pairs(args.replicas, "--replicas").items()}
    print(
        f"load average at start: {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f} {os.getloadavg()[2]:.1f}"
    )
    print(
        f"tuning: {tuning or 'none'}; replicas: {replicas or 'com.openfaas.scale.min of stack.yml'} (shipped defaults otherwise)"
    )
    with embedded_environment("sustained", **NEEDED_FOR_LOOPBACK, **tuning) as env:
        target = start_in_thread()
        key = api_key(env.database_url)
        stack = LocalStack(
            env={**NEEDED_FOR_LOOPBACK, **tuning},
            log_dir=env.base / "logs",
            gateway_port=free_port(),
            with_cron=True,
            replicas=replicas,
        ).start()
        try:
            config = default_config(target)
            bare = {
                "default config": asyncio.run(bare_engine_rate(target, 3000, config)),
                "{} config": asyncio.run(bare_engine_rate(target, 3000, {})),
            }
            created_in = create_monitors(stack.gateway_url, key, target, args.monitors, args.per_request)
            busiest, mean = due_spread(env.database_url)
            print(
                f"created {args.monitors} monitors through the API in {created_in:.1f} s "
                f"({args.monitors / created_in:.0f}/s); due per second of the minute: busiest {busiest}, "
                f"mean {mean:.0f}",
                flush=True,
            )
            warm = datetime.now(UTC) + timedelta(minutes=args.warmup)
            start = warm.replace(second=0, microsecond=0) + timedelta(minutes=1)
            end = start + timedelta(minutes=args.minutes)
            print(f"window {start:%H:%M:%S} to {end:%H:%M:%S} UTC", flush=True)
            time.sleep(max(0.0, (start - datetime.now(UTC)).total_seconds()))
            cpu_before = cpu_snapshot(
                stack, env.postgres.process.pid, env.redis.process.pid, env.database_url
            )
            load_in_window = []
            while datetime.now(UTC) < end:
                time.sleep(min(15.0, max(0.0, (end - datetime.now(UTC)).total_seconds())))
                load_in_window.append(os.getloadavg()[0])
            cpu_after = cpu_snapshot(stack, env.postgres.process.pid, env.redis.process.pid, env.database_url)
            time.sleep(30)  # the last minute's runs finish
            figures = report(env.database_url, start, end, args.monitors)
        finally:
            stack.stop()
    window = args.minutes * 60
    rate = figures["checks"] / window
    print(f"load average in the window: {min(load_in_window):.1f}-{max(load_in_window):.1f}")
    print_cpu(cpu_spent(cpu_before, cpu_after), window)
    print(
        f"bare check engine: {bare['default config']:.0f} checks/s ({bare['{} config']:.0f} with config {{}})"
    )
    print(
        f"scheduling lag (due -> check start): p50 {figures['lag_p50']:.3f} s, p99 {figures['lag_p99']:.3f} s"
    )
    print(
        f"runs {figures['runs']} of {figures['expected_runs']} due; missed {figures['missed']}; "
        f"unfinished {figures['unfinished']}; duplicate results {figures['duplicates']}"
    )
    label = "shipped defaults" if not (tuning or replicas) else f"TUNED {tuning} {replicas}"
    print(f"pipeline ({label}): {rate:.0f} checks/s sustained of {args.monitors * 3 / 60:.0f} due")
    print(f"ratio pipeline/bare engine: {rate / bare['default config']:.2f}")


if __name__ == "__main__":
    main()
