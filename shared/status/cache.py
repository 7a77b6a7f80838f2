"""Rendered status pages, badges and feeds kept in process: each is made at most once per cache period whatever
the traffic, by one task per key (single flight), while readers are served the copy in hand.

Within a replica: a fresh copy is served as it is; a stale one (older than the period, or invalidated by a status
change) is served too while one task makes the next; only a first read, or one after a long quiet spell
(shared.rules.status_page.freshness), waits, and then every waiter shares that one task. Across replicas the
copies are shared through Redis (SharedCopies): the task takes a fresh enough copy another replica made, or
claims the making of the next with SET NX, so the database sees one read per period whatever the replicas.

Invalidation is pushed: a listener reads aggregate's status changes and the checks' results from the sc:events
stream (shared.redis.publish_live_events) and marks stale the copies that show the monitor, so a change shows
at the next read after it, and within the period at the latest if Redis is down."""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from shared import streams
from shared.rules.status_page import FAILING_CHECKS, Freshness, freshness

log = logging.getLogger("supercheck.status")

FRESH_SECONDS = 10.0  # the cache period: max-age, and how long a copy is served without a new one being made
STALE_SECONDS = 30.0  # stale-while-revalidate: how long past it a copy is still served while the next is made
MIN_RENDER_INTERVAL_SECONDS = 2.0  # status changes make a page again at most this often
OTHER_REPLICA_RECHECK_SECONDS = 1.0  # how soon a replica looks again for the copy another one is making
MOST_ENTRIES = 2000  # pages, badges and feeds; unknown slugs are cached too, so a scanner cannot fill memory


@dataclass
class Rendered:
    """One reply, ready to send: its body (and the body gzipped, made once), media type and status."""

    body: bytes
    media_type: str
    status: int = 200
    monitor_ids: frozenset[uuid.UUID] = frozenset()  # a status change of any of them makes it stale
    made_at: float = field(default_factory=time.monotonic)
    invalidated: bool = False
    _gzipped: bytes | None = None
    _etag: str | None = None

    @property
    def etag(self) -> str:
        if self._etag is None:  # once per copy: hashing a megabyte per reply would cost more than the reply
            self._etag = '"' + hashlib.sha256(self.body).hexdigest()[:20] + '"'
        return self._etag

    @property
    def gzipped(self) -> bytes:
        if self._gzipped is None:
            self._gzipped = gzip.compress(self.body, compresslevel=6, mtime=0)
        return self._gzipped


@dataclass
class CacheStats:
    renders: int = 0  # copies made (each one reads the database)
    served: int = 0
    waited: int = 0  # reads that waited for a copy to be made
    failures: int = 0


class SharedCopies:
    """Rendered copies in Redis for every replica: a versioned JSON envelope per key (the body gzipped, base64),
    kept for the fresh and stale seconds, and a short lock naming who makes the next. Redis away, each replica
    makes its own copies, as without it."""

    ENVELOPE_VERSION = 1

    def __init__(
        self, keep_seconds: float, lock_seconds: float = 15.0, wall: Callable[[], float] = time.time
    ):
        self.keep_ms = int(keep_seconds * 1000)
        self.lock_ms = int(lock_seconds * 1000)
        self.wall = wall

    @staticmethod
    def _name(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()[:32]

    async def fetch(self, key: str) -> tuple[Rendered, float] | None:
        """(the copy, its age in seconds), or None."""
        from shared.redis import get_redis

        try:
            raw = await get_redis().get(streams.STATUS_COPY_PREFIX + self._name(key))
            if raw is None:
                return None
            envelope = json.loads(raw)
            if envelope.get("v") != self.ENVELOPE_VERSION:
                return None
            body = gzip.decompress(base64.b64decode(envelope["gzipped"]))
            copy = Rendered(
                body,
                envelope["mediaType"],
                status=envelope["status"],
                monitor_ids=frozenset(uuid.UUID(m) for m in envelope["monitorIds"]),
            )
            return copy, max(self.wall() - envelope["madeAt"], 0.0)
        except Exception as error:  # noqa: BLE001 -- Redis away or a bad entry: make our own
            log.warning("shared copy of %s unreadable: %s", key, error)
            return None

    async def claim(self, key: str) -> bool:
        """Whether this replica makes the next copy (nobody else is)."""
        from shared.redis import get_redis

        try:
            name = streams.STATUS_MAKING_PREFIX + self._name(key)
            return bool(await get_redis().set(name, "1", nx=True, px=self.lock_ms))
        except Exception:  # noqa: BLE001 -- Redis away: every replica makes its own
            return True

    async def store(self, key: str, copy: Rendered, age: float) -> None:
        """Shares `copy`, whose data was read `age` seconds ago."""
        from shared.redis import get_redis

        envelope = {
            "v": self.ENVELOPE_VERSION,
            "gzipped": base64.b64encode(copy.gzipped).decode(),
            "mediaType": copy.media_type,
            "status": copy.status,
            "monitorIds": sorted(str(m) for m in copy.monitor_ids),
            "madeAt": self.wall() - age,
        }
        try:
            pipe = get_redis().pipeline(transaction=False)
            pipe.set(streams.STATUS_COPY_PREFIX + self._name(key), json.dumps(envelope), px=self.keep_ms)
            pipe.delete(streams.STATUS_MAKING_PREFIX + self._name(key))
            await pipe.execute()
        except Exception as error:  # noqa: BLE001 -- the copy still serves this replica
            log.warning("could not share the copy of %s: %s", key, error)


class RenderCache:
    def __init__(
        self,
        fresh_seconds: float = FRESH_SECONDS,
        stale_seconds: float = STALE_SECONDS,
        min_render_interval_seconds: float = MIN_RENDER_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        shared: SharedCopies | None = None,
        wait_for_other_replica_seconds: float = 3.0,
    ):
        self.fresh_seconds = fresh_seconds
        self.stale_seconds = stale_seconds
        self.min_render_interval_seconds = min_render_interval_seconds
        self.clock = clock
        self.shared = shared
        self.wait_for_other_replica_seconds = wait_for_other_replica_seconds
        self.entries: dict[str, Rendered] = {}
        self.making: dict[str, asyncio.Task[Rendered]] = {}
        # when (self.clock) this replica last learnt that a key's monitors changed: a copy older is stale
        self.invalidated_at: dict[str, float] = {}
        self.stats = CacheStats()

    def _decision(self, entry: Rendered) -> Freshness:
        return freshness(
            self.clock() - entry.made_at,
            invalidated=entry.invalidated,
            fresh_seconds=self.fresh_seconds,
            stale_seconds=self.stale_seconds,
            min_render_interval_seconds=self.min_render_interval_seconds,
        )

    async def get(self, key: str, make: Callable[[], Awaitable[Rendered]]) -> Rendered:
        self.stats.served += 1
        entry = self.entries.get(key)
        decision = self._decision(entry) if entry is not None else Freshness.EXPIRED
        if decision is Freshness.FRESH:
            return entry
        task = self._start(key, make)
        if decision is Freshness.STALE:
            return entry
        self.stats.waited += 1
        # shield: a reader that disconnects must not cancel the copy every other waiter is waiting for
        return await asyncio.shield(task)

    def _start(self, key: str, make: Callable[[], Awaitable[Rendered]]) -> asyncio.Task[Rendered]:
        task = self.making.get(key)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._make(key, make))
            # a stale copy's reader does not await the task: retrieve its failure so it is not reported twice
            task.add_done_callback(lambda done: done.cancelled() or done.exception())
            self.making[key] = task
        return task

    async def _make(self, key: str, make: Callable[[], Awaitable[Rendered]]) -> Rendered:
        try:
            rendered = await self._from_replicas(key, make)
            # a change learnt after the copy's data was read (while it was made) leaves it stale at once
            rendered.invalidated = rendered.made_at <= self.invalidated_at.get(key, float("-inf"))
            self.entries.pop(key, None)  # re-inserted last: the dict's order is the eviction order
            self.entries[key] = rendered
            while len(self.entries) > MOST_ENTRIES:
                self.entries.pop(next(iter(self.entries)))
            return rendered
        except Exception:
            self.stats.failures += 1
            log.exception("making %s failed; the copy in hand (if any) is served meanwhile", key)
            raise
        finally:
            self.making.pop(key, None)

    async def _render(self, make: Callable[[], Awaitable[Rendered]]) -> Rendered:
        """A new copy, dated when its reading began."""
        started = self.clock()
        self.stats.renders += 1
        rendered = await make()
        rendered.made_at = started
        return rendered

    async def _from_replicas(self, key: str, make: Callable[[], Awaitable[Rendered]]) -> Rendered:
        """Another replica's copy if it is fresh and newer than the last change this replica learnt of; else one
        this replica makes and shares; else, while another replica makes it, the shared copy as it is (stale is
        fine, as stale-while-revalidate), or, with none yet, the new one once it appears, and our own when it
        does not appear in time."""
        if self.shared is None:
            return await self._render(make)
        changed_at = self.invalidated_at.get(key, float("-inf"))

        async def shared_copy() -> Rendered | None:
            found = await self.shared.fetch(key)
            if found is None:
                return None
            copy, age = found
            copy.made_at = self.clock() - age
            return copy

        def usable(copy: Rendered | None) -> bool:
            return (
                copy is not None
                and self.clock() - copy.made_at < self.fresh_seconds
                and copy.made_at > changed_at
            )

        copy = await shared_copy()
        if usable(copy):
            return copy
        if await self.shared.claim(key):
            rendered = await self._render(make)
            await self.shared.store(key, rendered, age=self.clock() - rendered.made_at)
            return rendered
        if copy is not None:
            # served while the other replica makes the next; looked at again in a second, not at every read
            copy.made_at = max(
                copy.made_at, self.clock() - self.fresh_seconds + OTHER_REPLICA_RECHECK_SECONDS
            )
            return copy
        deadline = self.clock() + self.wait_for_other_replica_seconds
        while self.clock() < deadline:
            await asyncio.sleep(0.05)
            copy = await shared_copy()
            if usable(copy):
                return copy
        return await self._render(make)

    def invalidate_monitors(self, monitor_ids: Iterable[uuid.UUID]) -> int:
        changed = set(monitor_ids)
        now = self.clock()
        count = 0
        for key, entry in self.entries.items():
            if not entry.invalidated and entry.monitor_ids & changed:
                entry.invalidated = True
                self.invalidated_at[key] = now
                count += 1
        return count


# --------------------------------------------------------------------------------- push invalidation


class ChangeWatcher:
    """Reads sc:events from its end and tells the cache which monitors changed what a page shows: a status
    change, or a location whose latest result turned failing or recovered (a partial outage by region)."""

    def __init__(self, cache: RenderCache, block_ms: int = 5000):
        self.cache = cache
        self.block_ms = block_ms
        self.location_failing: dict[tuple[str, str], bool] = {}
        self.task: asyncio.Task | None = None

    def ensure_running(self) -> None:
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._run())

    def changed_monitors(self, events: Iterable[dict]) -> set[uuid.UUID]:
        changed: set[uuid.UUID] = set()
        for event in events:
            monitor = event.get("monitorId")
            if not monitor:
                continue
            if event.get("type") == "status_change":
                changed.add(uuid.UUID(str(monitor)))
            elif event.get("type") == "result" and event.get("location"):
                failing = event.get("status") in FAILING_CHECKS
                key = (str(monitor), str(event["location"]))
                if self.location_failing.get(key, False) != failing:
                    changed.add(uuid.UUID(str(monitor)))
                self.location_failing[key] = failing
        return changed

    async def _run(self) -> None:
        from shared.redis import get_redis

        cursor = "$"
        delay = 1.0
        while True:
            try:
                reply = await get_redis().xread(
                    {streams.LIVE_EVENTS_STREAM: cursor}, count=500, block=self.block_ms
                )
                delay = 1.0
            except Exception as error:  # noqa: BLE001 -- Redis away: the cache period still bounds staleness
                log.warning("status change listener: %s; retrying in %.0f s", error, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            if not reply:
                continue
            entries = reply[0][1]
            cursor = entries[-1][0]
            events = []
            for _, fields in entries:
                try:
                    events.append(json.loads(fields[streams.PAYLOAD_FIELD]))
                except (KeyError, ValueError, TypeError):
                    continue
            changed = self.changed_monitors(events)
            if changed:
                self.cache.invalidate_monitors(changed)
