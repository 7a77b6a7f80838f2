"""A local stand-in for the OpenFaaS cron-connector: POSTs an empty body to each cron-annotated function on time.

Unsigned, as the real cron-connector's calls are (it sends no headers): an empty-bodied call needs no signature
and does only the function's own bounded, idempotent work, so locally the same path runs as in production."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import httpx
from croniter import croniter

from openfaas.local.stack import stack_functions
from shared.settings import get_settings

log = logging.getLogger("cron")


async def invoke_on_schedule(gateway_url: str, name: str, schedule: str) -> None:
    times = croniter(schedule, datetime.now(UTC))
    async with httpx.AsyncClient(timeout=300) as client:
        while True:
            due = times.get_next(datetime)
            await asyncio.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()))
            # Like the real cron-connector: no retry and no overlap protection; functions must cope.
            asyncio.create_task(_invoke(client, f"{gateway_url}/function/{name}", name))


async def _invoke(client: httpx.AsyncClient, url: str, name: str) -> None:
    try:
        response = await client.post(url, content=b"")
        log.info("cron %s -> %d %s", name, response.status_code, response.text[:200])
    except httpx.HTTPError as error:
        log.warning("cron %s failed: %s", name, type(error).__name__)


async def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s cron %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    gateway_url = get_settings().gateway_url.rstrip("/")
    jobs = [(f.name, f.cron_schedule) for f in stack_functions() if f.cron_schedule]
    for name, schedule in jobs:
        log.info("%s on '%s'", name, schedule)
    await asyncio.gather(*(invoke_on_schedule(gateway_url, name, schedule) for name, schedule in jobs))


if __name__ == "__main__":
    asyncio.run(main())
