"""Every Redis key and stream name, the routing from stream to function, and envelope publishing."""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING

from pydantic import BaseModel

from shared.settings import get_settings

if TYPE_CHECKING:
    import redis.asyncio as aioredis

PREFIX = "sc"
RESULTS_STREAM = f"{PREFIX}:results"
ALERTS_STREAM = f"{PREFIX}:alerts"
EVENTS_STREAM = (
    f"{PREFIX}:events"  # live events for the API's SSE endpoint; no consumer group, trimmed by length
)
EVENTS_MAX_LENGTH = 100_000
CONSUMER_GROUP = "sc-connector"
DEAD_LETTER_SUFFIX = ":dead"
PAYLOAD_FIELD = "data"
BUNDLE_KIND = (
    "check_jobs"  # shared.models.CheckJobBundle: many jobs of one (type, location) stream in one entry
)

PIPELINE_FUNCTION_BY_STREAM: dict[str, str] = {
    RESULTS_STREAM: "aggregate",
    ALERTS_STREAM: "alert",
}


def job_stream(check_type: str, location: str) -> str:
    return f"{PREFIX}:jobs:{check_type}:{location}"


def dead_letter_stream(stream: str) -> str:
    return stream + DEAD_LETTER_SUFFIX


def parse_job_stream(stream: str) -> tuple[str, str] | None:
    parts = stream.split(":")
    if len(parts) == 4 and parts[0] == PREFIX and parts[1] == "jobs":
        return parts[2], parts[3]
    return None


def function_for_stream(stream: str) -> str | None:
    parsed = parse_job_stream(stream)
    if parsed:
        from shared.checks import CHECK_TYPES

        check_type = CHECK_TYPES.get(parsed[0])
        return check_type.function if check_type else None
    return PIPELINE_FUNCTION_BY_STREAM.get(stream)


def max_batch_for_stream(stream: str) -> int | None:
    """A check type's own cap on jobs per POST (None: the connector's batch size)."""
    parsed = parse_job_stream(stream)
    if not parsed:
        return None
    from shared.checks import CHECK_TYPES

    check_type = CHECK_TYPES.get(parsed[0])
    return check_type.max_batch if check_type else None


def jobs_per_entry(check_type: str) -> int:
    """How many jobs schedule bundles into one stream entry of this check type.

    A bundle is one connector POST's worth (CONNECTOR_BATCH_SIZE jobs), so bundling changes how many entries
    move through Redis, not how much work one function invocation gets. Types that cap their POSTs (browser
    journeys take minutes) get one job per entry: each journey is delivered, retried and dead-lettered alone.
    """
    from shared.checks import CHECK_TYPES

    known = CHECK_TYPES.get(check_type)
    if known is not None and known.max_batch is not None:
        return 1
    return get_settings().connector_batch_size


def jobs_in_envelope(data: object) -> int:
    """How many jobs a decoded job-stream entry carries: a bundle's job count, else 1."""
    if isinstance(data, dict) and data.get("kind") == BUNDLE_KIND and isinstance(data.get("jobs"), list):
        return max(1, len(data["jobs"]))
    return 1


def streams_for_worker(location: str | None, locations: Iterable[str], include_pipeline: bool) -> list[str]:
    """A regional connector reads its own location's job streams; the primary also feeds aggregate and alert."""
    from shared.checks import CHECK_TYPES

    chosen = [location] if location else list(locations)
    streams = [job_stream(check_type, loc) for loc in chosen for check_type in CHECK_TYPES]
    if include_pipeline:
        streams += list(PIPELINE_FUNCTION_BY_STREAM)
    return streams


def encode(message: BaseModel) -> dict[str, str]:
    return {PAYLOAD_FIELD: message.model_dump_json()}


def decode(fields: dict) -> dict:
    raw = fields.get(PAYLOAD_FIELD) if PAYLOAD_FIELD in fields else fields.get(PAYLOAD_FIELD.encode())
    if raw is None:
        raise ValueError(f"stream entry has no '{PAYLOAD_FIELD}' field")
    return json.loads(raw)


_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, aioredis.Redis]] = (
    weakref.WeakKeyDictionary()
)


def redis_url_for(stream: str) -> str:
    """Job streams of a location with its own regional Redis live there; everything else in REDIS_URL."""
    settings = get_settings()
    parsed = parse_job_stream(stream)
    if parsed and parsed[1] in settings.region_redis_urls:
        return settings.region_redis_urls[parsed[1]]
    return settings.require_redis_url()


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


async def publish_events(events: Iterable[dict]) -> None:
    """Live events (results, status changes, alerts sent): best effort, never part of a commit's outcome."""
    events = list(events)
    if not events:
        return
    pipe = get_redis().pipeline(transaction=False)
    for event in events:
        pipe.xadd(
            EVENTS_STREAM,
            {PAYLOAD_FIELD: json.dumps(event, default=str)},
            maxlen=EVENTS_MAX_LENGTH,
            approximate=True,
        )
    await pipe.execute()


async def close_redis() -> None:
    for client in _clients.pop(asyncio.get_running_loop(), {}).values():
        await client.aclose()
