"""The connector's heartbeat: written every few seconds for each location it serves, into the Redis that location's
job streams live in, and read back by the API's GET /regions/health and the metrics function.

A heartbeat says which connector serves the location (WORKER_LOCATION, or all locations), when it was written,
its loops' condition and whether each check function it delivers to answered a probe through its gateway. It is a
versioned JSON envelope under streams.connector_heartbeat_key(location) with a TTL of TTL_INTERVALS intervals;
whether it is stale is a pure verdict on its age (shared/rules/regional_health.py). Clocks are compared across
hosts (the connector writes its wall clock, the reader subtracts its own), so they are assumed NTP-synced, as run
deadlines already assume. Replicas of one region's connector share the key: the freshest beat wins.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from shared import streams
from shared.checks import CHECK_TYPES
from shared.rules.connector_health import LoopCondition, Verdict
from shared.rules.regional_health import heartbeat_ttl_seconds

if TYPE_CHECKING:
    import httpx
    import redis.asyncio as aioredis

log = logging.getLogger("supercheck.heartbeats")

HEARTBEAT_VERSION = 1
# A probe of a check function, and a reader's whole visit to one region's Redis, give up after this long: one
# unreachable region must not hold up the others.
PROBE_TIMEOUT_SECONDS = 2.0


class ConnectorHeartbeat(BaseModel):
    """Unknown fields are ignored, so a newer connector may add some without a version bump; `v` changes only
    when a field's meaning does."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    v: Literal[1] = HEARTBEAT_VERSION
    location: str
    worker_location: str | None = Field(
        description="the connector's WORKER_LOCATION; null: it reads every location"
    )
    serves: list[str]
    consumer: str
    written_at: AwareDatetime
    interval_seconds: float = Field(gt=0, description="the longest time between two beats when all goes well")
    connector_status: Verdict
    loops: dict[str, LoopCondition]
    check_functions: dict[str, bool] = Field(description="each check function -> it answered the probe")

    def age_seconds(self, now: datetime | None = None) -> float:
        """Never negative: a connector clock slightly ahead makes a beat fresh, not from the future."""
        return max(0.0, ((now or datetime.now(UTC)) - self.written_at).total_seconds())


def region_redis_url(location: str) -> str:
    """Where a location's job streams, and so its heartbeat, live."""
    return streams.redis_url_for(streams.job_stream(next(iter(CHECK_TYPES)), location))


# --- writing (the connector) -------------------------------------------------------------------------------------


async def probe_check_function(
    http: httpx.AsyncClient, gateway_url: str, function: str, wait_seconds: float
) -> bool:
    """GET /function/<name> through the gateway: every check function answers it without a key or the database
    (shared/pipeline/check.py), so a 2xx means the gateway routes to a live replica."""
    import httpx

    try:
        response = await http.get(f"{gateway_url.rstrip('/')}/function/{function}", timeout=wait_seconds)
    except httpx.HTTPError:
        return False
    return response.is_success


async def probe_check_functions(
    http: httpx.AsyncClient,
    gateway_url: str,
    functions: Iterable[str],
    wait_seconds: float = PROBE_TIMEOUT_SECONDS,
) -> dict[str, bool]:
    names = list(dict.fromkeys(functions))
    answers = await asyncio.gather(
        *(probe_check_function(http, gateway_url, name, wait_seconds) for name in names)
    )
    return dict(zip(names, answers, strict=True))


async def write_heartbeat(client: aioredis.Redis, heartbeat: ConnectorHeartbeat) -> None:
    await client.set(
        streams.connector_heartbeat_key(heartbeat.location),
        heartbeat.model_dump_json(by_alias=True),
        ex=heartbeat_ttl_seconds(heartbeat.interval_seconds),
    )


# --- reading (the API, the metrics function) ---------------------------------------------------------------------


class HeartbeatUnreadable(ValueError):
    """A value under a heartbeat key that is no heartbeat this reader knows (another version, a stray write)."""


def parse_heartbeat(raw: str | None) -> ConnectorHeartbeat | None:
    """None when there is none; HeartbeatUnreadable, naming the first bad field, when it does not validate."""
    if raw is None:
        return None
    try:
        return ConnectorHeartbeat.model_validate_json(raw)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "heartbeat"
        raise HeartbeatUnreadable(f"{where}: {first['msg']}") from None


@asynccontextmanager
async def short_lived_client(
    url: str, wait_seconds: float = PROBE_TIMEOUT_SECONDS
) -> AsyncIterator[aioredis.Redis]:
    """A client of its own with short timeouts, closed after use: the shared clients (shared.redis) wait and retry,
    which is right for the pipeline and wrong for a probe that must give up fast."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=wait_seconds,
        socket_timeout=wait_seconds,
        retry_on_timeout=False,
    )
    try:
        yield client
    finally:
        await client.aclose()


async def _read_one(location: str, wait_seconds: float) -> ConnectorHeartbeat | None:
    from redis.exceptions import RedisError

    try:
        async with (
            asyncio.timeout(wait_seconds),
            short_lived_client(region_redis_url(location), wait_seconds) as client,
        ):
            return parse_heartbeat(await client.get(streams.connector_heartbeat_key(location)))
    except HeartbeatUnreadable as error:
        log.warning("connector heartbeat of %s unreadable: %s", location, error)
    except (RedisError, OSError, TimeoutError) as error:
        # the type only: a connection error's text names the Redis host
        log.warning("connector heartbeat of %s not read: %s", location, type(error).__name__)
    return None


async def read_heartbeats(
    locations: Iterable[str], wait_seconds: float = PROBE_TIMEOUT_SECONDS
) -> dict[str, ConnectorHeartbeat | None]:
    """Each location's last heartbeat, read concurrently; None where there is none, it is unreadable (logged), or
    the location's Redis did not answer within wait_seconds. Never raises for one location's trouble."""
    names = list(dict.fromkeys(locations))
    beats = await asyncio.gather(*(_read_one(location, wait_seconds) for location in names))
    return dict(zip(names, beats, strict=True))
