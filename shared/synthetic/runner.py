"""Runs a script in the sandbox process: clean environment, resource limits, a hard timeout, output captured to files.
Used by the synthetic check (shared/synthetic/check.py).

The limits are set in the child between fork and exec (preexec), before a line of the script exists in it: CPU
seconds, data-segment memory, file size and open files. RLIMIT_DATA rather than RLIMIT_AS, because Playwright's
Node driver reserves gigabytes of address space it never touches. The child leads its own process group, so one
SIGKILL ends it together with the Node driver and anything the script started.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import json
import os
import resource
import shutil
import signal
import sys
import tempfile
import weakref
from dataclasses import dataclass, field
from pathlib import Path

from shared.synthetic import sandbox as sandbox_entry

SANDBOX_ENTRY = Path(sandbox_entry.__file__).resolve()
# Time beyond the script's own timeout for starting Python and Node, connecting, and saving the artifacts.
STARTUP_AND_ARTIFACTS_SECONDS = 25
_READ_TAIL_BYTES = 16 * 1024
_CLEAN_PATH = "/usr/local/bin:/usr/bin:/bin"
_PR_SET_DUMPABLE = 4


@dataclass(frozen=True)
class SandboxLimits:
    cpu_seconds: int
    memory_mb: int
    max_file_mb: int = 256
    open_files: int = 1024


@dataclass
class SandboxResult:
    status: str  # passed | failed | timeout | error
    error: str | None
    duration_ms: int
    attempts: int
    stdout: str
    stderr: str
    console_errors: list[dict] = field(default_factory=list)
    failed_requests: list[dict] = field(default_factory=list)
    workdir: Path | None = None

    @property
    def trace(self) -> Path | None:
        return self._artifact(sandbox_entry.TRACE_FILE)

    @property
    def screenshot(self) -> Path | None:
        return self._artifact(sandbox_entry.SCREENSHOT_FILE)

    def _artifact(self, name: str) -> Path | None:
        path = self.workdir / name if self.workdir else None
        return path if path and path.is_file() and path.stat().st_size > 0 else None


def hard_timeout_seconds(timeout_ms: int, retries: int) -> float:
    return timeout_ms * (retries + 1) / 1000 + STARTUP_AND_ARTIFACTS_SECONDS


def clean_environment(workdir: Path) -> dict[str, str]:
    """All the sandbox gets: no DATABASE_URL, no keys, nothing else of the function's environment."""
    return {
        "PATH": _CLEAN_PATH,
        "HOME": str(workdir),
        "TMPDIR": str(workdir),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def _limiter(limits: SandboxLimits):
    # Built before fork so that the child only makes setrlimit calls (no imports, no allocation-heavy work).
    settings = (
        # SIGXCPU at the soft limit names the cause; the hard limit's SIGKILL follows if that is ignored.
        (resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 5)),
        (resource.RLIMIT_DATA, (limits.memory_mb * 1024 * 1024,) * 2),
        (resource.RLIMIT_FSIZE, (limits.max_file_mb * 1024 * 1024,) * 2),
        (resource.RLIMIT_NOFILE, (limits.open_files,) * 2),
        (resource.RLIMIT_CORE, (0, 0)),
    )

    def apply() -> None:
        for which, soft_and_hard in settings:
            resource.setrlimit(which, soft_and_hard)

    return apply


def hide_own_memory_from_sandboxes() -> None:
    """Marks this process non-dumpable, so a script running under the same (non-root) user cannot read
    /proc/<this pid>/environ or /mem, where the function's credentials live. Root can read them regardless."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(_PR_SET_DUMPABLE, 0)


def _new_file(path: Path):
    return open(path, "wb")


def _tail(path: Path) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - _READ_TAIL_BYTES))
            return handle.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _exit_reason(returncode: int | None, stderr: str) -> str:
    if returncode is not None and returncode < 0:
        if -returncode == signal.SIGXCPU:
            return "the script exceeded its CPU time limit"
        if -returncode == signal.SIGXFSZ:
            return "the script wrote a file larger than its limit"
        return f"the sandbox was killed by signal {signal.Signals(-returncode).name}"
    if "MemoryError" in stderr or "out of memory" in stderr.lower():
        return "the script exceeded its memory limit"
    return f"the sandbox exited with code {returncode} without a result"


@dataclass(eq=False)  # identity: sandboxes are kept in a set until used
class Sandbox:
    """A started sandbox process waiting for its one job on stdin, with its own working directory."""

    process: asyncio.subprocess.Process
    workdir: Path
    limits: SandboxLimits

    def discard(self) -> None:
        _kill_group(self.process.pid)
        shutil.rmtree(self.workdir, ignore_errors=True)


async def start_sandbox(limits: SandboxLimits) -> Sandbox:
    workdir = Path(tempfile.mkdtemp(prefix="sc-synthetic-"))
    hide_own_memory_from_sandboxes()
    # Files, not pipes: a script printing without end fills a pipe and stalls, but hits RLIMIT_FSIZE on a file.
    with _new_file(workdir / "stdout.txt") as stdout, _new_file(workdir / "stderr.txt") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-I",  # isolated: ignores PYTHON* variables, the user site and the working directory on sys.path
            str(SANDBOX_ENTRY),
            stdin=asyncio.subprocess.PIPE,
            stdout=stdout,
            stderr=stderr,
            cwd=workdir,
            env=clean_environment(workdir),
            start_new_session=True,
            preexec_fn=_limiter(limits),
        )
    return Sandbox(process, workdir, limits)


class StandbySandboxes:
    """Keeps one sandbox started ahead per event loop, so a check skips Python's and Node's start-up (~1 s).

    Each sandbox still serves exactly one job; taking the standby starts its replacement in the background.
    """

    def __init__(self) -> None:
        self._ready: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task] = (
            weakref.WeakKeyDictionary()
        )
        self._started: set[Sandbox] = set()
        atexit.register(self.discard_all)

    async def _start(self, limits: SandboxLimits) -> Sandbox:
        sandbox = await start_sandbox(limits)
        self._started.add(sandbox)
        return sandbox

    async def take(self, limits: SandboxLimits) -> Sandbox:
        loop = asyncio.get_running_loop()
        waiting = self._ready.pop(loop, None)
        sandbox = None
        if waiting is not None:
            with contextlib.suppress(Exception):
                sandbox = await waiting
            if sandbox is not None and (sandbox.limits != limits or sandbox.process.returncode is not None):
                self._forget(sandbox).discard()
                sandbox = None
        if sandbox is None:
            sandbox = await self._start(limits)
        self._ready[loop] = loop.create_task(self._start(limits))
        return self._forget(sandbox)

    def _forget(self, sandbox: Sandbox) -> Sandbox:
        self._started.discard(sandbox)
        return sandbox

    def discard_all(self) -> None:
        for sandbox in list(self._started):
            self._forget(sandbox).discard()


async def run_in_sandbox(
    sandbox: Sandbox,
    *,
    script: str,
    variables: dict[str, str],
    endpoint: str,
    timeout_ms: int,
    retries: int,
) -> SandboxResult:
    """Never raises for anything the script does; the caller removes sandbox.workdir afterwards."""
    workdir, process = sandbox.workdir, sandbox.process
    job = json.dumps(
        {
            "script": script,
            "variables": variables,
            "endpoint": endpoint,
            "timeoutMs": timeout_ms,
            "retries": retries,
        }
    ).encode()
    hard_timeout = hard_timeout_seconds(timeout_ms, retries)
    loop = asyncio.get_running_loop()
    started = loop.time()
    timed_out = False
    try:
        try:
            await asyncio.wait_for(process.communicate(job), hard_timeout)
        except TimeoutError:
            timed_out = True
    finally:
        _kill_group(process.pid)  # also ends anything the script left running, on success or cancellation
        with contextlib.suppress(ProcessLookupError):
            await process.wait()
    elapsed_ms = round((loop.time() - started) * 1000)
    out, err = _tail(workdir / "stdout.txt"), _tail(workdir / "stderr.txt")
    if timed_out:
        return SandboxResult(
            "timeout",
            f"Script killed after the hard timeout of {hard_timeout:.0f}s",
            elapsed_ms,
            0,
            out,
            err,
            workdir=workdir,
        )
    try:
        result = json.loads((workdir / sandbox_entry.RESULT_FILE).read_text())
    except (OSError, ValueError):
        return SandboxResult(
            "error", _exit_reason(process.returncode, err), elapsed_ms, 0, out, err, workdir=workdir
        )
    return SandboxResult(
        status=result.get("status", "error"),
        error=result.get("error"),
        duration_ms=int(result.get("durationMs") or elapsed_ms),
        attempts=int(result.get("attempts") or 0),
        stdout=out,
        stderr=err,
        console_errors=list(result.get("consoleErrors") or []),
        failed_requests=list(result.get("failedRequests") or []),
        workdir=workdir,
    )
