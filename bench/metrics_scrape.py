"""Scraping the metrics function at N monitors × 3 locations, with results, rollups and the pipeline's counters,
through the local gateway. The baseline, in the same run and through the same gateway, is a bench-only function
(in a temporary stack file) exposing a bare prometheus_client registry with the same number of samples, of
labels as long, rendered per request: the cost of the exposition format itself.

Three functions answer in alternating rounds, so drift in the machine's load falls on all alike:
- `metrics-fresh`: the metrics function with a render budget so large that every scrape renders, as a small
  install always does: reads + formatting (compared with the baseline: goal under 2×);
- `metrics`: the metrics function as shipped: a render over its budget is served to the next scrape while the
  next one is made (goal: a scrape under 500 ms);
- `bare-registry`: the baseline.
A round waits after the shipped function's scrape until its background render is done, as a scrape interval
would. Prints each one's p50 and max, the ratio, the exposition's size, and the shipped function's peak RSS.

    .venv/bin/python bench/metrics_scrape.py [--monitors 10000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import os
import secrets
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

LOCATIONS = ["us-east", "eu-central", "asia-pacific"]
ACCEPT = {"Accept-Encoding": "gzip", "Accept": "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"}

BARE_FUNCTION = '''"""bench-only: a bare prometheus_client registry of BENCH_SAMPLES gauge samples, rendered per request."""

import gzip
import os

from prometheus_client import CollectorRegistry, Gauge, generate_latest
from starlette.requests import Request
from starlette.responses import Response

registry = CollectorRegistry()
samples = int(os.environ["BENCH_SAMPLES"])
per_family = 10_000
labels = ["monitor_id", "monitor_name", "type", "project", "location"]
for family in range(0, samples, per_family):
    gauge = Gauge(f"bench_family_{family // per_family}", "A bench family.", labels, registry=registry)
    for i in range(family, min(family + per_family, samples)):
        gauge.labels(f"0b6f1c2e-1111-4222-8333-{i:012d}", f"Monitor {i}", "http_request", "Default",
                     "us-east").set(0.123)


async def handle(request: Request) -> Response:
    body = generate_latest(registry)
    if "gzip" in request.headers.get("accept-encoding", ""):
        return Response(gzip.compress(body, compresslevel=1), media_type="text/plain; version=0.0.4",
                        headers={"Content-Encoding": "gzip"})
    return Response(body, media_type="text/plain; version=0.0.4")
'''

SEED = """
insert into monitors (id, project_id, name, type, target, frequency_minutes, status, last_check_at, alert_state,
                      next_run_at)
select ('0b6f1c2e-1111-4222-8333-' || lpad(i::text, 12, '0'))::uuid, p.id, 'Monitor ' || i, 'http_request',
       'https://user:pass@127.0.0.1/' || i || '?token=bench', 1,
       case when i %% 50 = 0 then 'down' else 'up' end, now() - interval '20 seconds',
       jsonb_build_object('consecutive_failures', case when i %% 50 = 0 then 3 else 0 end), now() + interval '1 day'
from generate_series(1, %(monitors)s) i, projects p where p.is_default;

insert into runs (id, monitor_id, scheduled_at, expected_locations, deadline, finalized_at, status)
select gen_random_uuid(), id, now() - interval '30 seconds', %(locations)s, now(), now(), status from monitors;

insert into monitor_results (run_id, monitor_id, location, status, checked_at, response_time_ms, dns_ms, connect_ms,
                             tls_ms, first_byte_ms, details)
select r.id, r.monitor_id, l, 'up', now() - interval '25 seconds', 120 + (random() * 80)::int, 1.2, 3.4, 25.0, 90.0,
       jsonb_build_object('ssl', jsonb_build_object('validTo', (now() + interval '60 days')::text))
from runs r, unnest(%(locations)s::text[]) l;

update monitors m set last_run_id = r.id from runs r where r.monitor_id = m.id;

insert into rollup_hourly (monitor_id, location, bucket, checks, up_checks, response_count, response_sum_ms)
select m.id, l, date_trunc('hour', now()) - h * interval '1 hour', 60, 59, 60, 60 * 150
from monitors m, unnest(%(locations)s::text[]) l, generate_series(1, 24) h;

insert into rollup_daily (monitor_id, location, bucket, checks, up_checks, response_count, response_sum_ms)
select m.id, l, date_trunc('day', now()) - d * interval '1 day', 1440, 1430, 1440, 1440 * 150
from monitors m, unnest(%(locations)s::text[]) l, generate_series(1, 30) d;

insert into retention_marks (name, at) values
    ('rollup_hourly_through', date_trunc('hour', now())), ('rollup_daily_through', date_trunc('day', now()))
on conflict (name) do update set at = excluded.at;
"""


def seed(database_url: str, redis_url: str, monitors: int) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        for statement in SEED.split(";\n"):
            if statement.strip():
                conn.execute(statement, {"monitors": monitors, "locations": LOCATIONS})
        conn.execute("vacuum analyze")
    import redis

    from shared.telemetry import METRICS

    client = redis.Redis.from_url(redis_url)
    pipe = client.pipeline(transaction=False)
    key = METRICS["supercheck_monitor_checks"].key
    for i in range(1, monitors + 1):
        monitor_id = f"0b6f1c2e-1111-4222-8333-{i:012d}"
        for location in LOCATIONS:
            pipe.hset(key, f"{monitor_id}\x1f{location}\x1fup", 1000)
            if i % 50 == 0:
                pipe.hset(key, f"{monitor_id}\x1f{location}\x1fdown", 20)
    pipe.execute()


def temporary_stack(folder: Path, samples: int) -> Path:
    bare = folder / "bare_registry"
    bare.mkdir()
    (bare / "main.py").write_text(BARE_FUNCTION)
    full = yaml.safe_load(DEFAULT_STACK.read_text())
    shipped = full["functions"]["metrics"]
    shipped["handler"] = str(PROJECT_ROOT / "functions" / "metrics")
    fresh = {**shipped, "environment": {**shipped["environment"], "METRICS_RENDER_BUDGET_SECONDS": "60"}}
    stack = {
        "version": full["version"],
        "provider": full["provider"],
        "functions": {
            "metrics": shipped,
            "metrics-fresh": fresh,
            "bare-registry": {
                "lang": shipped["lang"],
                "handler": str(bare),
                "environment": {**shipped["environment"], "BENCH_SAMPLES": str(samples)},
            },
        },
    }
    path = folder / "stack.yml"
    path.write_text(yaml.safe_dump(stack))
    return path


def scrape(client: httpx.Client, url: str, token: str) -> tuple[float, httpx.Response]:
    started = time.perf_counter()
    response = client.get(url, headers={**ACCEPT, "Authorization": f"Bearer {token}"})
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    return elapsed, response


def count_samples(text: str) -> int:
    return sum(1 for line in text.splitlines() if line and not line.startswith("#"))


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (functions-framework serves from a worker it starts)."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if int(entry.name) == pid or int(fields.get("PPid", "0").strip()) == pid:
            total += int(fields.get("VmRSS", "0 kB").split()[0])
    return total / 1024


def wait_for_background_render(client: httpx.Client, url: str, token: str, previous: str) -> None:
    """The shipped function's next render is done once a scrape shows a new render time."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        time.sleep(0.5)
        _, response = scrape(client, url, token)
        if render_line(response.text) != previous:
            return


def render_line(text: str) -> str:
    return next(
        (line for line in text.splitlines() if line.startswith("supercheck_metrics_render_seconds ")), ""
    )


def main() -> None:  # noqa: C901 - one bench run, top to bottom
    parser = argparse.ArgumentParser()
    parser.add_argument("--monitors", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    token = secrets.token_urlsafe(32)
    with embedded_environment("metrics", SC_METRICS_TOKEN=token) as env:
        started = time.perf_counter()
        seed(env.database_url, env.redis_url, args.monitors)
        print(
            f"seeded {args.monitors:,} monitors × {len(LOCATIONS)} locations in {time.perf_counter() - started:.0f} s"
        )
        folder = Path(tempfile.mkdtemp(prefix="sc-bench-metrics-"))
        # the sample count first, from the metrics function alone, to size the baseline's registry
        probe = LocalStack(
            env={"SC_METRICS_TOKEN": token},
            log_dir=folder / "logs-0",
            gateway_port=free_port(),
            with_connector=False,
            with_cron=False,
            only_functions=["metrics"],
        ).start()
        try:
            with httpx.Client(timeout=300) as client:
                _, first = scrape(client, f"{probe.gateway_url}/function/metrics", token)
        finally:
            probe.stop()
        samples = count_samples(first.text)
        print(f"exposition: {samples:,} samples, {len(first.content):,} bytes")
        stack = LocalStack(
            env={"SC_METRICS_TOKEN": token},
            log_dir=folder / "logs",
            gateway_port=free_port(),
            with_connector=False,
            with_cron=False,
            stack_file=temporary_stack(folder, samples),
        ).start()
        fresh_times, shipped_times, bare_times, peak_rss = [], [], [], 0.0
        try:
            base = stack.gateway_url
            urls = {name: f"{base}/function/{name}" for name in ("metrics", "metrics-fresh", "bare-registry")}
            shipped_pid = stack.children["metrics"].process.pid
            with httpx.Client(timeout=300) as client:
                for url in urls.values():  # warm: imports, pools, the first render, the uptime figures
                    scrape(client, url, token)
                _, kept = scrape(client, urls["metrics"], token)
                wait_for_background_render(client, urls["metrics"], token, render_line(kept.text))
                for _ in range(args.rounds):
                    fresh_times.append(scrape(client, urls["metrics-fresh"], token)[0])
                    bare_times.append(scrape(client, urls["bare-registry"], token)[0])
                    elapsed, response = scrape(client, urls["metrics"], token)
                    shipped_times.append(elapsed)
                    wait_for_background_render(client, urls["metrics"], token, render_line(response.text))
                    peak_rss = max(peak_rss, rss_mb(shipped_pid))
                gzipped = response.num_bytes_downloaded
        finally:
            stack.stop()
    p50 = statistics.median
    print(
        f"gzipped on the wire: {gzipped:,} bytes; rounds: {args.rounds}; load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"bare registry (baseline):     p50 {1000 * p50(bare_times):7.0f} ms  max {1000 * max(bare_times):7.0f} ms"
    )
    print(
        f"metrics, every scrape renders: p50 {1000 * p50(fresh_times):7.0f} ms  max {1000 * max(fresh_times):7.0f} ms"
    )
    print(
        f"metrics as shipped:            p50 {1000 * p50(shipped_times):7.0f} ms  max {1000 * max(shipped_times):7.0f} ms"
    )
    print(f"metrics function peak RSS: {peak_rss:.0f} MB")
    print(
        f"ratio to the bare registry: render {p50(fresh_times) / p50(bare_times):.2f} (goal < 2), "
        f"shipped scrape {p50(shipped_times) / p50(bare_times):.2f}; shipped scrape p50 "
        f"{1000 * p50(shipped_times):.0f} ms (goal < 500 ms)"
    )


if __name__ == "__main__":
    main()
