"""Every configured region's pipeline health, as GET /regions/health reads it (shared/api/routes/history.py): each
region's job Redis is visited concurrently, within a short timeout, for a PING, its connector's heartbeat
(shared/pipeline/heartbeats.py) and its job streams' XINFO; shared/rules/regional_health.py gives the verdict.

Nothing here names a Redis address or repeats an error's text: a connection error's text names the host."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from shared import streams
from shared.api.schemas import HealthReasonOut, RegionHealthOut, RegionsHealthReport, StreamBacklogOut
from shared.checks import CHECK_TYPES
from shared.pipeline.heartbeats import (
    PROBE_TIMEOUT_SECONDS,
    ConnectorHeartbeat,
    HeartbeatUnreadable,
    parse_heartbeat,
    region_redis_url,
    short_lived_client,
)
from shared.rules.regional_health import (
    Backlog,
    HeartbeatFacts,
    RegionFacts,
    judge_region,
    stale_after_seconds,
    stream_lag,
)
from shared.settings import get_settings

log = logging.getLogger("supercheck.api")


@dataclass(frozen=True)
class RegionProbe:
    location: str
    facts: RegionFacts
    heartbeat: ConnectorHeartbeat | None = None


async def regions_health(
    locations: Iterable[str] | None = None, wait_seconds: float = PROBE_TIMEOUT_SECONDS
) -> RegionsHealthReport:
    names = list(dict.fromkeys(locations if locations is not None else get_settings().locations))
    now = datetime.now(UTC)
    probes = await asyncio.gather(*(probe_region(location, now, wait_seconds) for location in names))
    data = [_region_out(probe, now) for probe in probes]
    return RegionsHealthReport(ok=all(region.ok for region in data), checked_at=now, data=data)


async def probe_region(
    location: str, now: datetime, wait_seconds: float = PROBE_TIMEOUT_SECONDS
) -> RegionProbe:
    """One region's facts; a Redis that refuses, errs or does not answer within wait_seconds is unreachable."""
    from redis.exceptions import RedisError

    try:
        async with (
            asyncio.timeout(wait_seconds),
            short_lived_client(region_redis_url(location), wait_seconds) as client,
        ):
            return await _read_region(client, location, now)
    except (RedisError, OSError, TimeoutError) as error:
        log.warning("region %s: its Redis did not answer (%s)", location, type(error).__name__)
        return RegionProbe(location, RegionFacts(redis_reachable=False))


async def _read_region(client, location: str, now: datetime) -> RegionProbe:
    job_streams = list(dict.fromkeys(streams.job_stream(check_type, location) for check_type in CHECK_TYPES))
    pipe = client.pipeline(transaction=False)
    pipe.ping()
    pipe.get(streams.connector_heartbeat_key(location))
    for stream in job_streams:
        pipe.xinfo_stream(stream)
        pipe.xinfo_groups(stream)
    # a job stream nobody has written yet answers "no such key": an error reply in its place, not an exception
    replies = await pipe.execute(raise_on_error=False)
    if isinstance(replies[0], Exception):
        raise replies[0]
    heartbeat, unreadable = None, False
    try:
        heartbeat = parse_heartbeat(replies[1])
    except HeartbeatUnreadable as error:
        log.warning("region %s: connector heartbeat unreadable: %s", location, error)
        unreadable = True
    facts = RegionFacts(
        redis_reachable=True,
        heartbeat=_heartbeat_facts(heartbeat, now),
        heartbeat_unreadable=unreadable,
        backlog=_backlog(list(zip(replies[2::2], replies[3::2], strict=True))),
    )
    return RegionProbe(location, facts, heartbeat)


def _heartbeat_facts(heartbeat: ConnectorHeartbeat | None, now: datetime) -> HeartbeatFacts | None:
    if heartbeat is None:
        return None
    return HeartbeatFacts(
        age_seconds=heartbeat.age_seconds(now),
        interval_seconds=heartbeat.interval_seconds,
        connector_status=heartbeat.connector_status,
        loops=heartbeat.loops,
        check_functions=heartbeat.check_functions,
    )


def _backlog(per_stream: list[tuple[object, object]]) -> Backlog:
    """Summed over the streams' XINFO STREAM and XINFO GROUPS replies (an exception where a stream is absent)."""
    length = pending = 0
    lag: int | None = 0
    for info, groups in per_stream:
        if not isinstance(info, dict):
            continue  # no such stream: nothing kept, nothing waiting
        length += info["length"]
        group = (
            next((g for g in groups if g["name"] == streams.CONSUMER_GROUP), None)
            if isinstance(groups, list)
            else None
        )
        if group is None:
            undelivered = info["length"]  # no connector has read it yet: all of it waits
        else:
            pending += group["pending"]
            undelivered = stream_lag(
                group.get("lag"), info.get("last-generated-id"), group["last-delivered-id"]
            )
        lag = None if lag is None or undelivered is None else lag + undelivered
    return Backlog(length=length, pending=pending, lag=lag)


def _region_out(probe: RegionProbe, now: datetime) -> RegionHealthOut:
    verdict = judge_region(probe.facts)
    heartbeat, backlog = probe.heartbeat, probe.facts.backlog
    worst_first = sorted(verdict.reasons, key=lambda reason: reason.severity != "down")
    return RegionHealthOut(
        location=probe.location,
        status=verdict.status,
        ok=verdict.ok,
        reasons=[HealthReasonOut(code=r.code, message=r.message, severity=r.severity) for r in worst_first],
        redis_reachable=probe.facts.redis_reachable,
        heartbeat_age_seconds=round(heartbeat.age_seconds(now), 3) if heartbeat else None,
        heartbeat_stale_after_seconds=stale_after_seconds(heartbeat.interval_seconds) if heartbeat else None,
        connector_status=heartbeat.connector_status if heartbeat else None,
        serves_all_locations=heartbeat.worker_location is None if heartbeat else None,
        check_functions=heartbeat.check_functions if heartbeat else None,
        backlog=StreamBacklogOut(length=backlog.length, pending=backlog.pending, lag=backlog.lag)
        if backlog
        else None,
    )
