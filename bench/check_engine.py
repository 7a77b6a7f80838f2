"""HTTP checks per second through the check core, against Prometheus' blackbox_exporter (module http_2xx)
probing the same loopback target at the same concurrency, in the same run. Prints the ratio last.

Both sides open a new connection per check and judge the answer: ours runs `run_check` on an http_request job
(status spec and a keyword assertion), blackbox_exporter runs its http prober (2xx) via GET /probe.

    bench/setup_blackbox.sh          # once: apt-get install prometheus-blackbox-exporter
    .venv/bin/python bench/check_engine.py [--checks 3000] [--concurrency 50] [--rounds 5] [--processes N]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from openfaas.local.services import free_port, wait_for_port  # noqa: E402

BLACKBOX = "prometheus-blackbox-exporter"
BLACKBOX_CONFIG = """modules:
  http_2xx:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
"""


def start_target() -> tuple[subprocess.Popen, str]:
    """The loopback target in its own process, so neither side shares a core's GIL with it."""
    root = str(Path(__file__).resolve().parents[1])
    code = (
        f"import time, sys; sys.path.insert(0, {root!r}); from bench.loopback_target import start_in_thread; "
        "print(start_in_thread(), flush=True); time.sleep(10**9)"
    )
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    return process, process.stdout.readline().strip()


def _our_job(target: str):
    from shared.checks.spec import CheckTrial
    from shared.models import CheckJob

    config = CheckTrial.model_validate(
        {
            "type": "http_request",
            "target": target,
            "config": {"keywordInBody": "ok", "expectedStatusCodes": "2xx"},
        }
    ).config
    now = datetime.now(UTC)
    return CheckJob(
        run_id=uuid.uuid4(),
        monitor_id=uuid.uuid4(),
        location="bench",
        type="http_request",
        target=target,
        config=config,
        scheduled_at=now,
        deadline=now,
    )


async def _our_checks(job, checks: int, concurrency: int) -> int:
    from shared.checks import run_check

    remaining = checks
    up = 0

    async def worker() -> None:
        nonlocal remaining, up
        while remaining > 0:
            remaining -= 1
            outcome = await run_check(job)
            up += outcome.status == "up"

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return up


def _our_process(target: str, checks: int, concurrency: int, ready, start, results) -> None:
    os.environ["ALLOW_INTERNAL_TARGETS"] = "true"
    job = _our_job(target)  # imports and validation happen before the clock starts
    ready.put(True)
    start.wait()
    results.put(asyncio.run(_our_checks(job, checks, concurrency)))


def our_rate(target: str, checks: int, concurrency: int, processes: int) -> float:
    """Checks/s; with several processes, concurrency and checks are split evenly (as function replicas would)."""
    ready, results, start = multiprocessing.Queue(), multiprocessing.Queue(), multiprocessing.Event()
    share = checks // processes
    workers = [
        multiprocessing.Process(
            target=_our_process, args=(target, share, concurrency // processes, ready, start, results)
        )
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    for _ in workers:
        ready.get()
    started = time.perf_counter()
    start.set()
    up = sum(results.get() for _ in workers)
    elapsed = time.perf_counter() - started
    for worker in workers:
        worker.join()
    assert up == share * processes, f"only {up}/{share * processes} checks were up"
    return share * processes / elapsed


async def _probe_all(exporter_port: int, target: str, checks: int, concurrency: int) -> int:
    """Drives /probe over keep-alive connections with minimal parsing, so the driver costs little."""
    request = (
        f"GET /probe?module=http_2xx&target={target} HTTP/1.1\r\nHost: 127.0.0.1:{exporter_port}\r\n\r\n"
    ).encode()
    remaining = checks
    up = 0

    async def worker() -> None:
        nonlocal remaining, up
        reader, writer = await asyncio.open_connection("127.0.0.1", exporter_port)
        while remaining > 0:
            remaining -= 1
            writer.write(request)
            head = (await reader.readuntil(b"\r\n\r\n")).lower()
            if b"content-length:" in head:
                body = await reader.readexactly(int(head.split(b"content-length:")[1].split(b"\r\n")[0]))
            else:  # chunked
                body = b""
                while size := int((await reader.readuntil(b"\r\n")).strip(), 16):
                    body += (await reader.readexactly(size + 2))[:-2]
                await reader.readuntil(b"\r\n")
            up += b"\nprobe_success 1" in body
        writer.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return up


def blackbox_rate(exporter_port: int, target: str, checks: int, concurrency: int) -> float:
    started = time.perf_counter()
    up = asyncio.run(_probe_all(exporter_port, target, checks, concurrency))
    elapsed = time.perf_counter() - started
    assert up == checks, f"only {up}/{checks} probes succeeded"
    return checks / elapsed


def start_blackbox(workdir: Path) -> tuple[subprocess.Popen, int]:
    binary = shutil.which(BLACKBOX)
    if binary is None:
        sys.exit(f"{BLACKBOX} is not installed: run bench/setup_blackbox.sh (apt-get) first")
    (workdir / "blackbox.yml").write_text(BLACKBOX_CONFIG)
    port = free_port()
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={workdir / 'blackbox.yml'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port("127.0.0.1", port, process=process)
    return process, port


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checks", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument(
        "--rounds", type=int, default=5, help="alternating rounds; the median of each side counts"
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=os.cpu_count() or 1,
        help="check-engine processes (function replicas); default one per core, as blackbox_exporter's Go "
        "runtime uses every core (GOMAXPROCS)",
    )
    args = parser.parse_args()

    target_process, target = start_target()
    with tempfile.TemporaryDirectory() as workdir:
        exporter, exporter_port = start_blackbox(Path(workdir))
        try:
            ours, theirs = [], []
            our_rate(target, 200, args.concurrency, args.processes)  # warm-up: imports, TLS context, caches
            blackbox_rate(exporter_port, target, 200, args.concurrency)
            for round_number in range(1, args.rounds + 1):
                ours.append(our_rate(target, args.checks, args.concurrency, args.processes))
                theirs.append(blackbox_rate(exporter_port, target, args.checks, args.concurrency))
                print(
                    f"round {round_number}: check engine {ours[-1]:7.0f} checks/s   "
                    f"blackbox_exporter {theirs[-1]:7.0f} probes/s",
                    flush=True,
                )
        finally:
            exporter.terminate()
            target_process.terminate()
            exporter.wait(10)
            target_process.wait(10)
    ours_median, theirs_median = statistics.median(ours), statistics.median(theirs)
    print(
        f"check engine ({args.processes} process(es)): {ours_median:.0f} checks/s (median of {args.rounds})"
    )
    print(f"blackbox_exporter http_2xx:   {theirs_median:.0f} probes/s (median of {args.rounds})")
    print(f"concurrency {args.concurrency}, {args.checks} checks per round, new connection per check")
    print(f"ratio (check engine / blackbox_exporter): {ours_median / theirs_median:.2f}")


if __name__ == "__main__":
    main()
