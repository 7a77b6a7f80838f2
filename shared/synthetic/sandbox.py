"""The throwaway process that runs one synthetic test script in a Chromium of its own, then writes its artifacts.

Started by shared.synthetic.runner as `python -I sandbox.py '<setup JSON>'` with a clean environment and resource
limits, usually ahead of time as a standby. Before it reads its job it shuts itself off (shared/synthetic/confine.py,
loaded by path): as root it switches to its own unprivileged uid; with Landlock it may read only the system, the
interpreter and its working directory, and connect only to the function's vetting proxy. Then it launches its
Chromium (over a pipe only this process holds, with Chromium's own sandbox where the kernel allows it). It imports
nothing from the project, so none of the function's configuration code or credentials is ever loaded here.

    setup: {"uid": int|null, "gid": int|null, "landlock": bool, "landlockNetwork": bool, "proxyPort": int,
            "chromium": path, "flags": [str], "readOnly": [path], "resultFd": int}
    job (a line on stdin): {"script": str, "variables": {name: value}, "timeoutMs": int, "retries": int,
                            "folder": name, "traceScreenshots": bool}

For each job it writes trace.zip and screenshot.png into the job's folder under its working directory, and the
result as one JSON line on the results pipe (fd `resultFd`). The script's own print()s go to stdout, which the
parent captures. The parent masks secrets in everything; this process is not trusted to.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import importlib.util
import json
import linecache
import os
import signal
import sys
import time
import traceback
from pathlib import Path

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


def action_timeout_ms(script_timeout_ms: int) -> int:
    """How long one action (a click, a navigation) waits. Shorter than the script's whole budget, so an action
    that waits in vain (a selector that never appears) fails as the step it is: `down` with Playwright's error,
    as the seed's "Element not found" is. `timeout` stays for a journey that overruns its whole budget."""
    margin = max(1_000, script_timeout_ms // 10)
    return max(500, min(30_000, script_timeout_ms - margin))


async def attempt(browser, run, job: dict, workdir: Path) -> dict:
    variables, timeout_ms = job.get("variables") or {}, job["timeoutMs"]
    context = await browser.new_context()
    context.set_default_timeout(action_timeout_ms(timeout_ms))
    observer = Observer()
    observer.attach(context)
    # The screencast filmstrip is off unless asked for: it slows a journey by half; snapshots show each step.
    await context.tracing.start(screenshots=bool(job.get("traceScreenshots")), snapshots=True)
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


async def run_job(browser, job: dict, workdir: Path) -> dict:
    try:
        run = load_run(job["script"])
    except Exception as failure:
        print_script_traceback(failure)
        return {"status": "failed", "error": f"the script could not load: {describe(failure)}", "attempts": 0}
    outcome: dict = {}
    attempts, run_ms = 0, 0.0
    for attempts in range(1, job.get("retries", 0) + 2):
        outcome = await attempt(browser, run, job, workdir)
        run_ms += outcome.pop("runMs")
        if outcome["status"] == "passed":
            break
        print(f"[sandbox] attempt {attempts} {outcome['status']}: {outcome['error']}", file=sys.stderr)
    outcome["attempts"] = attempts
    outcome["durationMs"] = round(run_ms)  # the script's own execution time, as the check's response time
    return outcome


def load_confine():
    path = Path(__file__).with_name("confine.py")
    spec = importlib.util.spec_from_file_location("sandbox_confine", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def confine_self(setup: dict, workdir: Path) -> None:
    """Everything that keeps the script from the function; raises (and so runs no script) if any part fails."""
    confine = load_confine()
    import playwright  # its package folder must stay readable after the switch

    read_only = [str(Path(playwright.__file__).parent), *setup.get("readOnly", [])]
    if setup.get("uid") is not None:
        read_only += confine.keep_import_paths_reachable()
        confine.drop_privileges(setup["uid"], setup["gid"])
        confine.make_dumpable()
    else:
        read_only += [entry for entry in sys.path if entry and os.path.isdir(entry)]
        if setup.get("landlock"):
            confine.shed_capabilities()
    if setup.get("landlock"):
        confine.landlock_confine(
            workdir,
            read_only,
            connect_port=setup["proxyPort"],
            require_network=setup.get("landlockNetwork", True),
        )
    # Errors from here on are the isolation's: the sandbox reports them and runs no script.
    setup["chromiumSandboxProblem"] = (
        confine.user_namespaces_available() if os.getuid() else "running as root"
    )


async def launch_browser(playwright, setup: dict):
    """Chromium with its own sandbox if user namespaces work here, else without it, saying why."""
    problem = setup.get("chromiumSandboxProblem")
    options = {
        "executable_path": setup["chromium"],
        "args": list(setup["flags"]) + [f"--proxy-server=socks5://127.0.0.1:{setup['proxyPort']}"],
        "timeout": 30_000,
    }
    if problem is None:
        try:
            return await playwright.chromium.launch(chromium_sandbox=True, **options), None
        except Exception as failure:
            problem = f"Chromium did not start with its sandbox: {describe(failure).splitlines()[0]}"
    return await playwright.chromium.launch(chromium_sandbox=False, **options), problem


async def serve(workdir: Path, setup: dict, results) -> None:
    """One job per line on stdin, one result per line on the results pipe, until stdin closes.

    A sandbox serves one project only (the function binds it at its first job), so what a script leaves behind
    in this process can meet only later scripts of the same project; each job still gets fresh contexts."""
    from playwright.async_api import async_playwright

    # Started before the first job arrives: a standby sandbox has Playwright's Node driver and its Chromium up
    # (about a second and a half) by the time a check needs them.
    playwright = await async_playwright().start()
    browser, sandbox_problem = await launch_browser(playwright, setup)
    while raw := await asyncio.to_thread(sys.stdin.readline):
        job = json.loads(raw)
        folder = workdir / job["folder"]
        folder.mkdir()
        try:
            if not browser.is_connected():  # an earlier script closed it
                browser, sandbox_problem = await launch_browser(playwright, setup)
            result = await run_job(browser, job, folder)
        except Exception as failure:
            traceback.print_exc()
            result = {"status": "error", "error": f"sandbox failed: {describe(failure)}"}
        result["chromiumSandbox"] = sandbox_problem or "on"
        report(results, result)


def report(results, result: dict) -> None:
    with contextlib.suppress(OSError):
        results.write(json.dumps(result) + "\n")
        results.flush()


def entry() -> None:
    die_with_parent()
    workdir = Path.cwd()
    setup = json.loads(sys.argv[1])
    results = os.fdopen(setup["resultFd"], "w")
    try:
        confine_self(setup, workdir)
        die_with_parent()  # again: a change of uid clears the parent-death signal
    except Exception as failure:  # run no script: say why instead
        report(
            results,
            {"status": "error", "error": f"the sandbox could not isolate itself: {describe(failure)}"},
        )
    else:
        try:
            asyncio.run(serve(workdir, setup, results))
        except Exception as failure:
            traceback.print_exc()
            report(results, {"status": "error", "error": f"sandbox failed: {describe(failure)}"})
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter teardown: a script may have left threads or handles that would keep us alive.
    os._exit(0)


if __name__ == "__main__":
    entry()
