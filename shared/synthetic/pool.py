"""Warm sandboxes for the synthetic check: one unbound standby started ahead, and idle sandboxes kept per project.

Why per project: starting a sandbox (Python, Playwright's Node driver, its own Chromium) costs about a second
and a half of CPU, which on a small machine competes with the check that is running. A sandbox that served a job
cleanly serves the next job of the same project (fresh contexts each time), and never another project's, so what
a script may leave behind (a patched module, a listener on its browser) meets only its own project's scripts,
whose variables it could read anyway. A sandbox is retired after MAX_JOBS jobs, half its CPU limit, a job that
did not end cleanly (timeout, crash), or IDLE_SECONDS unused.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import weakref
from collections.abc import Callable

from shared.synthetic.runner import Sandbox, SandboxOptions, start_sandbox

MAX_JOBS = 25
IDLE_SECONDS = 600.0
_MAX_OUTPUT_BYTES = 32 * 1024 * 1024  # stdout/stderr grow across jobs; RLIMIT_FSIZE must stay far off


class SandboxPool:
    def __init__(self, max_idle: Callable[[], int]) -> None:
        self.max_idle = max_idle
        self._standby: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task] = (
            weakref.WeakKeyDictionary()
        )
        self._idle: list[Sandbox] = []  # oldest first
        self._started: set[Sandbox] = set()
        atexit.register(self.discard_all)

    async def _start(self, options: SandboxOptions) -> Sandbox:
        sandbox = await start_sandbox(options)
        self._started.add(sandbox)
        return sandbox

    async def take(self, options: SandboxOptions, project: object) -> Sandbox:
        """An idle sandbox of this project, else the standby (then bound to it), else a new one."""
        self._retire_idle()
        loop = asyncio.get_running_loop()
        for sandbox in reversed(self._idle):
            if (sandbox.project, sandbox.options, sandbox.loop) == (
                project,
                options,
                loop,
            ) and sandbox.alive():
                self._idle.remove(sandbox)
                return sandbox
        sandbox = await self._take_standby(options)
        sandbox.project = project
        return sandbox

    async def _take_standby(self, options: SandboxOptions) -> Sandbox:
        loop = asyncio.get_running_loop()
        waiting = self._standby.pop(loop, None)
        sandbox = None
        if waiting is not None:
            with contextlib.suppress(Exception):
                sandbox = await waiting
            if sandbox is not None and (sandbox.options != options or not sandbox.alive()):
                self.discard(sandbox)
                sandbox = None
        if sandbox is None:
            sandbox = await self._start(options)
        self._standby[loop] = loop.create_task(self._start(options))
        return sandbox

    def give_back(self, sandbox: Sandbox) -> None:
        """After a job: kept for the project's next one if it may serve again, else stopped."""
        worn = (
            sandbox.jobs >= MAX_JOBS
            or sandbox.cpu_seconds() > sandbox.options.limits.cpu_seconds / 2
            or any(handle.tell() > _MAX_OUTPUT_BYTES for handle in sandbox.outputs)
        )
        if not sandbox.reusable or worn or not sandbox.alive():
            self.discard(sandbox)
            return
        sandbox.idle_since = asyncio.get_running_loop().time()
        self._idle.append(sandbox)
        while len(self._idle) > self.max_idle():
            self.discard(self._idle.pop(0))

    def _retire_idle(self) -> None:
        now = asyncio.get_running_loop().time()
        for sandbox in list(self._idle):
            if now - sandbox.idle_since > IDLE_SECONDS or not sandbox.alive():
                self._idle.remove(sandbox)
                self.discard(sandbox)

    def discard(self, sandbox: Sandbox) -> None:
        self._started.discard(sandbox)
        sandbox.discard()

    def discard_all(self) -> None:
        self._idle.clear()
        for sandbox in list(self._started):
            self.discard(sandbox)
