"""Redis clients: one per URL per event loop, so functions, the connector and tests share one path."""

from __future__ import annotations

import asyncio
import weakref
from typing import TYPE_CHECKING

from shared.settings import get_settings

if TYPE_CHECKING:
    import redis.asyncio as aioredis

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, aioredis.Redis]] = (
    weakref.WeakKeyDictionary()
)


def get_redis(url: str | None = None) -> aioredis.Redis:
    url = url or get_settings().require_redis_url()
    per_loop = _clients.setdefault(asyncio.get_running_loop(), {})
    client = per_loop.get(url)
    if client is None:
        import redis.asyncio as aioredis  # loaded with the first client: api's health and docs never need it

        client = aioredis.Redis.from_url(
            url, decode_responses=True, health_check_interval=15, socket_keepalive=True, retry_on_timeout=True
        )
        per_loop[url] = client
    return client


async def close_redis() -> None:
    for client in _clients.pop(asyncio.get_running_loop(), {}).values():
        await client.aclose()
