"""The pipeline's metric families (operator token only): the functions' telemetry summed over every Redis server,
stream backlogs and dead letters, and database connection use. A scrape costs one round trip per Redis server
and one query, however many monitors and runs there are. Used by the metrics function (shared/metrics/app.py)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from shared import db, streams
from shared.checks import CHECK_TYPES
from shared.settings import Settings, get_settings
from shared.telemetry import METRICS, MetricSpec, merge_hashes, read_counter, read_histogram

log = logging.getLogger("supercheck.metrics")

PIPELINE_SPECS: tuple[MetricSpec, ...] = tuple(spec for spec in METRICS.values() if spec.scope == "pipeline")
# A Redis that does not answer within this is reported down for this scrape, not waited for.
SERVER_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class RedisServer:
    """One Redis the pipeline writes to; named for labels by what it serves, never by its URL."""

    name: str  # "primary", or the locations whose jobs it holds
    url: str


def redis_servers(settings: Settings) -> list[RedisServer]:
    """REDIS_URL, then each distinct regional job Redis (region-redis-urls) that is not that one."""
    primary = settings.require_redis_url()
    locations_by_url: dict[str, list[str]] = {}
    for location, url in settings.region_redis_urls.items():
        if url != primary:
            locations_by_url.setdefault(url, []).append(location)
    return [RedisServer("primary", primary)] + [
        RedisServer(",".join(sorted(locations)), url) for url, locations in locations_by_url.items()
    ]


def pipeline_streams(settings: Settings) -> list[str]:
    """Every stream a consumer group reads: each check type's jobs per configured location, results, alerts."""
    jobs = [
        streams.job_stream(check_type, location)
        for check_type in CHECK_TYPES
        for location in settings.locations
    ]
    return [*jobs, streams.RESULTS_STREAM, streams.PINGS_STREAM, streams.ALERTS_STREAM]


# --- Redis: one round trip per server ----------------------------------------------------------------------

# KEYS: n streams, then their n dead-letter streams; a key that is absent (or not a stream) counts 0. Per
# stream: its length, its dead letters' length, and per consumer group its name, pending count, lag (-1: Redis
# did not say; it does from 7.0) and the id of the first entry it has not read ('' when caught up). Ids only:
# XRANGE's entries (bundles of many jobs) stay in Redis. Redis' own clock comes first, so ages do not depend on
# this host's.
_STREAM_BACKLOGS = """
local function is_stream(key)
    return redis.call('TYPE', key).ok == 'stream'
end
local function length(key)
    if is_stream(key) then return redis.call('XLEN', key) end
    return 0
end
local out = {redis.call('TIME')}
local n = #KEYS / 2
for i = 1, n do
    local key = KEYS[i]
    local entry = {length(key), length(KEYS[n + i])}
    if is_stream(key) then
        for _, group in ipairs(redis.call('XINFO', 'GROUPS', key)) do
            local f = {}
            for j = 1, #group, 2 do f[group[j]] = group[j + 1] end
            local next_entry = redis.call('XRANGE', key, '(' .. f['last-delivered-id'], '+', 'COUNT', 1)
            local first_unread = ''
            if #next_entry > 0 then first_unread = next_entry[1][1] end
            local lag = f['lag']
            if type(lag) ~= 'number' then lag = -1 end
            table.insert(entry, {f['name'], f['pending'], lag, first_unread})
        end
    end
    out[i + 1] = entry
end
return out
"""


@dataclass(frozen=True)
class GroupBacklog:
    group: str
    pending: int
    lag: int | None  # entries not yet delivered; None where Redis does not count them (before 7.0)
    unread_age_seconds: float  # how long its oldest unread entry has waited; 0 when caught up


@dataclass(frozen=True)
class StreamBacklog:
    length: int
    dead_letters: int
    groups: tuple[GroupBacklog, ...]


@dataclass(frozen=True)
class ServerRead:
    hashes: dict[str, dict[str, str]]  # telemetry hash per spec name
    backlogs: dict[str, StreamBacklog]


def _entry_millis(entry_id: str) -> int:
    return int(entry_id.split("-", 1)[0])


def parse_backlogs(stream_names: list[str], reply: list) -> dict[str, StreamBacklog]:
    """_STREAM_BACKLOGS' reply as backlogs per stream (pure: table-tested)."""
    seconds, micros = (int(part) for part in reply[0])
    now_ms = seconds * 1000 + micros // 1000
    backlogs: dict[str, StreamBacklog] = {}
    for stream, (length, dead, *groups) in zip(stream_names, reply[1:], strict=True):
        backlogs[stream] = StreamBacklog(
            int(length),
            int(dead),
            tuple(
                GroupBacklog(
                    str(name),
                    int(pending),
                    None if int(lag) < 0 and first_unread else max(int(lag), 0),
                    max(0, now_ms - _entry_millis(first_unread)) / 1000 if first_unread else 0.0,
                )
                for name, pending, lag, first_unread in groups
            ),
        )
    return backlogs


async def _read_server(
    server: RedisServer, specs: Iterable[MetricSpec], stream_names: list[str]
) -> ServerRead:
    from shared.redis import get_redis

    specs = list(specs)
    pipe = get_redis(server.url).pipeline(transaction=False)
    for spec in specs:
        pipe.hgetall(spec.key)
    if stream_names:
        keys = stream_names + [streams.dead_letter_stream(stream) for stream in stream_names]
        pipe.eval(_STREAM_BACKLOGS, len(keys), *keys)
    # a command Redis refuses (a key of another type) costs its own figures, not the server's: only an
    # unreachable server raises here
    replies = await pipe.execute(raise_on_error=False)
    hashes = {
        spec.name: reply if isinstance(reply, dict) else {}
        for spec, reply in zip(specs, replies, strict=False)
    }
    backlogs: dict[str, StreamBacklog] = {}
    if stream_names and isinstance(replies[len(specs)], Exception):
        log.warning(
            "stream backlogs of Redis %s not read: %s", server.name, type(replies[len(specs)]).__name__
        )
    elif stream_names:
        backlogs = parse_backlogs(stream_names, replies[len(specs)])
    return ServerRead(hashes, backlogs)


async def read_servers(
    specs: Iterable[MetricSpec], with_streams: bool = True
) -> tuple[dict[str, dict[str, str]], dict[str, StreamBacklog], dict[str, bool]]:
    """The specs' hashes summed over every Redis server (merge_hashes), the backlog of each stream in the Redis
    it lives in, and which servers answered: one that did not is left out of the sums, never fails the read."""
    settings = get_settings()
    servers = redis_servers(settings)
    specs = list(specs)
    by_server: dict[str, list[str]] = {server.url: [] for server in servers}
    for stream in pipeline_streams(settings) if with_streams else []:
        by_server.setdefault(streams.redis_url_for(stream), []).append(stream)
    reads = await asyncio.gather(
        *(
            asyncio.wait_for(_read_server(server, specs, by_server[server.url]), SERVER_TIMEOUT_SECONDS)
            for server in servers
        ),
        return_exceptions=True,
    )
    up = {server.name: isinstance(read, ServerRead) for server, read in zip(servers, reads, strict=True)}
    for server, read in zip(servers, reads, strict=True):
        if not up[server.name]:
            # the error's type only: a connection error's text may carry the URL, password and all
            log.warning("Redis %s left out of this scrape: %s", server.name, type(read).__name__)
    answered = [read for read in reads if isinstance(read, ServerRead)]
    hashes = {
        spec.name: merge_hashes([read.hashes[spec.name] for read in answered] or [{}]) for spec in specs
    }
    backlogs = {stream: backlog for read in answered for stream, backlog in read.backlogs.items()}
    return hashes, backlogs, up


# --- families (pure) ---------------------------------------------------------------------------------------


def telemetry_families(specs: Iterable[MetricSpec], hashes: dict[str, dict[str, str]]) -> list[Metric]:
    """Each spec as its counter or histogram family, from its (merged) hash."""
    families: list[Metric] = []
    for spec in specs:
        stored = hashes.get(spec.name, {})
        if spec.kind == "counter":
            family = CounterMetricFamily(spec.name, spec.help, labels=spec.labels)
            for labels, value in sorted(read_counter(spec, stored).items()):
                family.add_metric(list(labels), value)
        else:
            family = HistogramMetricFamily(spec.name, spec.help, labels=spec.labels)
            for labels, histogram in sorted(read_histogram(spec, stored).items()):
                family.add_metric(list(labels), histogram.buckets, histogram.sum)
        families.append(family)
    return families


def redis_up_family(answered: dict[str, bool]) -> Metric:
    family = GaugeMetricFamily(
        "supercheck_redis_up",
        "Whether each Redis server answered this scrape (primary, or the locations a regional one serves).",
        labels=["server"],
    )
    for server, up in answered.items():
        family.add_metric([server], 1.0 if up else 0.0)
    return family


def stream_families(backlogs: dict[str, StreamBacklog]) -> list[Metric]:
    length = GaugeMetricFamily("supercheck_stream_length", "Entries in each stream.", labels=["stream"])
    dead = GaugeMetricFamily(
        "supercheck_stream_dead_letters", "Entries in each stream's dead-letter stream.", labels=["stream"]
    )
    pending = GaugeMetricFamily(
        "supercheck_stream_pending",
        "Entries delivered to each consumer group and not yet acknowledged.",
        labels=["stream", "group"],
    )
    lag = GaugeMetricFamily(
        "supercheck_stream_lag",
        "Entries not yet delivered to each consumer group (Redis 7 and later; before, only 0 when caught up).",
        labels=["stream", "group"],
    )
    lag_seconds = GaugeMetricFamily(
        "supercheck_stream_lag_seconds",
        "How long the oldest entry not yet delivered to each consumer group has waited (0: caught up).",
        labels=["stream", "group"],
    )
    for stream, backlog in sorted(backlogs.items()):
        length.add_metric([stream], backlog.length)
        dead.add_metric([stream], backlog.dead_letters)
        for group in backlog.groups:
            pending.add_metric([stream, group.group], group.pending)
            lag_seconds.add_metric([stream, group.group], group.unread_age_seconds)
            if group.lag is not None:
                lag.add_metric([stream, group.group], group.lag)
    return [length, dead, pending, lag, lag_seconds]


# --- Postgres: one query -----------------------------------------------------------------------------------

# Every client connection to this database by application_name (shared/db.py sets it to the function's name)
# and state, and the server's limit; the metrics function's own connection is among them.
_CONNECTIONS = """
select coalesce(nullif(a.application_name, ''), 'unknown') as application, coalesce(a.state, 'unknown') as state,
    count(*) as connections, current_setting('max_connections')::int as max_connections
from pg_stat_activity a
where a.datname = current_database() and a.backend_type = 'client backend'
group by 1, 2
order by 1, 2
"""


def db_families(rows: list[dict]) -> list[Metric]:
    connections = GaugeMetricFamily(
        "supercheck_db_connections",
        "Connections to the database by application (the function's name) and state (active, idle, ...).",
        labels=["application", "state"],
    )
    for row in rows:
        connections.add_metric([row["application"], row["state"]], row["connections"])
    limit = GaugeMetricFamily("supercheck_db_max_connections", "The database server's max_connections.")
    if rows:
        limit.add_metric([], rows[0]["max_connections"])
    return [connections, limit]


async def _connection_rows() -> list[dict]:
    async with db.transaction() as conn:
        return await (await conn.execute(_CONNECTIONS)).fetchall()


async def pipeline_families() -> list[Metric]:
    """Every pipeline family for one scrape: Redis servers read concurrently, the database once."""
    (hashes, backlogs, answered), rows = await asyncio.gather(
        read_servers(PIPELINE_SPECS), _connection_rows()
    )
    return [
        *telemetry_families(PIPELINE_SPECS, hashes),
        redis_up_family(answered),
        *stream_families(backlogs),
        *db_families(rows),
    ]
