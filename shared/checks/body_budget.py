"""How many bytes of response bodies one check process holds at once (CHECK_BODY_BUFFER_MB).
Used by the HTTP checks (shared/checks/fetch.py reserves, shared/checks/http.py holds a lease per check).

Only a check whose keyword or JSON path needs the body buffers it; the others stream it, keep a short excerpt and
count the rest. A check that must buffer reserves what it may hold (the Content-Length when the body is not
encoded, else the monitor's cap) before it reads, and waits while the process is full: its own timeout bounds the
wait. A body that could never fit fails at once, saying so. Reserving the whole amount before reading means two
checks can never each hold half of what both need, so waiting never deadlocks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import lru_cache

from shared.settings import get_settings


class BodyOverBudget(Exception):
    """The body this check would buffer is larger than everything the process may buffer at once."""


class BodyBudget:
    def __init__(self, total_bytes: int) -> None:
        self.total_bytes = total_bytes
        self.free_bytes = total_bytes
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed: asyncio.Condition | None = None

    @asynccontextmanager
    async def lease(self) -> AsyncIterator[BodyLease]:
        """One check's share; whatever it holds goes back when the check is done."""
        lease = BodyLease(self)
        try:
            yield lease
        finally:
            await lease.hold(0)

    def _condition(self) -> asyncio.Condition:
        # A function process runs one event loop; tests run many in turn, and a Condition belongs to one.
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop, self._changed = loop, asyncio.Condition()
        return self._changed

    async def _move(self, delta: int) -> None:
        changed = self._condition()
        async with changed:
            if delta > 0:
                await changed.wait_for(lambda: self.free_bytes >= delta)
            self.free_bytes -= delta
            if delta < 0:
                changed.notify_all()


class BodyLease:
    def __init__(self, budget: BodyBudget) -> None:
        self.budget = budget
        self.held_bytes = 0
        self.waited_seconds = 0.0  # taken out of the check's response time: the target did not cause it

    async def hold(self, size: int) -> None:
        """Holds exactly size bytes from now on (a redirect's next hop replaces the last hop's body)."""
        if size > self.budget.total_bytes:
            mb = self.budget.total_bytes / (1024 * 1024)
            raise BodyOverBudget(
                f"the response body may be up to {size / (1024 * 1024):.1f} MB, more than the {mb:.0f} MB a check "
                "process buffers at once (CHECK_BODY_BUFFER_MB); lower maxResponseSizeMb"
            )
        delta = size - self.held_bytes
        if delta:
            started = time.perf_counter()
            await self.budget._move(delta)  # cancelled while waiting (the check's timeout): nothing was taken
            self.waited_seconds += time.perf_counter() - started
        self.held_bytes = size


@lru_cache(maxsize=1)
def process_budget() -> BodyBudget:
    return BodyBudget(get_settings().check_body_buffer_mb * 1024 * 1024)
