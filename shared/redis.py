"""Redis clients (one per URL per event loop, so functions, the connector and tests share one path) and publishing
to streams: envelopes in bulk XADDs and best-effort live events. Used by every pipeline stage and the connector."""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import BaseModel

from shared.settings import get_settings
from shared.streams import (
    DEAD_LETTER_SUFFIX,
    LIVE_EVENTS_MAX_LENGTH,
    LIVE_EVENTS_STREAM,
    PAYLOAD_FIELD,
    redis_url_for,
)

if TYPE_CHECKING:
    import redis.asyncio as aioredis

log = logging.getLogger("supercheck.redis")
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


# Appends many entries to one stream in a single call: a round trip per 1,000 messages (or per few MB of
# bundles) instead of per message, which is what lets one schedule tick fan out hundreds of thousands of jobs.
_XADD_MANY = """
for i = 1, #ARGV do
    redis.call('XADD', KEYS[1], '*', 'data', ARGV[i])
end
return #ARGV
"""
_XADD_CHUNK = 1000
_XADD_CHUNK_BYTES = 4_000_000


def _chunks(payloads: list[str]) -> Iterable[list[str]]:
    chunk: list[str] = []
    size = 0
    for payload in payloads:
        if chunk and (len(chunk) >= _XADD_CHUNK or size + len(payload) > _XADD_CHUNK_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(payload)
        size += len(payload)
    if chunk:
        yield chunk


async def publish_payloads(entries: Iterable[tuple[str, str]]) -> int:
    """XADD already-encoded envelopes, grouped per stream; returns how many were written."""
    by_stream: dict[str, list[str]] = {}
    for stream, payload in entries:
        by_stream.setdefault(stream, []).append(payload)
    for stream, payloads in by_stream.items():
        client = get_redis(redis_url_for(stream))
        script = client.register_script(_XADD_MANY)
        for chunk in _chunks(payloads):
            await script(keys=[stream], args=chunk)
    return sum(len(payloads) for payloads in by_stream.values())


async def publish(entries: Iterable[tuple[str, BaseModel]]) -> int:
    """XADD envelopes (validated models) to their streams; returns how many were written."""
    return await publish_payloads((stream, message.model_dump_json()) for stream, message in entries)


async def publish_dead_letters(entries: Iterable[tuple[str, str, str]]) -> int:
    """XADD (dead-letter stream, payload, reason) entries in the connector's dead-letter shape."""
    entries = list(entries)
    if entries:
        pipe = get_redis().pipeline(transaction=False)
        for stream, payload, reason in entries:
            pipe.xadd(
                stream,
                {"stream": stream.removesuffix(DEAD_LETTER_SUFFIX), "reason": reason, PAYLOAD_FIELD: payload},
            )
        await pipe.execute()
    return len(entries)


@dataclass
class LiveEventStats:
    """Live events this process dropped because Redis refused them (read by tests and logs)."""

    dropped: int = 0


live_event_stats = LiveEventStats()


async def publish_live_events(events: Iterable[dict]) -> bool:
    """Live events (results, status changes, alerts sent): best effort, never part of a commit's outcome. A
    Redis that refuses them is logged and counted, never raised: the commit they describe has happened, and an
    exception here would make its caller answer 500 and have its batch redelivered. Returns whether they went out."""
    events = list(events)
    if not events:
        return True
    import redis.exceptions

    try:
        pipe = get_redis().pipeline(transaction=False)
        for event in events:
            pipe.xadd(
                LIVE_EVENTS_STREAM,
                {PAYLOAD_FIELD: json.dumps(event, default=str)},
                maxlen=LIVE_EVENTS_MAX_LENGTH,
                approximate=True,
            )
        await pipe.execute()
    except (redis.exceptions.RedisError, OSError) as error:
        live_event_stats.dropped += len(events)
        log.warning("dropped %d live event(s), Redis refused them: %s", len(events), error)
        return False
    return True
