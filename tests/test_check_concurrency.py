"""CHECK_CONCURRENCY bounds the checks running in one check function process across all the batches it serves at
once (the connector keeps several POSTs in flight), not within each batch."""

from __future__ import annotations

import asyncio
import threading

from shared.models import CheckJob
from shared.pipeline.check import execute_jobs
from shared.settings import reset_settings_cache
from tests.factories import a_job
from tests.servers import LoopbackHttpServer, wait_until


def test_checks_of_batches_served_at_once_share_the_process_limit(clean, aio, internal_targets, monkeypatch):
    monkeypatch.setenv("CHECK_CONCURRENCY", "2")
    reset_settings_cache()
    held = threading.Event()
    target = LoopbackHttpServer(hold=held).start()
    try:
        batches = [[CheckJob.model_validate(a_job(target=target.url)) for _ in range(3)] for _ in range(2)]

        async def serve_both() -> list[tuple[int, list[int]]]:
            running = [asyncio.create_task(execute_jobs(batch)) for batch in batches]
            # two checks reach the held target; a per-batch limit would let four through
            await asyncio.to_thread(wait_until, lambda: len(target.requests) >= 2)
            await asyncio.sleep(0.5)
            reached_while_held = len(target.requests)
            held.set()
            return reached_while_held, await asyncio.gather(*running)

        reached, outcomes = aio.run(serve_both())
        assert reached == 2
        assert outcomes == [(3, []), (3, [])], "every job of both batches ran once the target answered"
        assert len(target.requests) == 6
    finally:
        held.set()
        target.stop()
