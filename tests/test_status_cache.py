"""The status cache under a rush, on a real event loop with a controllable clock: one copy made per key however
many readers, stale copies served while the next is made, an invalidated copy remade after the minimum
interval, the change watcher telling status changes and region flips from ordinary results, and replicas
sharing their copies through a real Redis (one copy for all, none taken from before a change)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from shared.status.cache import ChangeWatcher, RenderCache, Rendered, SharedCopies


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Maker:
    """Makes numbered copies, each held until `release` is set, counting how often it ran."""

    def __init__(self, monitor_ids=frozenset()) -> None:
        self.calls = 0
        self.release = asyncio.Event()
        self.monitor_ids = monitor_ids

    async def __call__(self) -> Rendered:
        self.calls += 1
        await self.release.wait()
        return Rendered(f"copy {self.calls}".encode(), "text/plain", monitor_ids=self.monitor_ids)


def run(coroutine):
    return asyncio.run(coroutine)


def test_two_hundred_readers_of_an_empty_cache_share_one_copy():
    async def scenario():
        cache, make = RenderCache(clock=Clock()), Maker()
        readers = [asyncio.create_task(cache.get("page:acme", make)) for _ in range(200)]
        await asyncio.sleep(0)
        make.release.set()
        copies = await asyncio.gather(*readers)
        return make.calls, {copy.body for copy in copies}, cache.stats

    calls, bodies, stats = run(scenario())
    assert calls == 1 and bodies == {b"copy 1"}
    assert stats.renders == 1 and stats.waited == 200


def test_a_stale_copy_is_served_at_once_while_one_task_makes_the_next():
    async def scenario():
        clock = Clock()
        cache, make = RenderCache(fresh_seconds=10, stale_seconds=30, clock=clock), Maker()
        make.release.set()
        await cache.get("page:acme", make)
        make.release.clear()
        clock.now += 11  # stale now
        served = [await cache.get("page:acme", make) for _ in range(50)]  # none of these waits
        still_making = len(cache.making)
        make.release.set()
        await asyncio.sleep(0.01)
        after = await cache.get("page:acme", make)
        return {copy.body for copy in served}, still_making, after.body, make.calls

    served, making, after, calls = run(scenario())
    assert served == {b"copy 1"}
    assert making == 1  # one refresh under way for fifty stale reads
    assert after == b"copy 2" and calls == 2


def test_within_the_period_a_copy_is_made_once_whatever_the_traffic():
    async def scenario():
        clock = Clock()
        cache, make = RenderCache(fresh_seconds=10, clock=clock), Maker()
        make.release.set()
        for _ in range(10):  # ten periods
            for _ in range(100):
                await cache.get("page:acme", make)
                clock.now += 0.1
            await asyncio.sleep(0)
        return make.calls

    assert run(scenario()) <= 11


def test_a_status_change_makes_a_copy_stale_after_the_minimum_interval_only():
    monitor = uuid.uuid4()

    async def scenario():
        clock = Clock()
        cache = RenderCache(fresh_seconds=10, min_render_interval_seconds=2, clock=clock)
        make = Maker(frozenset({monitor}))
        make.release.set()
        await cache.get("page:acme", make)
        other = cache.invalidate_monitors({uuid.uuid4()})
        mine = cache.invalidate_monitors({monitor})
        clock.now += 1
        await cache.get("page:acme", make)
        calls_within_interval = make.calls
        clock.now += 1.5
        await cache.get("page:acme", make)  # stale: starts the refresh, serves the old copy
        await asyncio.sleep(0.01)
        newest = await cache.get("page:acme", make)
        return other, mine, calls_within_interval, newest.body, newest.invalidated

    other, mine, within, newest, invalidated = run(scenario())
    assert (other, mine) == (0, 1)
    assert within == 1
    assert newest == b"copy 2" and invalidated is False


def test_a_failed_make_keeps_serving_the_copy_in_hand_and_tries_again_next_read():
    async def scenario():
        clock = Clock()
        cache = RenderCache(fresh_seconds=10, clock=clock)
        good = Maker()
        good.release.set()
        await cache.get("page:acme", good)
        clock.now += 11

        async def broken() -> Rendered:
            raise RuntimeError("database away")

        first = await cache.get("page:acme", broken)
        await asyncio.sleep(0.01)
        second = await cache.get("page:acme", broken)
        await asyncio.sleep(0.01)
        with pytest.raises(RuntimeError):
            await RenderCache(clock=clock).get(
                "page:new", broken
            )  # nothing in hand: the reader sees the error
        return first.body, second.body, cache.stats.failures

    first, second, failures = run(scenario())
    assert first == second == b"copy 1"
    assert failures == 2


@pytest.mark.parametrize(
    ("events", "changed"),
    [
        ([{"type": "status_change", "monitorId": "A", "to": "down"}], {"A"}),
        ([{"type": "result", "monitorId": "A", "location": "us-east", "status": "up"}], set()),
        (
            [
                {"type": "result", "monitorId": "A", "location": "us-east", "status": "timeout"},
                {"type": "result", "monitorId": "A", "location": "us-east", "status": "down"},
                {"type": "result", "monitorId": "B", "location": "eu-central", "status": "up"},
            ],
            {"A"},
        ),
        (
            [
                {"type": "result", "monitorId": "A", "location": "us-east", "status": "down"},
                {"type": "result", "monitorId": "A", "location": "us-east", "status": "up"},
            ],
            {"A"},
        ),
        ([{"type": "alert_sent", "monitorId": "A"}, {"type": "status_change"}], set()),
    ],
)
def test_the_watcher_tells_what_changed_a_page(events, changed):
    ids = {"A": uuid.UUID(int=1), "B": uuid.UUID(int=2)}
    for event in events:
        if "monitorId" in event:
            event["monitorId"] = str(ids[event["monitorId"]])
    watcher = ChangeWatcher(RenderCache())
    assert watcher.changed_monitors(events) == {ids[name] for name in changed}


# ------------------------------------------------------------------------------- replicas sharing copies


def replicas(count: int) -> list[RenderCache]:
    return [
        RenderCache(min_render_interval_seconds=0, shared=SharedCopies(keep_seconds=40)) for _ in range(count)
    ]


async def closing_redis(coroutine):
    from shared.redis import close_redis

    try:
        return await coroutine
    finally:
        await close_redis()


def test_replicas_sharing_redis_make_one_copy_for_all_their_readers(clean):
    async def scenario():
        caches, make = replicas(3), Maker()
        readers = [asyncio.create_task(cache.get("page:acme", make)) for cache in caches for _ in range(50)]
        await asyncio.sleep(0.2)
        make.release.set()
        copies = await asyncio.gather(*readers)
        return make.calls, {copy.body for copy in copies}, [cache.stats.renders for cache in caches]

    calls, bodies, renders = asyncio.run(closing_redis(scenario()))
    assert calls == 1 and bodies == {b"copy 1"}
    assert sorted(renders) == [0, 0, 1]


def test_after_a_change_every_replica_takes_the_copy_one_of_them_made_since(clean):
    monitor = uuid.uuid4()

    async def scenario():
        caches, make = replicas(2), Maker(frozenset({monitor}))
        make.release.set()
        for cache in caches:
            await cache.get("page:acme", make)  # one copy, shared
        calls_before = make.calls
        for cache in caches:
            cache.invalidate_monitors({monitor})  # both watchers read the same status change
        await caches[0].get("page:acme", make)  # stale: the first starts the next copy
        await asyncio.sleep(0.1)
        await caches[1].get("page:acme", make)  # stale: the second takes the new shared copy
        await asyncio.sleep(0.1)
        newest = [await cache.get("page:acme", make) for cache in caches]
        return calls_before, make.calls, [copy.body for copy in newest], [c.stats.renders for c in caches]

    calls_before, calls, bodies, renders = asyncio.run(closing_redis(scenario()))
    assert calls_before == 1
    assert calls == 2 and bodies == [b"copy 2", b"copy 2"]
    assert renders == [2, 0]


def test_a_shared_copy_from_before_a_change_is_not_taken_as_fresh(clean):
    monitor = uuid.uuid4()

    async def scenario():
        first, second = replicas(2)
        make = Maker(frozenset({monitor}))
        make.release.set()
        await first.get("page:acme", make)
        await second.get("page:acme", make)
        second.invalidate_monitors({monitor})  # only the second has read the change so far
        await second.get("page:acme", make)  # stale: the shared copy predates the change, so it makes its own
        await asyncio.sleep(0.1)
        return make.calls, (await second.get("page:acme", make)).body

    calls, body = asyncio.run(closing_redis(scenario()))
    assert calls == 2 and body == b"copy 2"
