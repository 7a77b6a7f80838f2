"""Runs a script in the sandbox process: its own uid and/or Landlock domain, its own Chromium, a vetting proxy as
its only way out, a clean environment, resource limits, a hard timeout, output captured to files.
Used by the synthetic check (shared/synthetic/check.py).

Nothing the sandbox leaves behind is trusted: its output is read through the descriptors this process opened, and
its artifacts are copied out only if they are plain files (not symlinks, not hard links to something else), so
a script cannot make the function read or overwrite a file on its behalf.

The limits are set in the child between fork and exec (preexec), before a line of the script exists in it: CPU
seconds, data-segment memory, file size and open files. RLIMIT_DATA rather than RLIMIT_AS, because Playwright's
Node driver reserves gigabytes of address space it never touches. The child leads its own process group, so one
SIGKILL ends it together with the Node driver and anything the script started; Chromium, which Playwright
starts in a group of its own, exits when its pipe closes, and under a uid of its own everything left of that uid
is killed as well.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import resource
import shutil
import signal
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from shared.synthetic import isolation as isolation_module
from shared.synthetic import sandbox as sandbox_entry
from shared.synthetic.browser import EGRESS_FLAGS, LAUNCH_FLAGS, chromium_folders
from shared.synthetic.egress import EgressProxy
from shared.synthetic.isolation import Isolation
from shared.synthetic.leftovers import copy_artifacts, output_marks, output_since

SANDBOX_ENTRY = Path(sandbox_entry.__file__).resolve()
# Time beyond the script's own timeout for starting Python, Node and Chromium, and saving the artifacts.
STARTUP_AND_ARTIFACTS_SECONDS = 25
_SECOND_SWEEP_SECONDS = 5.0
_MAX_RESULT_BYTES = 4 * 1024 * 1024
_CLEAN_PATH = "/usr/local/bin:/usr/bin:/bin"
_PR_SET_DUMPABLE = 4


@dataclass(frozen=True)
class SandboxLimits:
    cpu_seconds: int
    memory_mb: int
    max_file_mb: int = 256
    open_files: int = 1024


@dataclass(frozen=True)
class SandboxOptions:
    """Everything a standby sandbox is started with; a job takes a standby only if its options are the same."""

    limits: SandboxLimits
    chromium: str
    isolation: Isolation | None  # None: run without isolation (SYNTHETIC_ALLOW_UNISOLATED)


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
    blocked: list[str] = field(default_factory=list)  # connections the egress proxy refused
    chromium_sandbox: str | None = None  # "on", or why Chromium ran without its own sandbox
    folder: Path | None = None  # this process's own folder: copies of the artifacts; the caller removes it

    @property
    def trace(self) -> Path | None:
        return self._artifact(sandbox_entry.TRACE_FILE)

    @property
    def screenshot(self) -> Path | None:
        return self._artifact(sandbox_entry.SCREENSHOT_FILE)

    def _artifact(self, name: str) -> Path | None:
        path = self.folder / "sandbox" / name if self.folder else None
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
    return open(path, "w+b")


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
    """A started sandbox process waiting for its one job on stdin, with its own folder, uid and proxy."""

    process: asyncio.subprocess.Process
    workdir: Path
    options: SandboxOptions
    proxy: EgressProxy
    outputs: tuple  # this process's handles on the sandbox's stdout.txt and stderr.txt
    results: asyncio.StreamReader  # the sandbox's results pipe, a JSON line per job
    uid: int | None = None
    uid_lock: int | None = None
    project: object = None  # bound at the first job: the sandbox then serves this project only
    jobs: int = 0
    reusable: bool = True  # false once a job ended in a way that leaves the process suspect
    idle_since: float = 0.0
    loop: asyncio.AbstractEventLoop | None = None  # its pipes belong to the loop that started it

    def alive(self) -> bool:
        return self.process.returncode is None

    def cpu_seconds(self) -> float:
        """The sandbox process's own CPU time so far, against its RLIMIT_CPU (it serves several jobs)."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            return float("inf")

    def discard(self) -> None:
        self.reusable = False
        _kill_group(self.process.pid)
        if self.uid is not None:
            _kill_uid(self.uid)
        self.proxy.close()
        for handle in self.outputs:
            handle.close()
        shutil.rmtree(self.workdir, ignore_errors=True)
        # Chromium (in a process group of its own) may still be saving its profile as it exits: sweep again.
        with contextlib.suppress(RuntimeError):
            asyncio.get_running_loop().call_later(_SECOND_SWEEP_SECONDS, shutil.rmtree, self.workdir, True)
        isolation_module.release_sandbox_uid(self.uid_lock)
        self.uid_lock = None


def _kill_uid(uid: int) -> None:
    """Ends whatever is left running as this sandbox's uid (kill -1 as that uid: every process of it)."""
    with contextlib.suppress(OSError):
        pid = os.fork()
        if pid == 0:
            try:
                os.setresuid(uid, uid, uid)
                os.kill(-1, signal.SIGKILL)
            finally:
                os._exit(0)
        os.waitpid(pid, 0)


def _setup(options: SandboxOptions, proxy_port: int, uid: int | None, result_fd: int) -> str:
    isolation = options.isolation
    return json.dumps(
        {
            "uid": uid,
            "gid": uid,
            "landlock": bool(isolation and isolation.landlock_abi),
            "landlockNetwork": bool(isolation and isolation.landlock_network),
            "proxyPort": proxy_port,
            "chromium": options.chromium,
            "flags": [*LAUNCH_FLAGS, *EGRESS_FLAGS],
            "readOnly": chromium_folders(options.chromium),
            "resultFd": result_fd,
        }
    )


async def start_sandbox(options: SandboxOptions) -> Sandbox:
    proxy = await EgressProxy().start()
    workdir = Path(tempfile.mkdtemp(prefix="sc-synthetic-"))
    uid = uid_lock = None
    if options.isolation and options.isolation.switch_uid:
        uid, uid_lock = isolation_module.reserve_sandbox_uid()
        os.chown(workdir, uid, uid)
    hide_own_memory_from_sandboxes()
    # Files, not pipes: a script printing without end fills a pipe and stalls, but hits RLIMIT_FSIZE on a file.
    stdout, stderr = _new_file(workdir / "stdout.txt"), _new_file(workdir / "stderr.txt")
    read_end, write_end = os.pipe()
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-I",  # isolated: ignores PYTHON* variables, the user site and the working directory on sys.path
            "-u",  # unbuffered (-I ignores PYTHONUNBUFFERED): each job's output is in the files when it ends
            str(SANDBOX_ENTRY),
            _setup(options, proxy.port, uid, write_end),
            pass_fds=(write_end,),
            stdin=asyncio.subprocess.PIPE,
            stdout=stdout,
            stderr=stderr,
            cwd=workdir,
            env=clean_environment(workdir),
            start_new_session=True,
            preexec_fn=_limiter(options.limits),
        )
    except BaseException:
        os.close(read_end)
        proxy.close()
        stdout.close()
        stderr.close()
        shutil.rmtree(workdir, ignore_errors=True)
        isolation_module.release_sandbox_uid(uid_lock)
        raise
    finally:
        os.close(write_end)
    results = asyncio.StreamReader(limit=_MAX_RESULT_BYTES)
    loop = asyncio.get_running_loop()
    sandbox = Sandbox(process, workdir, options, proxy, (stdout, stderr), results, uid, uid_lock, loop=loop)
    try:
        await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(results), os.fdopen(read_end, "rb", 0)
        )
    except BaseException:  # cancelled with the process already started: leave nothing behind
        sandbox.discard()
        raise
    return sandbox


async def _exchange(sandbox: Sandbox, job: bytes, hard_timeout: float) -> tuple[dict | None, bool]:
    """Hands one job over and waits for its result line: (result or None if the sandbox died, timed out)."""
    try:
        sandbox.process.stdin.write(job + b"\n")
        await sandbox.process.stdin.drain()
        line = await asyncio.wait_for(sandbox.results.readline(), hard_timeout)
    except TimeoutError:
        return None, True
    except (
        ConnectionError,
        OSError,
        ValueError,
    ):  # died before or while taking the job, or a result too long
        line = b""
    try:
        return (json.loads(line) if line.strip() else None), False
    except ValueError:
        return None, False


async def _ended(sandbox: Sandbox) -> int | None:
    """Stops a sandbox that cannot serve again (if it has not died already) and returns its exit code."""
    _kill_group(sandbox.process.pid)
    with contextlib.suppress(ProcessLookupError):
        await sandbox.process.wait()
    return sandbox.process.returncode


async def run_in_sandbox(
    sandbox: Sandbox,
    *,
    script: str,
    variables: dict[str, str],
    timeout_ms: int,
    retries: int,
    trace_screenshots: bool = False,
) -> SandboxResult:
    """Never raises for anything the script does; the caller removes result.folder. The sandbox stays up for
    another job of the same project if this one ended cleanly (sandbox.reusable), else it is stopped."""
    sandbox.jobs += 1
    folder_name = f"job-{sandbox.jobs}"
    job = json.dumps(
        {
            "script": script,
            "variables": variables,
            "timeoutMs": timeout_ms,
            "retries": retries,
            "folder": folder_name,
            "traceScreenshots": trace_screenshots,
        }
    ).encode()
    hard_timeout = hard_timeout_seconds(timeout_ms, retries)
    marks = output_marks(sandbox)
    sandbox.proxy.blocked.clear()
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        result, timed_out = await _exchange(sandbox, job, hard_timeout)
        elapsed_ms = round((loop.time() - started) * 1000)
        returncode = None
        if result is None or result.get("status") not in ("passed", "failed"):
            sandbox.reusable = False
            returncode = await _ended(sandbox)
        return _collect(sandbox, folder_name, marks, result, timed_out, hard_timeout, elapsed_ms, returncode)
    except BaseException:
        sandbox.discard()
        raise
    finally:
        shutil.rmtree(sandbox.workdir / folder_name, ignore_errors=True)


def _collect(
    sandbox, folder_name, marks, result, timed_out, hard_timeout, elapsed_ms, returncode
) -> SandboxResult:
    out, err = (output_since(handle, mark) for handle, mark in zip(sandbox.outputs, marks, strict=True))
    folder = Path(tempfile.mkdtemp(prefix="sc-synthetic-out-"))
    copy_artifacts(sandbox.workdir / folder_name, folder)
    facts = {"stdout": out, "stderr": err, "blocked": list(sandbox.proxy.blocked), "folder": folder}
    if timed_out:
        return SandboxResult(
            "timeout", f"Script killed after the hard timeout of {hard_timeout:.0f}s", elapsed_ms, 0, **facts
        )
    if result is None:
        return SandboxResult("error", _exit_reason(returncode, err), elapsed_ms, 0, **facts)
    return SandboxResult(
        status=result.get("status", "error"),
        error=result.get("error"),
        duration_ms=int(result.get("durationMs") or elapsed_ms),
        attempts=int(result.get("attempts") or 0),
        console_errors=list(result.get("consoleErrors") or []),
        failed_requests=list(result.get("failedRequests") or []),
        chromium_sandbox=result.get("chromiumSandbox"),
        **facts,
    )
