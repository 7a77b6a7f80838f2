"""The throwaway process that runs one synthetic test script against the warm Chromium, then writes its artifacts.

Started by shared.synthetic.runner as `python -I sandbox.py` with a clean environment and resource limits, often
ahead of time as a standby. It imports nothing from the project (only the standard library and Playwright), so
none of the function's configuration code or credentials is ever loaded here. The job arrives as JSON on stdin:

    {"script": str, "variables": {name: value}, "endpoint": "ws://127.0.0.1:.../devtools/browser/...",
     "timeoutMs": int, "retries": int}

It writes into its working directory: result.json, trace.zip, screenshot.png. The script's own print()s go to
stdout, which the parent captures. The parent masks secrets in everything; this process is not trusted to.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import linecache
import os
import signal
import sys
import time
import traceback
from pathlib import Path

RESULT_FILE = "result.json"
TRACE_FILE = "trace.zip"
SCREENSHOT_FILE = "screenshot.png"
_MAX_LISTED = 50  # console errors / failed requests kept; a noisy page must not bloat the result
_ARTIFACT_TIMEOUT_MS = 10_000
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """If the function process dies, so does this one (and so its script cannot outlive the check)."""
    parent = os.getppid()
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


SCRIPT_FILENAME = "<synthetic test>"


def load_run(script: str):
    # Registered so that tracebacks show the script's own lines.
    linecache.cache[SCRIPT_FILENAME] = (len(script), None, script.splitlines(True), SCRIPT_FILENAME)
    namespace: dict = {"__name__": "synthetic_test"}
    exec(compile(script, SCRIPT_FILENAME, "exec"), namespace)
    run = namespace.get("run")
    if run is None or not asyncio.iscoroutinefunction(run):
        raise TypeError("the script must define async def run(page, context, variables)")
    return run


def print_script_traceback(error: BaseException) -> None:
    """The script's frames only: Playwright's internals say nothing to the person who wrote the test."""
    frames = [
        frame for frame in traceback.extract_tb(error.__traceback__) if frame.filename == SCRIPT_FILENAME
    ]
    lines = traceback.format_list(frames) + traceback.format_exception_only(type(error), error)
    print("Traceback (the script's frames):\n" + "".join(lines), end="", file=sys.stderr)


def describe(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    name = type(error).__name__
    return text if text.startswith(name) else f"{name}: {text}"


class Observer:
    """Collects console errors, uncaught page errors and failed requests from every page of a context."""

    def __init__(self) -> None:
        self.console_errors: list[dict] = []
        self.failed_requests: list[dict] = []

    def attach(self, context) -> None:
        context.on("page", self._watch_page)
        context.on("requestfailed", self._request_failed)
        context.on("response", self._response)

    def _watch_page(self, page) -> None:
        page.on("console", self._console)
        page.on("pageerror", self._page_error)

    def _keep(self, bucket: list[dict], entry: dict) -> None:
        if len(bucket) < _MAX_LISTED:
            bucket.append(entry)

    def _console(self, message) -> None:
        if message.type == "error":
            location = message.location or {}
            self._keep(
                self.console_errors,
                {"type": "console", "text": message.text, "url": location.get("url") or ""},
            )

    def _page_error(self, error) -> None:
        self._keep(self.console_errors, {"type": "pageerror", "text": str(error), "url": ""})

    def _request_failed(self, request) -> None:
        self._keep(
            self.failed_requests,
            {"url": request.url, "method": request.method, "failure": request.failure or "failed"},
        )

    def _response(self, response) -> None:
        if response.status >= 400:
            self._keep(
                self.failed_requests,
                {
                    "url": response.url,
                    "method": response.request.method,
                    "failure": f"HTTP {response.status}",
                },
            )


async def attempt(browser, run, variables: dict, timeout_ms: int, workdir: Path) -> dict:
    context = await browser.new_context()
    context.set_default_timeout(min(30_000, timeout_ms))
    observer = Observer()
    observer.attach(context)
    await context.tracing.start(screenshots=True, snapshots=True)
    page = await context.new_page()
    status, error = "passed", None
    started = time.perf_counter()
    try:
        await asyncio.wait_for(run(page, context, dict(variables)), timeout_ms / 1000)
    except TimeoutError:
        status, error = "timeout", f"Script exceeded its timeout of {timeout_ms} ms"
    except Exception as failure:  # the script's own failure is the test's verdict, not a crash
        status, error = "failed", describe(failure)
        print_script_traceback(failure)
    run_ms = (time.perf_counter() - started) * 1000
    await finish_artifacts(context, page, workdir)
    return {
        "status": status,
        "error": error,
        "runMs": run_ms,
        "consoleErrors": observer.console_errors,
        "failedRequests": observer.failed_requests,
    }


async def finish_artifacts(context, page, workdir: Path) -> None:
    """The final screenshot and the trace; each is best effort, since the page may be hung or closed."""
    open_pages = [p for p in context.pages if not p.is_closed()]
    target = page if not page.is_closed() else (open_pages[-1] if open_pages else None)
    if target is not None:
        try:
            await target.screenshot(path=str(workdir / SCREENSHOT_FILE), timeout=_ARTIFACT_TIMEOUT_MS)
        except Exception as failure:
            print(f"[sandbox] final screenshot failed: {describe(failure)}", file=sys.stderr)
    try:
        await asyncio.wait_for(
            context.tracing.stop(path=str(workdir / TRACE_FILE)), _ARTIFACT_TIMEOUT_MS / 1000
        )
    except Exception as failure:
        print(f"[sandbox] saving the trace failed: {describe(failure)}", file=sys.stderr)
    try:
        await asyncio.wait_for(context.close(), _ARTIFACT_TIMEOUT_MS / 1000)
    except Exception:
        pass


async def run_job(playwright, job: dict, workdir: Path) -> dict:
    try:
        run = load_run(job["script"])
    except Exception as failure:
        print_script_traceback(failure)
        return {"status": "failed", "error": f"the script could not load: {describe(failure)}", "attempts": 0}
    browser = await playwright.chromium.connect_over_cdp(job["endpoint"], timeout=30_000)
    outcome: dict = {}
    attempts, run_ms = 0, 0.0
    for attempts in range(1, job.get("retries", 0) + 2):
        outcome = await attempt(browser, run, job.get("variables") or {}, job["timeoutMs"], workdir)
        run_ms += outcome.pop("runMs")
        if outcome["status"] == "passed":
            break
        print(f"[sandbox] attempt {attempts} {outcome['status']}: {outcome['error']}", file=sys.stderr)
    outcome["attempts"] = attempts
    outcome["durationMs"] = round(run_ms)  # the script's own execution time, as the check's response time
    return outcome


async def main(workdir: Path) -> dict | None:
    from playwright.async_api import async_playwright

    # Started before the job arrives: a standby sandbox has Playwright's Node driver up (most of a second)
    # by the time a check needs it.
    playwright = await async_playwright().start()
    raw = await asyncio.to_thread(sys.stdin.read)
    if not raw.strip():
        return None  # a standby that was never used
    return await run_job(playwright, json.loads(raw), workdir)


def entry() -> None:
    die_with_parent()
    workdir = Path.cwd()
    try:
        result = asyncio.run(main(workdir))
    except Exception as failure:
        traceback.print_exc()
        result = {"status": "error", "error": f"sandbox failed: {describe(failure)}"}
    if result is not None:
        (workdir / RESULT_FILE).write_text(json.dumps(result))
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter teardown: a script may have left threads or handles that would keep us alive.
    os._exit(0)


if __name__ == "__main__":
    entry()
