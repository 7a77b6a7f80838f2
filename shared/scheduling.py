"""The schedule function's work: claim due monitors, record runs (outbox), publish one job per location."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from psycopg import AsyncConnection

from shared import db, streams
from shared.checks import configured_timeout
from shared.models import LocationConfig
from shared.settings import get_settings

CLAIM_BATCH = 10_000
_PUBLISHES_IN_FLIGHT = 2  # claim the next batch in Postgres while the previous one goes to Redis


@dataclass
class TickReport:
    runs_created: int = 0
    jobs_published: int = 0
    runs_redispatched: int = 0
    run_ids: list[str] = field(default_factory=list)

    def as_json(self) -> dict:
        return {
            "runsCreated": self.runs_created,
            "jobsPublished": self.jobs_published,
            "runsRedispatched": self.runs_redispatched,
            "runIds": self.run_ids,
        }


def time_ordered_uuid() -> uuid.UUID:
    """A UUIDv7: run ids that sort by creation keep index inserts at the right edge of the B-tree."""
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    return uuid.UUID(int=value)


@lru_cache(maxsize=4096)
def _location_config(raw: str) -> LocationConfig:
    return LocationConfig.model_validate_json(raw)


def expected_locations(location_config: dict | str, active_regions: list[str]) -> list[str]:
    """Where a run goes; location_config as stored (JSON text is parsed once per distinct value)."""
    raw = (
        location_config
        if isinstance(location_config, str)
        else json.dumps(location_config or {}, sort_keys=True)
    )
    config = _location_config(raw)
    if not config.enabled:
        return active_regions[:1]
    if not config.locations:
        return list(active_regions)
    chosen = [loc for loc in config.locations if loc in active_regions]
    return chosen or active_regions[:1]


@lru_cache(maxsize=4096)
def _timeout_budget(check_type: str, config_text: str) -> float:
    return configured_timeout(check_type, json.loads(config_text))


def run_deadline(now: datetime, check_type: str, config: dict | str, frequency_minutes: int) -> datetime:
    """Check timeout plus grace, but never later than the next run would start (config as dict or stored text)."""
    grace = get_settings().run_deadline_grace_seconds
    text = config if isinstance(config, str) else json.dumps(config, sort_keys=True)
    seconds = min(_timeout_budget(check_type, text) + grace, frequency_minutes * 60)
    return now + timedelta(seconds=seconds)


async def _active_regions(conn: AsyncConnection) -> list[str]:
    rows = await (
        await conn.execute("select code from regions where active order by created_at, code")
    ).fetchall()
    configured = get_settings().locations
    codes = [row["code"] for row in rows]
    # Keep the operator's configured order first: the first location also runs single-location monitors.
    return [loc for loc in configured if loc in codes] + [loc for loc in codes if loc not in configured]


_CLAIM_DUE = """
with due as (
    select id, next_run_at from monitors
    where enabled and next_run_at <= %(now)s and (next_run_at, id) > (%(after_at)s, %(after_id)s) {only_ids}
    order by next_run_at, id
    limit %(limit)s
    for update skip locked
)
update monitors m
set next_run_at = due.next_run_at + make_interval(mins => m.frequency_minutes)
        * (floor(extract(epoch from (%(now)s - due.next_run_at)) / (m.frequency_minutes * 60)) + 1)
from due
where m.id = due.id
returning m.id, m.type, m.frequency_minutes, due.next_run_at as claimed_slot,
    -- as text: most monitors share a few configs, each parsed once (see _timeout_budget), not once per monitor
    m.config::text as config, m.location_config::text as location_config,
    -- the latest slot that is due; slots missed while nothing ran are skipped, not replayed
    due.next_run_at + make_interval(mins => m.frequency_minutes)
        * floor(extract(epoch from (%(now)s - due.next_run_at)) / (m.frequency_minutes * 60)) as scheduled_at
"""

_SELECT_FOR_RUN_NOW = """
select id, type, frequency_minutes, %(now)s::timestamptz as scheduled_at,
    config::text as config, location_config::text as location_config
from monitors where id = any(%(ids)s)
"""

# The job envelope (shared.models.CheckJob), built by Postgres: it renders hundreds of thousands of them far
# faster than Python could, and the check function validates each one on arrival.
_JOB_PAYLOAD = """json_build_object(
    'v', 1, 'kind', 'check_job', 'run_id', r.id, 'monitor_id', m.id, 'location', loc.location,
    'type', m.type, 'target', m.target, 'config', m.config,
    'scheduled_at', r.scheduled_at, 'deadline', r.deadline)::text"""

_RECORD_RUNS = f"""
with r as (
    insert into runs (id, monitor_id, scheduled_at, expected_locations, deadline)
    select n.id, n.monitor_id, n.scheduled_at, string_to_array(n.locations, ','), n.deadline
    from unnest(%s::uuid[], %s::uuid[], %s::timestamptz[], %s::text[], %s::timestamptz[])
        as n(id, monitor_id, scheduled_at, locations, deadline)
    on conflict (monitor_id, scheduled_at) do nothing
    returning id, monitor_id, scheduled_at, expected_locations, deadline
)
select r.id as run_id, m.type, loc.location, {_JOB_PAYLOAD} as payload
from r join monitors m on m.id = r.monitor_id cross join unnest(r.expected_locations) as loc(location)
"""

_STALE_BATCHES = """
select id, run_ids from dispatch_batches where created_at < %s order by created_at limit 20 for update skip locked
"""

_JOBS_OF_RUNS = f"""
select r.id as run_id, m.type, loc.location, {_JOB_PAYLOAD} as payload
from runs r join monitors m on m.id = r.monitor_id cross join unnest(r.expected_locations) as loc(location)
where r.id = any(%s) and r.finalized_at is null
"""


@dataclass
class _Outbox:
    """Jobs of runs committed in one transaction, recorded as one dispatch batch until they are published."""

    batch_id: uuid.UUID | None
    run_ids: list[uuid.UUID]
    jobs: list[tuple[str, str]]


async def _record_runs(conn: AsyncConnection, monitors: list[dict], now: datetime) -> _Outbox:
    if not monitors:
        return _Outbox(None, [], [])
    regions = await _active_regions(conn)
    columns: list[list] = [[], [], [], [], []]
    for monitor in monitors:
        values = (
            time_ordered_uuid(),
            monitor["id"],
            monitor["scheduled_at"],
            ",".join(expected_locations(monitor["location_config"], regions)),
            run_deadline(now, monitor["type"], monitor["config"], monitor["frequency_minutes"]),
        )
        for column, value in zip(columns, values, strict=True):
            column.append(value)
    rows = await (await conn.execute(_RECORD_RUNS, columns, prepare=False)).fetchall()
    outbox = _outbox(uuid.uuid4(), rows)
    if outbox.run_ids:
        await conn.execute(
            "insert into dispatch_batches (id, run_ids) values (%s, %s)", (outbox.batch_id, outbox.run_ids)
        )
    return outbox


def _outbox(batch_id: uuid.UUID | None, rows: list[dict]) -> _Outbox:
    run_ids = list(dict.fromkeys(row["run_id"] for row in rows))
    stream_of = lru_cache(maxsize=None)(streams.job_stream)
    jobs = [(stream_of(row["type"], row["location"]), row["payload"]) for row in rows]
    return _Outbox(batch_id, run_ids, jobs)


async def _publish_and_mark(outbox: _Outbox) -> int:
    """Publishes after commit, then drops the batch row; a crash in between leaves it for the sweep."""
    if not outbox.run_ids:
        return 0
    published = await streams.publish_payloads(outbox.jobs)
    async with db.transaction() as conn:
        await conn.execute("delete from dispatch_batches where id = %s", (outbox.batch_id,))
    return published


async def schedule_tick(now: datetime | None = None, only_ids: list[uuid.UUID] | None = None) -> TickReport:
    """One cron tick: safe to run twice at once (SKIP LOCKED) and safe to skip (missed slots collapse)."""
    now = now or datetime.now(UTC)
    report = TickReport()
    publishing: set[asyncio.Task] = set()
    after = (datetime.min.replace(tzinfo=UTC), uuid.UUID(int=0))
    while True:
        async with db.transaction() as conn:
            claimed = await (
                await conn.execute(
                    _CLAIM_DUE.format(only_ids="and id = any(%(ids)s)" if only_ids is not None else ""),
                    {
                        "now": now,
                        "limit": CLAIM_BATCH,
                        "ids": only_ids,
                        "after_at": after[0],
                        "after_id": after[1],
                    },
                )
            ).fetchall()
            if claimed:
                after = max((row["claimed_slot"], row["id"]) for row in claimed)
            outbox = await _record_runs(conn, claimed, now)
        report.runs_created += len(outbox.run_ids)
        report.run_ids += [str(run_id) for run_id in outbox.run_ids]
        publishing.add(asyncio.create_task(_publish_and_mark(outbox)))
        if len(publishing) >= _PUBLISHES_IN_FLIGHT or len(claimed) < CLAIM_BATCH:
            done, publishing = await asyncio.wait(
                publishing,
                return_when=asyncio.ALL_COMPLETED if len(claimed) < CLAIM_BATCH else asyncio.FIRST_COMPLETED,
            )
            report.jobs_published += sum(task.result() for task in done)
        if len(claimed) < CLAIM_BATCH:
            break
    report.runs_redispatched = await redispatch_stale_runs(now)
    return report


async def run_now(monitor_ids: list[uuid.UUID], now: datetime | None = None) -> TickReport:
    """Start a run of each monitor immediately, outside its schedule (API "run now", CI webhooks)."""
    now = now or datetime.now(UTC)
    async with db.transaction() as conn:
        monitors = await (
            await conn.execute(_SELECT_FOR_RUN_NOW, {"now": now, "ids": monitor_ids})
        ).fetchall()
        outbox = await _record_runs(conn, monitors, now)
    published = await _publish_and_mark(outbox)
    return TickReport(
        runs_created=len(outbox.run_ids),
        jobs_published=published,
        run_ids=[str(run_id) for run_id in outbox.run_ids],
    )


async def redispatch_stale_runs(now: datetime) -> int:
    """The outbox sweep: batches committed but never published (a crash between commit and XADD).

    Returns how many runs were published again; re-publishing is harmless, results are unique per location.
    """
    cutoff = now - timedelta(seconds=get_settings().dispatch_sweep_after_seconds)
    republished = 0
    async with db.transaction() as conn:
        for batch in await (await conn.execute(_STALE_BATCHES, (cutoff,))).fetchall():
            outbox = _outbox(
                batch["id"], await (await conn.execute(_JOBS_OF_RUNS, (batch["run_ids"],))).fetchall()
            )
            await streams.publish_payloads(outbox.jobs)
            await conn.execute("delete from dispatch_batches where id = %s", (batch["id"],))
            republished += len(outbox.run_ids)
    return republished


async def schedule_window(window_seconds: float, tick_seconds: float = 1.0) -> TickReport:
    """Ticks every tick_seconds for window_seconds: cron fires once a minute, due times are met to the second.

    Overlapping windows are safe (claims skip locked rows), and a window cut short is resumed by the next call.
    """
    loop = asyncio.get_running_loop()
    started = loop.time()
    total = TickReport()
    while True:
        report = await schedule_tick()
        total.runs_created += report.runs_created
        total.jobs_published += report.jobs_published
        total.runs_redispatched += report.runs_redispatched
        elapsed = loop.time() - started
        if elapsed + tick_seconds > window_seconds:
            return total
        await asyncio.sleep(tick_seconds - (elapsed % tick_seconds))
