"""A rush on a public status page: R concurrent readers for S seconds through the local gateway, against a page
of 50 monitors with 90 days of history. The baseline, in the same run and through the same gateway, is a
bench-only function (in a temporary stack file) that answers the same bytes from memory: the gateway only
proxies functions, so a static file is served by the thinnest function there is. Prints throughput and p99 of
both, their ratio (goal >= 0.8), and the database transactions the status function made during the rush
(pg_stat_database; goal: at most one page read per cache period).

    .venv/bin/python bench/status_page.py [--readers 200] [--seconds 60] [--monitors 50] [--rounds 4]
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402
import psycopg  # noqa: E402
import yaml  # noqa: E402

from bench.harness import embedded_environment  # noqa: E402
from openfaas.local.runtime import LocalStack  # noqa: E402
from openfaas.local.services import free_port  # noqa: E402
from openfaas.local.stack import DEFAULT_STACK, PROJECT_ROOT  # noqa: E402
from shared.status.cache import FRESH_SECONDS  # noqa: E402

LOCATIONS = ["us-east", "eu-central", "asia-pacific"]
SLUG = "bench"

# The baseline function: the page's bytes (and their gzip) read once, answered from memory with an ETag.
STATIC_FUNCTION = '''"""bench-only: answers one file from memory, as a static file server would."""

import gzip
import os
import hashlib
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response

BODY = (Path(__file__).parent / "page.html").read_bytes()
GZIPPED = gzip.compress(BODY, mtime=0)
ETAG = '"' + hashlib.sha256(BODY).hexdigest()[:20] + '"'


async def handle(request: Request) -> Response:
    headers = {"ETag": ETAG, "Cache-Control": "public, max-age=10", "Vary": "Accept-Encoding"}
    if "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return Response(GZIPPED, media_type="text/html; charset=utf-8", headers=headers)
    return Response(BODY, media_type="text/html; charset=utf-8", headers=headers)
'''


def seed(database_url: str, monitors: int) -> None:
    """A page of `monitors` in 5 groups; 90 days of daily rollups per location, today's hours and the last day's
    raw results every 5 minutes, with the watermarks a running cleanup leaves."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("set synchronous_commit = off")
        project = conn.execute("select id from projects where is_default").fetchone()[0]
        ids = [
            row[0]
            for row in conn.execute(
                """insert into monitors (project_id, name, type, target, frequency_minutes, enabled, status,
                                         next_run_at)
                   select %s, 'Service ' || g, 'http_request', 'https://example.invalid/' || g, 5, true, 'up',
                          now() + interval '1 day'
                   from generate_series(1, %s) g returning id""",
                (project, monitors),
            ).fetchall()
        ]
        page = conn.execute(
            "insert into status_pages (project_id, slug, title, show_response_times) values (%s, %s, 'Bench', true) "
            "returning id",
            (project, SLUG),
        ).fetchone()[0]
        conn.execute(
            """insert into status_page_monitors (status_page_id, monitor_id, group_position, group_name, position)
               select %s, id, (n - 1) / 10, 'Group ' || ((n - 1) / 10 + 1), n
               from unnest(%s::uuid[]) with ordinality as m(id, n)""",
            (page, ids),
        )
        today = "date_trunc('day', now() at time zone 'utc') at time zone 'utc'"
        conn.execute(
            f"""insert into rollup_daily (monitor_id, location, bucket, checks, up_checks, response_count,
                                          response_sum_ms)
                select m, l, {today} - make_interval(days => d), 288, 288 - (random() < 0.05)::int * 12, 288,
                       288 * 120
                from unnest(%s::uuid[]) m, unnest(%s::text[]) l, generate_series(1, 89) d""",
            (ids, LOCATIONS),
        )
        conn.execute(
            """insert into runs (monitor_id, scheduled_at, expected_locations, deadline, finalized_at, status)
               select m, now() - make_interval(mins => 5 * g), %s, now(), now(), 'up'
               from unnest(%s::uuid[]) m, generate_series(1, 288) g""",
            (LOCATIONS, ids),
        )
        conn.execute(
            """insert into monitor_results (run_id, monitor_id, location, status, checked_at, response_time_ms)
               select r.id, r.monitor_id, l, 'up', r.scheduled_at, (60 + random() * 120)::int
               from runs r, unnest(%s::text[]) l""",
            (LOCATIONS,),
        )
        conn.execute(
            f"""insert into retention_marks (name, at) values
                ('rollup_daily_through', {today}), ('rollup_hourly_through', {today} - interval '1 day'),
                ('raw_complete_from', {today} - interval '1 day')
                on conflict (name) do update set at = excluded.at"""
        )
        conn.execute("vacuum analyze")


def database_counters(database_url: str) -> tuple[int, int]:
    """(transactions, page reads): every transaction of the database, and the lookups of status_pages, which a
    page read makes exactly once (its first statement, by slug)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        transactions = conn.execute(
            "select xact_commit + xact_rollback from pg_stat_database where datname = current_database()"
        ).fetchone()[0]
        reads = conn.execute(
            "select coalesce(seq_scan, 0) + coalesce(idx_scan, 0) from pg_stat_user_tables where relname = 'status_pages'"
        ).fetchone()[0]
        return transactions, reads


async def rush(url: str, readers: int, seconds: float) -> tuple[int, list[float], int]:
    """(responses, latencies in ms, errors) of `readers` clients reading `url` back to back for `seconds`, as
    browsers would (gzip accepted, no conditional GET so every reply carries the page)."""
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=readers, max_keepalive_connections=readers)
    async with httpx.AsyncClient(timeout=30, limits=limits, headers={"Accept-Encoding": "gzip"}) as client:

        async def reader() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                try:
                    # the raw (gzipped) bytes: inflating a megabyte per reply would make the client the bottleneck
                    async with client.stream("GET", url) as reply:
                        async for _ in reply.aiter_raw():
                            pass
                    if reply.status_code != 200:
                        errors += 1
                        continue
                except httpx.HTTPError:
                    errors += 1
                    continue
                latencies.append((time.perf_counter() - started) * 1000)

        await asyncio.gather(*(reader() for _ in range(readers)))
    return len(latencies), latencies, errors


def cpu_seconds(pid: int) -> float:
    """User + system CPU so far of a process and every process under it (functions-framework serves from a
    worker it starts), from /proc: the machine's other load moves it far less than wall time."""
    parents, ticks = {}, {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        ticks[int(entry.name)] = int(fields[11]) + int(fields[12])  # utime, stime

    def under(candidate: int) -> bool:
        while candidate > 1:
            if candidate == pid:
                return True
            candidate = parents.get(candidate, 0)
        return False

    return sum(t for p, t in ticks.items() if under(p)) / os.sysconf("SC_CLK_TCK")


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) >= 100 else max(values, default=0.0)


def temporary_stack(folder: Path, page: bytes) -> Path:
    """stack.yml's status function beside the bench-only static one, in a stack file of their own."""
    static = folder / "static_file"
    static.mkdir()
    (static / "main.py").write_text(STATIC_FUNCTION)
    (static / "page.html").write_bytes(page)
    full = yaml.safe_load(DEFAULT_STACK.read_text())
    status = full["functions"]["status"]
    status["handler"] = str(PROJECT_ROOT / "functions" / "status")
    stack = {
        "version": full["version"],
        "provider": full["provider"],
        "functions": {
            "status": status,
            "static-file": {
                "lang": status["lang"],
                "handler": str(static),
                "environment": status["environment"],
            },
        },
    }
    path = folder / "stack.yml"
    path.write_text(yaml.safe_dump(stack))
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--readers", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--monitors", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds the seconds are split into")
    args = parser.parse_args()
    with embedded_environment("status-page") as env:
        seed(env.database_url, args.monitors)
        folder = Path(tempfile.mkdtemp(prefix="sc-bench-status-"))
        # The page's bytes first, from a stack of the status function alone, to give the baseline its file.
        first = LocalStack(
            env={},
            log_dir=folder / "logs-0",
            gateway_port=free_port(),
            with_connector=False,
            with_cron=False,
            only_functions=["status"],
        ).start()
        try:
            page = httpx.get(f"{first.gateway_url}/function/status/{SLUG}", timeout=60)
            page.raise_for_status()
        finally:
            first.stop()
        zipped = len(gzip.compress(page.content))
        print(f"page: {args.monitors} monitors, {len(page.content):,} bytes ({zipped:,} gzipped)")

        stack = LocalStack(
            env={},
            log_dir=folder / "logs",
            gateway_port=free_port(),
            with_connector=False,
            with_cron=False,
            stack_file=temporary_stack(folder, page.content),
        ).start()
        try:
            base = stack.gateway_url
            asyncio.run(rush(f"{base}/function/status/{SLUG}", 10, 2))  # warm both: pools, first render
            asyncio.run(rush(f"{base}/function/static-file", 10, 2))
            # Alternating rounds, so drift in the machine's other load falls on both alike.
            page_url, static_url = f"{base}/function/status/{SLUG}", f"{base}/function/static-file"
            round_seconds = args.seconds / args.rounds
            served = baseline = page_errors = static_errors = page_reads = made = 0
            page_latencies, static_latencies = [], []
            status_pid, static_pid = (
                stack.children["status"].process.pid,
                stack.children["static-file"].process.pid,
            )
            status_cpu = static_cpu = 0.0
            first_round = time.perf_counter()
            for _ in range(args.rounds):
                before = database_counters(env.database_url)
                cpu_before = cpu_seconds(status_pid)
                count, latencies, errors = asyncio.run(rush(page_url, args.readers, round_seconds))
                last_page_round_end = time.perf_counter()
                status_cpu += cpu_seconds(status_pid) - cpu_before
                time.sleep(
                    1.5
                )  # a backend reports its counts to pg_stat_database when idle, at most once a second
                after = database_counters(env.database_url)
                made += after[0] - before[0] - 1  # less the counting query's own
                page_reads += after[1] - before[1]
                served, page_errors = served + count, page_errors + errors
                page_latencies += latencies
                cpu_before = cpu_seconds(static_pid)
                count, latencies, errors = asyncio.run(rush(static_url, args.readers, round_seconds))
                static_cpu += cpu_seconds(static_pid) - cpu_before
                baseline, static_errors = baseline + count, static_errors + errors
                static_latencies += latencies
        finally:
            stack.stop()

    # the cache period runs on while the baseline's rounds run: count periods from the first page round's start
    periods = (last_page_round_end - first_round) / FRESH_SECONDS
    page_rate, static_rate = served / args.seconds, baseline / args.seconds
    print(f"readers {args.readers}, {args.seconds:g} s each, cache period {FRESH_SECONDS:g} s")
    print(
        f"static file: {static_rate:,.0f} req/s, p99 {p99(static_latencies):.0f} ms, errors {static_errors}, "
        f"function CPU {1000 * static_cpu / max(baseline, 1):.2f} ms a reply"
    )
    print(
        f"status page: {page_rate:,.0f} req/s, p99 {p99(page_latencies):.0f} ms, errors {page_errors}, "
        f"function CPU {1000 * status_cpu / max(served, 1):.2f} ms a reply (its renders included)"
    )
    print(
        f"during the rush ({periods:.1f} cache periods): {page_reads} page reads ({page_reads / periods:.2f} per "
        f"period), {made} database transactions (a page read is one; the pool's connection check adds one each)"
    )
    print(f"ratio (status page / static file throughput): {page_rate / static_rate:.2f}")


if __name__ == "__main__":
    main()
