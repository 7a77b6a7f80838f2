"""Cold start and memory of each function: process start + import + first invocation, as a ratio against a bare
functions-framework hello-world started the same way in the same run; plus each function process's memory.

Two columns per function, each from its own fresh process:
- "first call": the first request is a cheap real invocation (GET /health for api, an empty connector batch
  for the others), as in the figures recorded before.
- "real work": the first request is a real unit of work (a check of a loopback target, a schedule tick, the
  aggregate sweep, one alert sent to a loopback webhook, a cleanup dry run, GET /monitors with an API key),
  checked for having done that work.
Each request is sent once the function's port accepts connections; the clock runs from process start. Every
sample is paired with a hello-world start just before it, and the ratio is the median of the paired ratios.

Memory: functions-framework imports the handler in a gunicorn master, which forks the one worker that serves.
Read once the request was answered: the worker's RSS after the first call and after the real work, the
master's RSS, and the PSS of both summed after the real work (shared pages counted once: what the function
adds to the machine).

    .venv/bin/python bench/cold_start.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402
import psycopg  # noqa: E402
from psycopg.types.json import Jsonb  # noqa: E402

from bench.harness import embedded_environment  # noqa: E402
from openfaas.local.runtime import function_command  # noqa: E402
from openfaas.local.services import free_port  # noqa: E402
from openfaas.local.stack import StackFunction, stack_functions  # noqa: E402
from shared import auth  # noqa: E402

HELLO = 'async def handle(request):\n    return "ok"\n'
# A first request each function answers without side effects worth having.
FIRST_CALL = {"api": ("GET", "/health", None), "default": ("POST", "/", {"messages": []})}


class Loopback:
    """HTTP target, TCP port and webhook receiver on 127.0.0.1: answers 200 and counts the POSTs it gets."""

    def __init__(self) -> None:
        self.posts = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def do_GET(self) -> None:  # noqa: N802
                self._answer()

            def do_POST(self) -> None:  # noqa: N802
                owner.posts += 1
                self._answer()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"


@dataclass
class RealWork:
    """One real unit of work: a request to send (built afresh per run) and a check that it did the work."""

    request: Callable[[], tuple[str, str, dict | None, dict[str, str]]]
    done: Callable[[httpx.Response], bool]


def _check_is_up(response: httpx.Response) -> bool:
    return response.status_code == 200 and response.json().get("status") == "up"


def _seed_alert(database_url: str, webhook_url: str) -> dict:
    """A monitor whose alert goes to a loopback webhook provider, and one unsent failure alert event."""
    from shared import notify
    from shared.security import key_ring, provider_binding

    stored = notify.validate_provider_config("webhook", {"url": webhook_url})
    with psycopg.connect(database_url, autocommit=True) as conn:
        project = conn.execute("select id from projects where is_default").fetchone()[0]
        provider = conn.execute(
            """insert into notification_providers (project_id, name, type, config_encrypted, config_masked)
               values (%s, %s, 'webhook', %s, %s) returning id""",
            (
                project,
                f"hook-{uuid.uuid4().hex[:8]}",
                key_ring().encrypt(json.dumps(stored), provider_binding(project)),
                Jsonb(notify.masked_config("webhook", stored)),
            ),
        ).fetchone()[0]
        alert_config = {"enabled": True, "notificationProviders": [str(provider)]}
        monitor = conn.execute(
            """insert into monitors (project_id, name, type, target, frequency_minutes, alert_config)
               values (%s, 'Cold start', 'http_request', 'https://shop.example.net/', 5, %s) returning id""",
            (project, Jsonb(alert_config)),
        ).fetchone()[0]
        run = conn.execute(
            """insert into runs (monitor_id, scheduled_at, expected_locations, deadline)
               values (%s, now(), '{us-east}', now()) returning id""",
            (monitor,),
        ).fetchone()[0]
        payload = {
            "projectName": "Default",
            "monitorName": "Cold start",
            "monitorType": "http_request",
            "target": "https://shop.example.net/",
            "status": "down",
            "locationsDown": 1,
            "locationsTotal": 1,
            "time": "2026-03-02T09:00:00+00:00",
        }
        event = conn.execute(
            """insert into alert_events (monitor_id, run_id, kind, payload)
               values (%s, %s, 'failure', %s) returning id""",
            (monitor, run, Jsonb(payload)),
        ).fetchone()[0]
    data = {"v": 1, "kind": "alert", "alert_event_id": str(event), "run_id": str(run)}
    return {
        "messages": [{"id": "1-0", "data": {**data, "monitor_id": str(monitor), "alert_kind": "failure"}}]
    }


def _api_key(database_url: str) -> str:
    key = auth.new_key()
    with psycopg.connect(database_url, autocommit=True) as conn:
        project = conn.execute("select id from projects where is_default").fetchone()[0]
        conn.execute(
            "insert into api_keys (project_id, name, prefix, key_hash) values (%s, 'cold start', %s, %s)",
            (project, auth.key_prefix(key), auth.key_hash(key)),
        )
    return key


def real_work(database_url: str, target: Loopback) -> dict[str, RealWork]:
    key = _api_key(database_url)
    before_posts: list[int] = []

    def alert_request():
        before_posts[:] = [target.posts]
        return "POST", "/", _seed_alert(database_url, target.url + "hook"), {}

    def alert_done(response: httpx.Response) -> bool:
        return (
            response.status_code == 200
            and response.json().get("sent") == 1
            and target.posts > before_posts[0]
        )

    def direct(check: dict) -> Callable[[], tuple]:
        return lambda: ("POST", "/", check, {})

    ok = lambda response: response.status_code == 200  # noqa: E731
    return {
        "check-http": RealWork(direct({"type": "http_request", "target": target.url}), _check_is_up),
        "check-port": RealWork(
            direct({"type": "port_check", "target": "127.0.0.1", "config": {"port": target.port}}),
            _check_is_up,
        ),
        "check-ping": RealWork(
            direct({"type": "ping_host", "target": "127.0.0.1", "config": {"count": 1}}), _check_is_up
        ),
        "schedule": RealWork(lambda: ("POST", "/", None, {}), ok),
        "aggregate": RealWork(lambda: ("POST", "/", None, {}), ok),
        "alert": RealWork(alert_request, alert_done),
        "cleanup": RealWork(lambda: ("POST", "/", {"dryRun": True}, {}), ok),
        "api": RealWork(
            lambda: ("GET", "/monitors", None, {"Authorization": f"Bearer {key}"}),
            lambda response: response.status_code == 200 and "data" in response.json(),
        ),
        # Left out: a journey needs Chromium, which this machine lacks; with it, Chromium's own start
        # (about a second) would dwarf the function's.
    }


def _status_kb(pid: int, field: str) -> int:
    path = f"/proc/{pid}/smaps_rollup" if field == "Pss:" else f"/proc/{pid}/status"
    for line in Path(path).read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1])
    return 0


@dataclass
class Memory:
    worker_rss: float
    master_rss: float
    pss_total: float

    @property
    def largest_rss(self) -> float:
        return max(self.worker_rss, self.master_rss)


def memory_mb(master: int) -> Memory:
    """gunicorn's master imports the handler, then forks the worker that serves: most pages are shared, so the
    PSS sum (shared pages split between the two) is what the function adds to the machine."""
    workers = [
        int(pid)
        for pid in subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True).stdout.split()
    ]
    return Memory(
        worker_rss=max((_status_kb(pid, "VmRSS:") for pid in workers), default=0) / 1024,
        master_rss=_status_kb(master, "VmRSS:") / 1024,
        pss_total=sum(_status_kb(pid, "Pss:") for pid in [master, *workers]) / 1024,
    )


def cold(
    function: StackFunction, request: tuple, done: Callable[[httpx.Response], bool]
) -> tuple[float, Memory]:
    """Process start to the answer of its first request, which is sent once the port accepts connections.

    Waiting on the port rather than retrying the request keeps the bench's own CPU (a new HTTP client per try)
    off the two cores the starting function needs; hello-world is measured the same way.
    """
    method, path, body, headers = request
    port = free_port()
    with httpx.Client(timeout=60) as client:
        started = time.perf_counter()
        process = subprocess.Popen(
            function_command(function, port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if process.poll() is not None:
                        raise RuntimeError(f"{function.name} exited with {process.returncode}") from None
                    time.sleep(0.005)
            response = client.request(method, f"http://127.0.0.1:{port}{path}", json=body, headers=headers)
            elapsed = time.perf_counter() - started
            if not done(response):
                raise RuntimeError(
                    f"{function.name}: {method} {path} answered {response.status_code} {response.text}"
                )
            return elapsed, memory_mb(process.pid)
        finally:
            process.terminate()
            process.wait(10)


def cold_start(function: StackFunction) -> tuple[float, Memory]:
    """The first request is the cheap one of FIRST_CALL."""
    method, path, body = FIRST_CALL.get(function.name, FIRST_CALL["default"])
    return cold(function, (method, path, body, {}), lambda response: response.status_code < 500)


def cold_real_work(function: StackFunction, work: RealWork) -> tuple[float, Memory]:
    """The first request is a real unit of work, checked for having been done."""
    return cold(function, work.request(), work.done)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", help="comma-separated function names (default: every function)")
    args = parser.parse_args()
    # Loopback targets and the webhook receiver are internal addresses; the bench allows them on purpose.
    with embedded_environment("cold", ALLOW_INTERNAL_TARGETS="true") as environment:
        target = Loopback()
        work = real_work(environment.database_url, target)
        hello_dir = Path(tempfile.mkdtemp(prefix="sc-hello-"))
        (hello_dir / "main.py").write_text(HELLO)
        hello = StackFunction("hello", hello_dir, "python3-functions-framework")
        functions = [f for f in stack_functions() if f.name != "check-synthetic"] + [
            f for f in stack_functions() if f.name == "check-synthetic"
        ]
        if args.only:
            functions = [f for f in functions if f.name in args.only.split(",")]
            if not functions:
                parser.error(f"--only {args.only}: no such function in stack.yml")
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"load average at start: {load}")
        # One untimed pass first: every figure is then for warm disk caches and compiled bytecode.
        for function in [hello, *functions]:
            cold_start(function)
            if function.name in work:
                cold_real_work(function, work[function.name])
        print(
            f"{'function':<16} {'first call':>10} {'ratio':>6} {'real work':>10} {'ratio':>6} "
            f"{'worker RSS':>10} {'after work':>10} {'master RSS':>10} {'PSS sum':>8}\n"
            f"{'':<16} {'':>10} {'':>6} {'':>10} {'':>6} {'1st call':>10} {'':>10} {'':>10} {'(work)':>8}"
        )
        hello_seconds, first_ratios, real_ratios, worst_rss = [], [], [], 0.0
        rows = []
        for function in functions:
            # Each sample is paired with a hello-world started just before it: the machine is shared, and
            # its load drifts more over a run than between two starts.
            firsts, reals, first_ratio, real_ratio = [], [], [], []
            for _ in range(args.repeat):
                baseline, hello_memory = cold_start(hello)
                hello_seconds.append(baseline)
                firsts.append(cold_start(function))
                first_ratio.append(firsts[-1][0] / baseline)
                if function.name in work:
                    reals.append(cold_real_work(function, work[function.name]))
                    real_ratio.append(reals[-1][0] / baseline)
            seconds = statistics.median(r[0] for r in firsts)
            memory = max((r[1] for r in firsts), key=lambda m: m.largest_rss)
            first_ratios.append(statistics.median(first_ratio))
            worst_rss = max(worst_rss, memory.largest_rss)
            if reals:
                real_seconds = statistics.median(r[0] for r in reals)
                real_memory = max((r[1] for r in reals), key=lambda m: m.largest_rss)
                real_ratios.append(statistics.median(real_ratio))
                worst_rss = max(worst_rss, real_memory.largest_rss)
                real = f"{real_seconds * 1000:7.0f} ms {real_ratios[-1]:6.2f}"
                after, pss = f"{real_memory.worker_rss:7.1f} MB", real_memory.pss_total
            else:
                real, after, pss = f"{'n/a':>10} {'':>6}", f"{'n/a':>10}", memory.pss_total
            rows.append(
                f"{function.name:<16} {seconds * 1000:7.0f} ms {first_ratios[-1]:6.2f} {real} "
                f"{memory.worker_rss:7.1f} MB {after} {memory.master_rss:7.1f} MB {pss:5.1f} MB"
            )
        print(
            f"{'hello-world':<16} {statistics.median(hello_seconds) * 1000:7.0f} ms {1.0:6.2f} {'':>10} {'':>6} "
            f"{hello_memory.worker_rss:7.1f} MB {'':>10} {hello_memory.master_rss:7.1f} MB "
            f"{hello_memory.pss_total:5.1f} MB"
        )
        print("\n".join(rows))
        print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        print(f"largest RSS of a function process (master or worker): {worst_rss:.1f} MB")
        if real_ratios:
            print(f"worst real-work ratio against hello-world: {max(real_ratios):.2f}")
        print(f"worst first-call ratio against hello-world: {max(first_ratios):.2f}")


if __name__ == "__main__":
    main()
