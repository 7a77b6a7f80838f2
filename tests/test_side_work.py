"""Work beside a function's commit stays beside it (issue 16, item 9): live events are best effort when Redis refuses
them, and DNS lookups run in a pool of their own, so a busy default pool cannot hold a check's lookup."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
import redis

from openfaas.local.services import embedded_redis
from shared.redis import live_event_stats, publish_live_events
from shared.settings import reset_settings_cache
from shared.ssrf import resolve_target
from tests.api_client import ApiClient
from tests.factories import LOCATIONS, insert_monitor, record_run, signed


@pytest.fixture
def refusing_redis(tmp_path, monkeypatch):
    """A real Redis that refuses every write (it demands a replica it does not have), as REDIS_URL."""
    server = embedded_redis(tmp_path / "refusing")
    client = redis.Redis.from_url(server.url)
    client.config_set("min-replicas-to-write", 1)
    monkeypatch.setenv("REDIS_URL", server.url)
    reset_settings_cache()
    yield server
    client.close()
    server.stop()
    monkeypatch.undo()
    reset_settings_cache()


def test_live_events_redis_refuses_are_logged_and_counted_not_raised(aio, refusing_redis, caplog):
    before = live_event_stats.dropped
    sent = aio.run(publish_live_events([{"type": "status_change", "monitorId": "m"}, {"type": "result"}]))
    assert sent is False
    assert live_event_stats.dropped == before + 2
    assert "dropped 2 live event(s)" in caplog.text


def test_aggregate_commits_and_answers_200_when_redis_refuses_its_live_events(clean, aio, refusing_redis):
    monitor_id = insert_monitor(clean, "flips", next_run_at=datetime.now(UTC) + timedelta(days=1))
    run_id = record_run(
        clean, monitor_id, datetime.now(UTC) - timedelta(minutes=1), dict.fromkeys(LOCATIONS, "down")
    )
    batch = {
        "messages": [
            {
                "id": "1-0",
                "data": {
                    "v": 1,
                    "kind": "result",
                    "run_id": str(run_id),
                    "monitor_id": str(monitor_id),
                    "location": "us-east",
                    "status": "down",
                },
            }
        ]
    }
    before = live_event_stats.dropped
    response = ApiClient(aio, None, function="aggregate").post("/", **signed(batch))
    assert response.status_code == 200, response.text
    assert clean.sql("select status from monitors where id = %s", (monitor_id,)) == [("down",)]
    assert clean.sql("select finalized_at is not null from runs where id = %s", (run_id,)) == [(True,)]
    assert live_event_stats.dropped == before + 1  # the pending -> down flip


def test_a_dns_lookup_does_not_wait_for_the_default_pool(internal_targets):
    """The loop's default pool is held (one thread, blocked) while a check resolves a name: the lookup still
    completes, because it runs in the DNS pool; in the default pool it would wait until the holder let go."""

    async def main():
        loop = asyncio.get_running_loop()
        loop.set_default_executor(ThreadPoolExecutor(max_workers=1))
        held = threading.Event()
        holder = loop.run_in_executor(None, held.wait)
        try:
            return await asyncio.wait_for(resolve_target("localhost", 80), timeout=60)
        finally:
            held.set()
            await holder

    addresses = asyncio.run(main())
    assert addresses and all(address.is_loopback for address in addresses)
