"""Every Redis key and stream name and how an entry is read; no client (publishing is in shared.redis), so pure
rules may use the names. Used by every pipeline stage, the connector and the API's live events."""

from __future__ import annotations

import json

from shared.settings import get_settings

PREFIX = "sc"
RESULTS_STREAM = f"{PREFIX}:results"
ALERTS_STREAM = f"{PREFIX}:alerts"
# Heartbeat pings the ping function accepted, for aggregate to write in order (shared/heartbeats/intake.py).
PINGS_STREAM = f"{PREFIX}:pings"
# Live events (results, status flips, alert sends) for the API's SSE endpoint: no consumer group, trimmed by length.
LIVE_EVENTS_STREAM = f"{PREFIX}:events"
LIVE_EVENTS_MAX_LENGTH = 100_000
CONSUMER_GROUP = "sc-connector"
# The status function's rendered copies, shared by its replicas (shared/status/cache.py), and who is making one.
STATUS_COPY_PREFIX = f"{PREFIX}:status:copy:"
STATUS_MAKING_PREFIX = f"{PREFIX}:status:making:"
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


# The connector's heartbeat for each location it serves (shared/pipeline/heartbeats.py), a string key with a TTL
# in the Redis that location's job streams live in: a region's health is read where its jobs are.
CONNECTOR_HEARTBEAT_PREFIX = f"{PREFIX}:connector:heartbeat:"


def connector_heartbeat_key(location: str) -> str:
    return CONNECTOR_HEARTBEAT_PREFIX + location


# A heartbeat token's ping count in the current minute (the ping function's rate limit), keyed by the token's
# hash (hex), never the token: the token is a credential.
PING_RATE_PREFIX = f"{PREFIX}:ping:rate:"


def ping_rate_key(token_hash_hex: str, minute: int) -> str:
    return f"{PING_RATE_PREFIX}{token_hash_hex}:{minute}"


# A retried ping's mark (its Idempotency-Key, or its rid and kind), so the ping function answers "already
# counted" at once; the database's unique key is what keeps it counted once. Hashed: the key is the job's text.
PING_SEEN_PREFIX = f"{PREFIX}:ping:seen:"
PING_SEEN_SECONDS = 86_400


def ping_seen_key(monitor_id: str, dedupe_hash_hex: str) -> str:
    return f"{PING_SEEN_PREFIX}{monitor_id}:{dedupe_hash_hex}"


# Bumped after a ping token stops being valid (rotated, its monitor deleted or no longer a heartbeat): the ping
# functions' token caches are dropped at their next ping, so an old URL is refused from then on.
PING_TOKENS_EPOCH_KEY = f"{PREFIX}:ping:tokens-epoch"
