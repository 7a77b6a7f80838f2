"""Peak memory of one check process running 50 HTTP checks at once against 50 MB bodies, as a ratio against the
same 50 checks of 1 KB bodies, measured in the same run (issue 16, fault 5).

Each case runs in a fresh Python process (peak RSS only grows), against one loopback target that serves a body
of the asked size from one shared buffer, so the target's own memory does not count.

    .venv/bin/python bench/check_memory.py [--checks 50] [--mb 50]

Cases: no assertion (the body streams past), and a keyword that must read the body (it is buffered within
CHECK_BODY_BUFFER_MB, default 256 MB, so most of the 50 wait for room).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def serve(max_bytes: int) -> str:
    """A loopback target: GET /<bytes> answers that many bytes, ending in 'THE-END'."""
    payload = b"x" * max_bytes

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await reader.readuntil(b"\r\n\r\n")
            size = int(request.split(b" ", 2)[1].strip(b"/") or b"2")
            head = f"HTTP/1.1 200 OK\r\nContent-Length: {size + 7}\r\nConnection: close\r\n\r\n".encode()
            writer.write(head)
            view = memoryview(payload)
            for start in range(0, size, 1 << 20):
                writer.write(view[start : min(size, start + (1 << 20))])
                await writer.drain()
            writer.write(b"THE-END")
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()

    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from bench.loopback_target import start_in_thread

    return start_in_thread(answer=answer)


def one_case(url: str, checks: int, size: int, keyword: bool) -> None:
    """Runs in the child: the checks at once, then prints peak RSS (MB) and the statuses."""
    import uuid

    from shared.checks import run_check
    from shared.checks.credentials import Sealing
    from shared.checks.spec import CheckTrial

    project = uuid.uuid4()
    config = {"maxResponseSizeMb": 100, "timeoutSeconds": 60}  # the longest a check may take
    if keyword:
        config["keywordInBody"] = "THE-END"
    body = {"type": "http_request", "target": f"{url}{size}", "config": config}
    context = Sealing(project, passes_ciphertext=True).context()

    async def main() -> list[tuple[str, int]]:
        jobs = [CheckTrial.model_validate(body, context=context).as_job(project) for _ in range(checks)]
        outcomes = await asyncio.gather(*(run_check(job) for job in jobs))
        return [(outcome.status, outcome.details.get("bodyBytes") or 0) for outcome in outcomes]

    results = asyncio.run(main())
    statuses = [status for status, _ in results]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    summary = {"peak_mb": peak_mb, "up": statuses.count("up"), "other": sorted(set(statuses) - {"up"})}
    print(json.dumps({**summary, "read_mb": sum(size for _, size in results) / (1024 * 1024)}))


def measure(url: str, checks: int, size: int, keyword: bool) -> dict:
    env = {**os.environ, "ALLOW_INTERNAL_TARGETS": "true", "SC_CREDENTIAL_KEY": "k1:" + "A" * 43 + "="}
    env["PYTHONPATH"] = os.environ.get("PYTHONPATH", str(ROOT))
    code = f"import sys; sys.path.insert(0, {str(ROOT / 'bench')!r}); import check_memory as m; " + (
        f"m.one_case({url!r}, {checks}, {size}, {keyword})"
    )
    # -P: the code under test comes from PYTHONPATH (this checkout by default), never from the current folder
    out = subprocess.run(
        [sys.executable, "-P", "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checks", type=int, default=50)
    parser.add_argument("--mb", type=int, default=50)
    args = parser.parse_args()
    big = args.mb * 1024 * 1024
    url = serve(big)
    print(
        f"{args.checks} concurrent checks, {args.mb} MB bodies vs 1 KB bodies, peak RSS of the check process"
    )
    for keyword in (False, True):
        small = measure(url, args.checks, 1024, keyword)
        large = measure(url, args.checks, big, keyword)
        label = "keyword (body buffered)" if keyword else "no assertion (streamed)"
        print(
            f"  {label:26s} 1 KB: {small['peak_mb']:7.1f} MB   {args.mb} MB: {large['peak_mb']:7.1f} MB"
            f"   ratio {large['peak_mb'] / small['peak_mb']:5.2f}   up {large['up']}/{args.checks} {large['other']}"
        )


if __name__ == "__main__":
    main()
