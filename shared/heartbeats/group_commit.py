"""Group commit: items submitted in one process while a batch is being written wait and go out together in the
next, and each submitter is answered with its own item's outcome once its batch is done. Used by the ping
function (shared/heartbeats/intake.py): a batch of pings is one script run in Redis instead of one per ping.

No timer: an item that arrives when nothing is being written goes at once, so a lone ping waits for nobody,
and under load a batch holds what arrived during the last write. Batches run one at a time, in arrival order,
so two pings of the same token are applied in the order they came.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

Item = TypeVar("Item")
Outcome = TypeVar("Outcome")

# A batch's outcomes, one per item in order: a value to return, or an exception to raise to that submitter alone.
WriteBatch = Callable[[list[Item]], Awaitable[list[Outcome | Exception]]]


class GroupCommit(Generic[Item, Outcome]):
    def __init__(self, write: WriteBatch, max_batch: int = 500):
        self._write = write
        self.max_batch = max_batch
        self._waiting: list[tuple[Item, asyncio.Future]] = []
        self._writer: asyncio.Task | None = None
        self.batches = 0  # written so far: what a test or a benchmark reads to see batching happen

    async def submit(self, item: Item) -> Outcome:
        future = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._writer is None:
            # its own task: a submitter that goes away (a client hanging up) does not cancel the others' write
            self._writer = asyncio.create_task(self._write_all())
        return await future

    async def _write_all(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting[: self.max_batch], self._waiting[self.max_batch :]
                try:
                    outcomes = await self._write([item for item, _ in batch])
                except Exception as error:  # the whole batch failed: each submitter gets the error
                    outcomes = [error] * len(batch)
                self.batches += 1
                for (_, future), outcome in zip(batch, outcomes, strict=True):
                    if future.done():  # its submitter was cancelled
                        continue
                    if isinstance(outcome, Exception):
                        future.set_exception(outcome)
                    else:
                        future.set_result(outcome)
        finally:
            self._writer = None


_per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[object, GroupCommit]] = (
    weakref.WeakKeyDictionary()
)


# The last loop asked for and its group commits: a function has one loop, so most calls skip the weak mapping
# (its lookup was a fiftieth of the ping function's time, py-spy).
_last: tuple[asyncio.AbstractEventLoop | None, dict[object, GroupCommit]] = (None, {})


def group_commit_for(write: WriteBatch, max_batch: int = 500) -> GroupCommit:
    """The event loop's group commit for `write` (one per loop, as its connections are the loop's)."""
    global _last
    loop = asyncio.get_running_loop()
    if _last[0] is not loop:
        _last = (loop, _per_loop.setdefault(loop, {}))
    per_write = _last[1]
    group = per_write.get(write)
    if group is None:
        group = per_write[write] = GroupCommit(write, max_batch)
    return group
