"""Cold start and memory of each function: process start + import + first invocation, as a ratio against a bare
functions-framework hello-world started the same way in the same run; plus each function process's RSS.

    .venv/bin/python bench/cold_start.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402

from bench.harness import embedded_environment  # noqa: E402
from openfaas.local.runtime import function_command  # noqa: E402
from openfaas.local.services import free_port  # noqa: E402
from openfaas.local.stack import StackFunction, stack_functions  # noqa: E402

HELLO = 'async def handle(request):\n    return "ok"\n'
# A first request each function answers without side effects worth having.
FIRST_CALL = {"api": ("GET", "/health", None), "default": ("POST", "/", {"messages": []})}


def rss_mb(pid: int) -> float:
    """The largest resident set among the function's processes: functions-framework serves from a gunicorn
    worker forked from a master that already imported the handler, so their pages are mostly shared."""
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    sizes = []
    for each in [pid, *map(int, children)]:
        for line in Path(f"/proc/{each}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                sizes.append(int(line.split()[1]) / 1024)
    return max(sizes)


def cold_start(function: StackFunction) -> tuple[float, float]:
    port = free_port()
    started = time.perf_counter()
    process = subprocess.Popen(
        function_command(function, port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    method, path, body = FIRST_CALL.get(function.name, FIRST_CALL["default"])
    try:
        while True:
            try:
                response = httpx.request(method, f"http://127.0.0.1:{port}{path}", json=body, timeout=30)
                if response.status_code < 500:
                    break
            except httpx.TransportError:
                time.sleep(0.01)
        elapsed = time.perf_counter() - started
        return elapsed, rss_mb(process.pid)
    finally:
        process.terminate()
        process.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with embedded_environment("cold"):
        hello_dir = Path(tempfile.mkdtemp(prefix="sc-hello-"))
        (hello_dir / "main.py").write_text(HELLO)
        hello = StackFunction("hello", hello_dir, "python3-functions-framework")
        functions = [f for f in stack_functions() if f.name != "check-synthetic"] + [
            f for f in stack_functions() if f.name == "check-synthetic"
        ]
        baseline = statistics.median(cold_start(hello)[0] for _ in range(args.repeat))
        _, hello_rss = cold_start(hello)
        print(f"{'function':<16} {'cold start':>10} {'ratio':>6} {'RSS':>8}")
        print(f"{'hello-world':<16} {baseline * 1000:8.0f} ms {1.0:6.2f} {hello_rss:6.1f} MB")
        ratios, worst_rss = [], 0.0
        for function in functions:
            runs = [cold_start(function) for _ in range(args.repeat)]
            seconds = statistics.median(r[0] for r in runs)
            memory = max(r[1] for r in runs)
            ratios.append(seconds / baseline)
            worst_rss = max(worst_rss, memory)
            print(f"{function.name:<16} {seconds * 1000:8.0f} ms {seconds / baseline:6.2f} {memory:6.1f} MB")
        print(f"largest RSS: {worst_rss:.1f} MB")
        print(f"worst cold-start ratio against hello-world: {max(ratios):.2f}")


if __name__ == "__main__":
    main()
