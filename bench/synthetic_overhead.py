"""Time per synthetic check through check_synthetic (an isolated sandbox with its own Chromium, the vetting egress
proxy, trace, report, S3 upload) against running the same script directly with Playwright in one process, cold
and warm, same run.

    .venv/bin/python bench/synthetic_overhead.py [--runs 10]

Cold: the first check of a process (direct: start Playwright and launch Chromium; through check_synthetic: a
sandbox started on demand, which launches its Chromium). Warm: direct runs open a new context per run on the
running browser; checks take the standby sandbox, whose Chromium was launched ahead, and use a fresh context. Needs Chromium (scripts/install-chromium.sh); Postgres and S3 (moto) run embedded.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import boto3  # noqa: E402
from moto.server import ThreadedMotoServer  # noqa: E402

from openfaas.local.services import embedded_postgres, free_port  # noqa: E402
from shared.migrate import apply_migrations  # noqa: E402
from shared.security import generate_key  # noqa: E402
from shared.settings import reset_settings_cache  # noqa: E402

SCRIPT = """
async def run(page, context, variables):
    await page.goto(variables["BASE_URL"] + "login")
    await page.fill("#username", "alice")
    await page.fill("#password", variables["PASSWORD"])
    await page.click("#submit")
    await page.wait_for_selector("#welcome")
"""
PAGES = {
    "/login": b"<form method=post action=/login><input id=username name=username>"
    b"<input id=password name=password type=password><button id=submit>Sign in</button></form>",
    "/dashboard": b"<h1 id=welcome>Welcome</h1>",
}


class Site(BaseHTTPRequestHandler):
    def _send(self, status: int, body: bytes, location: str | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        if location:
            self.send_header("Location", location)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._send(200 if self.path in PAGES else 404, PAGES.get(self.path, b"no"))

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._send(303, b"", "/dashboard")

    def log_message(self, *args) -> None:
        pass


def serve_site() -> str:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Site)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/"


def load_script():
    namespace: dict = {}
    exec(compile(SCRIPT, "<bench>", "exec"), namespace)
    return namespace["run"]


async def direct(variables: dict, runs: int) -> tuple[float, list[float]]:
    """The same script with Playwright in this process: one launch, then a fresh context per run."""
    from playwright.async_api import async_playwright

    from shared.synthetic.browser import LAUNCH_FLAGS, find_chromium

    run = load_script()
    flags = list(LAUNCH_FLAGS)
    executable = find_chromium(os.environ.get("PLAYWRIGHT_CHROMIUM_PATH"))

    async def once(browser) -> None:
        context = await browser.new_context()
        page = await context.new_page()
        await run(page, context, dict(variables))
        await context.close()

    started = time.perf_counter()
    playwright = await async_playwright().start()
    browser = await playwright.chromium.launch(executable_path=executable, args=flags)
    await once(browser)
    cold = time.perf_counter() - started
    warm = []
    for _ in range(runs):
        started = time.perf_counter()
        await once(browser)
        warm.append(time.perf_counter() - started)
    await browser.close()
    await playwright.stop()
    return cold, warm


async def through_check(test_id: str, runs: int) -> tuple[float, list[float], list[int]]:
    from shared.checks import run_check
    from shared.models import CheckJob

    def job() -> CheckJob:
        now = datetime.now(UTC)
        return CheckJob(
            run_id=uuid.uuid4(),
            monitor_id=uuid.uuid4(),
            location="bench",
            type="synthetic_test",
            target=test_id,
            config={},
            scheduled_at=now,
            deadline=now,
        )

    timings, script_ms = [], []
    for _ in range(runs + 1):
        started = time.perf_counter()
        outcome = await run_check(job())
        timings.append(time.perf_counter() - started)
        assert outcome.status == "up", outcome
        assert outcome.details.get("reportUrl"), outcome.details
        script_ms.append(outcome.response_time_ms)
    return timings[0], timings[1:], script_ms[1:]


class NoPool:
    """For comparison: every check starts a sandbox of its own (Python, Node driver, Chromium) when it arrives."""

    async def take(self, options, project):
        from shared.synthetic.runner import start_sandbox

        return await start_sandbox(options)

    def give_back(self, sandbox) -> None:
        sandbox.discard()


async def create_test(project_id, base_url: str) -> str:
    from shared.api.requests import ProjectVariableCreate, SyntheticTestCreate
    from shared.synthetic import store

    await store.create_variable(project_id, ProjectVariableCreate(name="BASE_URL", value=base_url))
    await store.create_variable(
        project_id, ProjectVariableCreate(name="PASSWORD", value="hunter2!", is_secret=True)
    )
    return str((await store.create_test(project_id, SyntheticTestCreate(title="bench", script=SCRIPT))).id)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request log lines
    base = Path(tempfile.mkdtemp(prefix="sc-bench-synthetic-"))
    os.environ["SC_EMBEDDED_PG_FAST"] = "1"
    postgres = embedded_postgres(base / "postgres")
    moto_port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port)
    moto.start()
    os.environ.update(
        {
            "DATABASE_URL": postgres.url,
            "SC_CREDENTIAL_KEY": generate_key(),
            "S3_ENDPOINT_URL": f"http://127.0.0.1:{moto_port}",
            "S3_BUCKET": "bench",
            "S3_ACCESS_KEY_ID": "bench",
            "S3_SECRET_ACCESS_KEY": "bench",
            # The site is on loopback; its traffic still goes through the sandbox's vetting proxy.
            "ALLOW_INTERNAL_TARGETS": "true",
        }
    )
    reset_settings_cache()
    apply_migrations(postgres.url)
    boto3.client(
        "s3",
        endpoint_url=os.environ["S3_ENDPOINT_URL"],
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
    ).create_bucket(Bucket="bench")
    site = serve_site()

    async def measure():
        import psycopg

        from shared.db import close_pool

        with psycopg.connect(postgres.url) as conn:
            project_id = conn.execute("select id from projects where is_default").fetchone()[0]
        test_id = await create_test(project_id, site)
        direct_cold, direct_warm = await direct({"BASE_URL": site, "PASSWORD": "hunter2!"}, args.runs)
        from shared.synthetic import check

        check_cold, check_warm, script_ms = await through_check(test_id, args.runs)
        pool, check._pool = check._pool, NoPool()
        try:
            _, unprepared_warm, _ = await through_check(test_id, args.runs)
        finally:
            check._pool = pool
        await close_pool()
        return direct_cold, direct_warm, check_cold, check_warm, script_ms, unprepared_warm

    try:
        direct_cold, direct_warm, check_cold, check_warm, script_ms, unprepared_warm = asyncio.run(measure())
    finally:
        moto.stop()
        postgres.stop()
    median = statistics.median
    from shared.synthetic.isolation import available

    print(f"runs={args.runs} (warm figures are medians); isolation: {available().describe()}")
    print(
        f"direct Playwright:    cold {direct_cold * 1000:.0f} ms   warm {median(direct_warm) * 1000:.0f} ms"
    )
    print(
        f"through check_synthetic: cold {check_cold * 1000:.0f} ms   warm {median(check_warm) * 1000:.0f} ms"
        f"   (script's own time as responseTimeMs: {median(script_ms):.0f} ms)"
    )
    print(
        f"  a sandbox started per check (no standby, no reuse): warm {median(unprepared_warm) * 1000:.0f} ms"
    )
    print(f"overhead per warm check: {(median(check_warm) - median(direct_warm)) * 1000:.0f} ms")
    print(
        f"ratio check_synthetic/direct: cold {check_cold / direct_cold:.2f}  warm "
        f"{median(check_warm) / median(direct_warm):.2f}"
    )


if __name__ == "__main__":
    main()
