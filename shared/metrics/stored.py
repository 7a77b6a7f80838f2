"""Reads the telemetry hashes (shared/telemetry.py) from every Redis the pipeline writes to: the primary's and each
region's own, summed per field. A server that does not answer is left out of the sums and reported."""

from __future__ import annotations

import asyncio
import logging

from shared.redis import get_redis
from shared.settings import get_settings
from shared.telemetry import METRICS, merge_hashes

log = logging.getLogger("supercheck.metrics")

READ_TIMEOUT_SECONDS = 2.0


def telemetry_servers() -> dict[str, str]:
    """Redis servers by a name fit for a label ("primary", or the location whose jobs live there): never a URL."""
    settings = get_settings()
    servers = {"primary": settings.require_redis_url()}
    for location, url in sorted(settings.region_redis_urls.items()):
        if url not in servers.values():
            servers[location] = url
    return servers


async def _read_server(url: str, names: list[str]) -> list[dict[str, str]]:
    pipe = get_redis(url).pipeline(transaction=False)
    for name in names:
        pipe.hgetall(METRICS[name].key)
    return await asyncio.wait_for(pipe.execute(), READ_TIMEOUT_SECONDS)


async def read_stored_telemetry(
    names: list[str], reachable: dict[str, bool] | None = None
) -> dict[str, dict[str, str]]:
    """{metric name: its hash summed over every server}; `reachable` is filled with each server's answer."""
    servers = telemetry_servers()
    answers = await asyncio.gather(
        *(_read_server(url, names) for url in servers.values()), return_exceptions=True
    )
    per_metric: dict[str, list[dict[str, str]]] = {name: [] for name in names}
    for server, answer in zip(servers, answers, strict=True):
        if reachable is not None:
            reachable[server] = not isinstance(answer, BaseException)
        if isinstance(answer, BaseException):
            log.warning("telemetry of Redis server %s unreadable: %s", server, type(answer).__name__)
            continue
        for name, stored in zip(names, answer, strict=True):
            per_metric[name].append(stored)
    return {name: merge_hashes(found) if found else {} for name, found in per_metric.items()}
