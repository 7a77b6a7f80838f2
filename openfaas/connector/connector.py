"""The Redis Streams connector: reads job/result/alert streams with a consumer group and POSTs batches to functions.

Acknowledges a message only after the function answered 2xx (the function commits before answering), reclaims
messages left idle by a crashed consumer, and moves a message to `<stream>:dead` with the reason once it was
rejected as malformed or delivered too many times. Every POST is signed with the internal token
(shared/internal_auth.py): the functions refuse unsigned batches. With heartbeat_seconds set, it also writes a
heartbeat for each location it serves (liveness.beat, shared/pipeline/heartbeats.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial

import httpx
import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from openfaas.connector.liveness import LoopState, beat, supervise
from shared import internal_auth, streams
from shared.pipeline import heartbeats, routing
from shared.settings import get_settings
from shared.telemetry import Tally

log = logging.getLogger("connector")
# (Redis URL, function, the ordered stream read alone or None): the streams one read loop reads
ReadGroup = tuple[str, str | None, str | None]


@dataclass
class ConnectorConfig:
    redis_url: str
    gateway_url: str
    streams: list[str]
    batch_size: int = 50
    concurrency: int = 4
    max_deliveries: int = 5
    idle_reclaim_ms: int = 60_000
    request_timeout_seconds: float = 330.0
    # A Redis that stops answering fails the command after this long (a blocking read waits 1 s), so a loop
    # reports it instead of hanging unnoticed.
    redis_timeout_seconds: float = 10.0
    restart_after_seconds: float = 1.0  # before a loop that died starts again
    consumer: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    # Streams living in another Redis (a region's own job Redis); every other stream is in redis_url.
    stream_redis_urls: dict[str, str] = field(default_factory=dict)
    # Signs each delivery; `python -m openfaas.connector` refuses to start without one.
    internal_token: str | None = field(default_factory=lambda: get_settings().internal_token, repr=False)
    # Seconds between heartbeats (shared/pipeline/heartbeats.py); None: none, as for a connector a test drives.
    heartbeat_seconds: float | None = None
    worker_location: str | None = None  # what the heartbeat says it serves; None: every location it reads
    probe_timeout_seconds: float = heartbeats.PROBE_TIMEOUT_SECONDS  # each check function's probe
    # The region label of its telemetry: the location it serves, or "all" when it reads every location.
    region: str = field(default_factory=lambda: get_settings().worker_location or "all")
    telemetry_every_seconds: float = 1.0  # its delivery counts go to Redis at most this often


@dataclass
class ConnectorStats:
    delivered: int = 0
    acked: int = 0
    dead_lettered: int = 0
    failed_posts: int = 0
    reclaimed: int = 0
    last_loop_at: float = 0.0


class Connector:
    def __init__(self, config: ConnectorConfig):
        self.config = config
        self.clients: dict[str, aioredis.Redis] = {}
        for url in {config.redis_url, *config.stream_redis_urls.values()}:
            self.clients[url] = aioredis.Redis.from_url(
                url,
                decode_responses=True,
                # an entry that is not UTF-8 reaches _dispatch (dead-lettered as malformed, byte for byte)
                # instead of failing the whole read, and every later read of it, with UnicodeDecodeError
                encoding_errors="surrogateescape",
                health_check_interval=15,
                socket_timeout=config.redis_timeout_seconds,
                socket_connect_timeout=config.redis_timeout_seconds,
            )
        self.http = httpx.AsyncClient(timeout=config.request_timeout_seconds)
        # POST slots per function: a function slow to answer (checks of slow targets, jobs waiting for their
        # slot) must not hold up batches to another (results to aggregate, alerts).
        self.slots: dict[str | None, asyncio.Semaphore] = {}
        self.in_flight: set[asyncio.Task] = set()
        # Messages this process has read and not yet had answered: queued behind a busy POST slot (a read can
        # bring many bundles) or in flight. Reclaiming them as idle would POST them a second time.
        self.held: set[tuple[str, str]] = set()
        self.stats = ConnectorStats()
        self.loops: dict[str, LoopState] = {}  # what /health reports, filled by run_forever
        self._groups_ready: set[str] = set()
        self.tally = Tally()
        self._tally_flushed_at = time.monotonic()

    async def close(self) -> None:
        if self.in_flight:
            await asyncio.gather(*self.in_flight, return_exceptions=True)
        await self.flush_telemetry()
        await self.http.aclose()
        for client in self.clients.values():
            await client.aclose()

    async def ensure_groups(self) -> None:
        for stream in self.config.streams:
            if stream in self._groups_ready:
                continue
            try:
                await self.redis_for(stream).xgroup_create(
                    stream, streams.CONSUMER_GROUP, id="0", mkstream=True
                )
            except ResponseError as error:
                if "BUSYGROUP" not in str(error):
                    raise
            self._groups_ready.add(stream)

    # --- reading ---------------------------------------------------------------------------------

    def redis_for(self, stream: str) -> aioredis.Redis:
        return self.clients[self.config.stream_redis_urls.get(stream, self.config.redis_url)]

    def read_groups(self) -> dict[ReadGroup, list[str]]:
        """Streams read together: those of one Redis feeding one function, each group with its own read loop;
        an ordered stream (routing.ORDERED_STREAMS) alone in its group."""
        groups: dict[ReadGroup, list[str]] = {}
        for stream in self.config.streams:
            url = self.config.stream_redis_urls.get(stream, self.config.redis_url)
            ordered = stream if stream in routing.ORDERED_STREAMS else None
            groups.setdefault((url, routing.function_for_stream(stream), ordered), []).append(stream)
        return groups

    async def read_new(self, block_ms: int | None, group: ReadGroup | None = None) -> int:
        """Read up to one batch per stream (of one read group, or all) and dispatch each batch; returns messages
        read."""
        await self.ensure_groups()
        total = 0
        for key, names in self.read_groups().items():
            if group is not None and key != group:
                continue
            reply = await self.clients[key[0]].xreadgroup(
                streams.CONSUMER_GROUP,
                self.config.consumer,
                {stream: ">" for stream in names},
                count=self.config.batch_size,
                block=block_ms,
            )
            for stream, entries in reply or []:
                total += len(entries)
                await self._dispatch(stream, entries, first_delivery=True)
        return total

    async def reclaim_idle(self) -> int:
        """Take over messages another consumer left unacknowledged for too long; dead-letter worn-out ones."""
        await self.ensure_groups()
        reclaimed = 0
        for stream in self.config.streams:
            cursor = "0-0"
            while True:
                reply = await self.redis_for(stream).xautoclaim(
                    stream,
                    streams.CONSUMER_GROUP,
                    self.config.consumer,
                    self.config.idle_reclaim_ms,
                    start_id=cursor,
                    count=self.config.batch_size,
                )
                cursor, entries = reply[0], reply[1]
                gone = [message_id for message_id, fields in entries if fields is None]
                entries = [(message_id, fields) for message_id, fields in entries if fields is not None]
                if len(reply) > 2:
                    gone += list(reply[2])
                if gone:  # trimmed away while pending: nothing left to deliver
                    await self.redis_for(stream).xack(stream, streams.CONSUMER_GROUP, *gone)
                entries = [entry for entry in entries if (stream, entry[0]) not in self.held]
                if entries:
                    reclaimed += len(entries)
                    await self._dispatch(stream, entries)
                if cursor == "0-0" or not (entries or gone):
                    break
        self.stats.reclaimed += reclaimed
        return reclaimed

    async def _delivery_counts(self, stream: str, ids: list[str]) -> dict[str, int]:
        """Each message's delivery count as Redis keeps it, asked id by id: a range over the batch could be cut
        off by other consumers' entries in between. A message no longer pending to this consumer (acknowledged,
        or claimed by another since it was read) is absent."""
        pipe = self.redis_for(stream).pipeline(transaction=False)
        for message_id in ids:
            pipe.xpending_range(
                stream,
                streams.CONSUMER_GROUP,
                min=message_id,
                max=message_id,
                count=1,
                consumername=self.config.consumer,
            )
        return {
            entry["message_id"]: entry["times_delivered"] for reply in await pipe.execute() for entry in reply
        }

    # --- dispatching -----------------------------------------------------------------------------

    async def _dispatch(
        self, stream: str, entries: list[tuple[str, dict]], first_delivery: bool = False
    ) -> None:
        """first_delivery: the entries were just read as new (">"), so Redis counts each delivered once, and
        asking it costs a round trip of one XPENDING per entry (a fifth of the connector's CPU at 1,000 checks/s,
        py-spy); entries claimed from other consumers ask."""
        function = routing.function_for_stream(stream)
        ids = [message_id for message_id, _ in entries]
        counts = dict.fromkeys(ids, 1) if first_delivery else await self._delivery_counts(stream, ids)
        messages, dead = [], []
        for message_id, fields in entries:
            deliveries = counts.get(message_id)
            if deliveries is None:  # someone else has it now; a guessed count could deliver it forever
                log.info("%s %s is no longer pending to this consumer; not delivered", stream, message_id)
                continue
            if function is None:
                dead.append((message_id, fields, f"no function consumes stream {stream}"))
                continue
            if deliveries > self.config.max_deliveries:
                dead.append(
                    (message_id, fields, f"gave up after {deliveries - 1} deliveries without success")
                )
                continue
            try:
                data = streams.decode(fields)
            except (ValueError, json.JSONDecodeError) as error:
                dead.append((message_id, fields, f"malformed stream entry: {error}"))
                continue
            messages.append({"id": message_id, "stream": stream, "deliveries": deliveries, "data": data})
        if dead:
            await self._dead_letter(stream, dead)
        self.held.update((stream, message["id"]) for message in messages)
        # an ordered stream's batches one at a time, in their order; others share their function's slots
        slots = (
            self.slots.setdefault(stream, asyncio.Semaphore(1))
            if stream in routing.ORDERED_STREAMS
            else self.slots.setdefault(function, asyncio.Semaphore(self.config.concurrency))
        )
        for chunk in self._posts(stream, messages):
            await slots.acquire()
            task = asyncio.create_task(self._post(stream, function, chunk, dict(entries)))
            self.in_flight.add(task)
            task.add_done_callback(lambda done, slots=slots: self._finished(done, slots))

    def _posts(self, stream: str, messages: list[dict]) -> list[list[dict]]:
        """Messages grouped into POSTs of at most the stream's job cap, counting every job a bundle carries
        (a bundle is never split: one larger than the cap goes alone)."""
        cap = routing.max_batch_for_stream(stream) or self.config.batch_size
        posts: list[list[dict]] = []
        jobs = 0
        for message in messages:
            size = streams.jobs_in_envelope(message["data"])
            if not posts or jobs + size > cap:
                posts.append([])
                jobs = 0
            posts[-1].append(message)
            jobs += size
        return posts

    def _finished(self, task: asyncio.Task, slots: asyncio.Semaphore) -> None:
        self.in_flight.discard(task)
        slots.release()
        if not task.cancelled() and task.exception() is not None:
            log.error("batch task failed: %r", task.exception())

    async def _post(
        self, stream: str, function: str, messages: list[dict], fields_by_id: dict[str, dict]
    ) -> None:
        try:
            await self._post_once(stream, function, messages, fields_by_id)
        finally:
            self.held.difference_update((stream, message["id"]) for message in messages)

    async def _post_once(
        self, stream: str, function: str, messages: list[dict], fields_by_id: dict[str, dict]
    ) -> None:
        url = f"{self.config.gateway_url.rstrip('/')}/function/{function}"
        self.stats.delivered += len(messages)
        body = json.dumps({"messages": messages}).encode()
        headers = {"Content-Type": "application/json"}
        if self.config.internal_token:
            # signed at each attempt, so a retry after a long outage is not refused as stale
            headers.update(internal_auth.sign(body, self.config.internal_token))
        try:
            response = await self.http.post(url, content=body, headers=headers)
        except httpx.HTTPError as error:
            self.stats.failed_posts += 1
            self._count(function, "error", len(messages))
            log.warning(
                "POST %s failed (%s); %d message(s) stay pending", url, type(error).__name__, len(messages)
            )
            return
        if response.status_code // 100 != 2:
            self.stats.failed_posts += 1
            self._count(function, "error", len(messages))
            log.warning(
                "POST %s answered %d; %d message(s) stay pending", url, response.status_code, len(messages)
            )
            return
        try:
            reply = response.json()
            # Only this POST's ids: a reply naming others must not acknowledge what another POST carries.
            posted = {message["id"] for message in messages}
            processed = [mid for mid in reply.get("processed", []) if mid in posted]
            rejected = [(item["id"], item) for item in reply.get("rejected", []) if item["id"] in posted]
        except (ValueError, AttributeError, KeyError, TypeError):
            # Not our function's answer (a proxy's page, a misrouted gateway): acknowledging would lose the batch.
            # Left pending, it comes again, and is dead-lettered after its last delivery if this goes on.
            self.stats.failed_posts += 1
            self._count(function, "error", len(messages))
            log.warning(
                "POST %s answered %d without a batch reply; %d message(s) stay pending",
                url,
                response.status_code,
                len(messages),
            )
            return
        if rejected:
            await self._dead_letter(
                stream,
                [
                    dead
                    for mid, item in rejected
                    for dead in _dead_letters(function, mid, item, fields_by_id.get(mid, {}))
                ],
            )
        if processed:
            if stream in routing.DELETED_WHEN_ACKNOWLEDGED:
                pipe = self.redis_for(stream).pipeline(transaction=True)
                pipe.xack(stream, streams.CONSUMER_GROUP, *processed)
                pipe.xdel(stream, *processed)
                await pipe.execute()
            else:
                await self.redis_for(stream).xack(stream, streams.CONSUMER_GROUP, *processed)
            self.stats.acked += len(processed)
        self._count(function, "ok", len(set(processed)))
        self._count(function, "unfinished", len(posted - set(processed) - {mid for mid, _ in rejected}))

    async def _dead_letter(self, stream: str, dead: list[tuple[str, dict, str]]) -> None:
        pipe = self.redis_for(stream).pipeline(transaction=True)
        for message_id, fields, reason in dead:
            pipe.xadd(
                streams.dead_letter_stream(stream),
                {
                    "stream": stream,
                    "id": message_id,
                    "reason": reason[:1000],
                    **{k: v for k, v in (fields or {}).items()},
                },
            )
            pipe.xack(stream, streams.CONSUMER_GROUP, message_id)
            if stream in routing.DELETED_WHEN_ACKNOWLEDGED:  # its fields are in the dead letter
                pipe.xdel(stream, message_id)
            log.warning("dead-lettered %s %s: %s", stream, message_id, reason)
        await pipe.execute()
        self.stats.dead_lettered += len(dead)
        # messages, not entries: a rejected bundle leaves one entry per invalid job
        self._count(routing.function_for_stream(stream), "dead_letter", len({entry[0] for entry in dead}))

    # --- telemetry -------------------------------------------------------------------------------

    def _count(self, function: str | None, outcome: str, messages: int) -> None:
        self.tally.count(
            "supercheck_connector_deliveries",
            messages,
            region=self.config.region,
            function=function or "none",
            outcome=outcome,
        )

    async def flush_telemetry(self, at_most_every: float = 0.0) -> None:
        """Delivery counts to the connector's Redis (best effort): from the loops at most once a period, not
        per message."""
        if time.monotonic() - self._tally_flushed_at < at_most_every:
            return
        self._tally_flushed_at = time.monotonic()
        await self.tally.flush(client=self.clients[self.config.redis_url])

    # --- loops -----------------------------------------------------------------------------------

    async def drain(self, max_seconds: float = 60.0) -> ConnectorStats:
        """Burst mode: deliver everything queued (including idle reclaimable messages), then return."""
        deadline = time.monotonic() + max_seconds
        while time.monotonic() < deadline:
            read = await self.read_new(block_ms=None)
            reclaimed = await self.reclaim_idle()
            if self.in_flight:
                await asyncio.gather(*list(self.in_flight), return_exceptions=True)
            if not read and not reclaimed and not self.in_flight:
                break
        await self.flush_telemetry()
        return self.stats

    async def run_forever(self, reclaim_every_seconds: float = 5.0) -> None:
        """Every read loop and the reclaim loop, each supervised: one that dies is reported and restarted."""
        bodies: dict[str, Callable[[LoopState], Awaitable[None]]] = {}
        for number, group in enumerate(self.read_groups()):
            name = f"read {group[1] or 'unrouted'}" + (f" {group[2]}" if group[2] else "")
            bodies[name if name not in bodies else f"{name} #{number}"] = partial(self._read_loop, group)
        bodies["reclaim"] = partial(self._reclaim_loop, reclaim_every_seconds)
        if self.config.heartbeat_seconds and self.job_streams_by_location():
            bodies["heartbeat"] = partial(self._heartbeat_loop, self.config.heartbeat_seconds)
        self.loops = {name: LoopState(name) for name in bodies}
        await asyncio.gather(
            *(
                supervise(self.loops[name], body, self.config.restart_after_seconds)
                for name, body in bodies.items()
            )
        )

    async def _read_loop(self, group: ReadGroup, state: LoopState) -> None:
        state.entered()
        while True:
            self.stats.last_loop_at = time.time()
            try:
                await self.read_new(block_ms=1000, group=group)
            except (RedisError, OSError) as error:
                await self._redis_trouble(error, state)
            else:
                state.iterated()
            await self.flush_telemetry(self.config.telemetry_every_seconds)

    async def _reclaim_loop(self, every_seconds: float, state: LoopState) -> None:
        state.entered()
        while True:
            await asyncio.sleep(every_seconds)
            try:
                await self.reclaim_idle()
            except (RedisError, OSError) as error:
                await self._redis_trouble(error, state)
            else:
                state.iterated()

    async def _heartbeat_loop(self, every_seconds: float, state: LoopState) -> None:
        state.entered()
        while True:
            try:
                await beat(self, every_seconds)
            except (RedisError, OSError) as error:
                await self._redis_trouble(error, state)
            else:
                state.iterated()
            await asyncio.sleep(every_seconds)

    def job_streams_by_location(self) -> dict[str, list[str]]:
        """The locations this connector delivers jobs for (what its heartbeat covers), each with its job streams."""
        found: dict[str, list[str]] = {}
        for stream in self.config.streams:
            if parsed := streams.parse_job_stream(stream):
                found.setdefault(parsed[1], []).append(stream)
        return found

    async def _redis_trouble(self, error: Exception, state: LoopState) -> None:
        log.warning("redis unavailable (%s); retrying", error)
        state.redis_unavailable(error)
        self._groups_ready.clear()  # a restarted Redis without persistence lost the consumer groups
        await asyncio.sleep(1.0)


def _dead_letters(function: str, message_id: str, item: dict, fields: dict) -> list[tuple[str, dict, str]]:
    """What a rejection leaves in the dead-letter stream: the entry itself, or, for a bundle whose valid jobs
    ran, each invalid job on its own (with its index in the bundle) so the stored jobs are not dead-lettered."""
    whole = [(message_id, fields, f"rejected by {function}: {item.get('error', 'rejected')}")]
    jobs = item.get("jobs") if isinstance(item.get("jobs"), list) else []
    return [
        (
            message_id,
            {streams.PAYLOAD_FIELD: json.dumps(job.get("job")), "job_index": str(job.get("index"))},
            f"rejected by {function}: {job.get('error', 'invalid job')}",
        )
        for job in jobs
        if isinstance(job, dict)
    ] or whole
