"""Every Redis key and stream name, and publishing to streams: envelopes (XADD in bulk) and live events."""

from __future__ import annotations

import json
from collections.abc import Iterable

from pydantic import BaseModel

from shared.redis import get_redis
from shared.settings import get_settings

PREFIX = "sc"
RESULTS_STREAM = f"{PREFIX}:results"
ALERTS_STREAM = f"{PREFIX}:alerts"
# Live events (results, status flips, alert sends) for the API's SSE endpoint: no consumer group, trimmed by length.
LIVE_EVENTS_STREAM = f"{PREFIX}:events"
LIVE_EVENTS_MAX_LENGTH = 100_000
CONSUMER_GROUP = "sc-connector"
DEAD_LETTER_SUFFIX = ":dead"
PAYLOAD_FIELD = "data"
BUNDLE_KIND = (
    "check_jobs"  # shared.models.CheckJobBundle: many jobs of one (type, location) stream in one entry
)


def job_stream(check_type: str, location: str) -> str:
    return f"{PREFIX}:jobs:{check_type}:{location}"


def dead_letter_stream(stream: str) -> str:
    return stream + DEAD_LETTER_SUFFIX


def parse_job_stream(stream: str) -> tuple[str, str] | None:
    parts = stream.split(":")
    if len(parts) == 4 and parts[0] == PREFIX and parts[1] == "jobs":
        return parts[2], parts[3]
    return None


def jobs_in_envelope(data: object) -> int:
    """How many jobs a decoded job-stream entry carries: a bundle's job count, else 1."""
    if isinstance(data, dict) and data.get("kind") == BUNDLE_KIND and isinstance(data.get("jobs"), list):
        return max(1, len(data["jobs"]))
    return 1


def decode(fields: dict) -> dict:
    raw = fields.get(PAYLOAD_FIELD) if PAYLOAD_FIELD in fields else fields.get(PAYLOAD_FIELD.encode())
    if raw is None:
        raise ValueError(f"stream entry has no '{PAYLOAD_FIELD}' field")
    return json.loads(raw)


def redis_url_for(stream: str) -> str:
    """Job streams of a location with its own regional Redis live there; everything else in REDIS_URL."""
    settings = get_settings()
    parsed = parse_job_stream(stream)
    if parsed and parsed[1] in settings.region_redis_urls:
        return settings.region_redis_urls[parsed[1]]
    return settings.require_redis_url()


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


async def publish_live_events(events: Iterable[dict]) -> None:
    """Live events (results, status changes, alerts sent): best effort, never part of a commit's outcome."""
    events = list(events)
    if not events:
        return
    pipe = get_redis().pipeline(transaction=False)
    for event in events:
        pipe.xadd(
            LIVE_EVENTS_STREAM,
            {PAYLOAD_FIELD: json.dumps(event, default=str)},
            maxlen=LIVE_EVENTS_MAX_LENGTH,
            approximate=True,
        )
    await pipe.execute()
