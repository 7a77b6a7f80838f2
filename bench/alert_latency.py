"""Alert latency in the local stack: from a monitor's status flip (aggregate records it) to the webhook receiving the
alert, p50 and p99; as a ratio against a bare send (notify.send_to_provider to the same receiver, in one
process) measured in the same run.

    .venv/bin/python bench/alert_latency.py [--flips 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402
import psycopg  # noqa: E402

from openfaas.local.runtime import LocalStack  # noqa: E402
from openfaas.local.services import embedded_postgres, embedded_redis, free_port  # noqa: E402
from shared.migrate import apply_migrations  # noqa: E402
from shared.security import generate_key  # noqa: E402
from shared.settings import reset_settings_cache  # noqa: E402


class Loopback:
    """A switchable check target and a webhook receiver that notes the wall-clock arrival of each alert."""

    def __init__(self) -> None:
        self.status = 200
        self.arrivals: list[tuple[float, dict]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path.startswith("/hook"):
                    owner.arrivals.append((time.time(), json.loads(body)))
                    status = 200
                else:
                    status = owner.status
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            do_GET = do_POST = do_HEAD = _answer

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    def wait_for_arrivals(self, count: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.arrivals) < count:
            if time.monotonic() > deadline:
                raise SystemExit(f"alert {count} never arrived")
            time.sleep(0.002)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def bare_send_ms(receiver_url: str, sends: int) -> list[float]:
    from shared import notify

    config = notify.validate_provider_config("webhook", {"url": receiver_url})
    payload = {
        "monitorName": "bench",
        "monitorType": "http_request",
        "target": "x",
        "status": "down",
        "locationsDown": 3,
        "locationsTotal": 3,
        "time": datetime.now().astimezone().isoformat(),
    }
    message = notify.build_message("failure", payload, monitor_id="bench")

    async def run() -> list[float]:
        timings = []
        for _ in range(sends):
            started = time.perf_counter()
            result = await notify.send_to_provider("webhook", config, message)
            timings.append((time.perf_counter() - started) * 1000)
            assert result.status == "sent", result
        return timings

    return asyncio.run(run())


def flip_latencies_ms(
    stack: LocalStack, database_url: str, loopback: Loopback, flips: int
) -> tuple[list, list]:
    api = httpx.Client(base_url=f"{stack.gateway_url}/function", timeout=60)
    provider = api.post(
        "/api/notification-providers",
        json={"name": "bench", "type": "webhook", "config": {"url": loopback.url + "hook"}},
    )
    provider.raise_for_status()
    monitor = api.post(
        "/api/monitors",
        json={
            "name": "flapper",
            "type": "http",
            "target": loopback.url + "target",
            "frequencyMinutes": 60,
            "alertConfig": {"enabled": True, "notificationProviders": [provider.json()["id"]]},
        },
    )
    monitor.raise_for_status()
    monitor_id = monitor.json()["id"]
    from_flip, from_trigger = [], []
    with psycopg.connect(database_url, autocommit=True) as conn:

        def finalized() -> int:
            return conn.execute(
                "select count(*) from runs where monitor_id = %s and finalized_at is not null", (monitor_id,)
            ).fetchone()[0]

        deadline = time.monotonic() + 60
        while finalized() < 1:  # the first run, taken on creation: pending -> up, no alert
            if time.monotonic() > deadline:
                raise SystemExit("the first run never finalized")
            time.sleep(0.02)
        for flip in range(flips):
            loopback.status = 500 if flip % 2 == 0 else 200
            before = len(loopback.arrivals)
            triggered = time.time()
            api.post("/schedule", json={"monitorIds": [monitor_id]}).raise_for_status()
            loopback.wait_for_arrivals(before + 1)
            arrived, body = loopback.arrivals[before]
            expected = "Monitor Down - flapper" if flip % 2 == 0 else "Monitor Recovered - flapper"
            assert body["title"] == expected, body["title"]
            changed_at = conn.execute(
                "select changed_at from status_changes where monitor_id = %s order by id desc limit 1",
                (monitor_id,),
            ).fetchone()[0]
            from_flip.append((arrived - changed_at.timestamp()) * 1000)
            from_trigger.append((arrived - triggered) * 1000)
    return from_flip, from_trigger


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--flips", type=int, default=100)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="sc-bench-"))
    os.environ["SC_EMBEDDED_PG_FAST"] = "1"
    postgres = embedded_postgres(base / "postgres")
    redis_server = embedded_redis(base / "redis")
    os.environ.update(
        {
            "DATABASE_URL": postgres.url,
            "REDIS_URL": redis_server.url,
            "SC_CREDENTIAL_KEY": generate_key(),
            "ALLOW_INTERNAL_TARGETS": "true",
        }
    )
    reset_settings_cache()
    apply_migrations(postgres.url)
    loopback = Loopback()
    stack = LocalStack(
        env={"ALLOW_INTERNAL_TARGETS": "true", "SC_ALLOW_ANONYMOUS_LOCAL": "true"},
        log_dir=base / "logs",
        gateway_port=free_port(),
        with_cron=False,
    ).start()
    try:
        bare = bare_send_ms(loopback.url + "hook", args.flips)
        loopback.arrivals.clear()
        from_flip, from_trigger = flip_latencies_ms(stack, postgres.url, loopback, args.flips)
        print(f"flips={args.flips} (alternating down/up, 3 locations, threshold 1)")
        print(
            f"bare send (send_to_provider, one process): p50 {statistics.median(bare):.1f} ms, "
            f"p99 {percentile(bare, 0.99):.1f} ms"
        )
        print(
            f"run triggered -> webhook received: p50 {statistics.median(from_trigger):.1f} ms, "
            f"p99 {percentile(from_trigger, 0.99):.1f} ms"
        )
        print(
            f"status flip -> webhook received: p50 {statistics.median(from_flip):.1f} ms, "
            f"p99 {percentile(from_flip, 0.99):.1f} ms"
        )
        print(
            f"ratio flip->webhook p50 / bare send p50: {statistics.median(from_flip) / statistics.median(bare):.2f}"
        )
    finally:
        stack.stop()
        redis_server.stop()
        postgres.stop()


if __name__ == "__main__":
    main()
