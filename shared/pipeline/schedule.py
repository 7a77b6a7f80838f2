"""The schedule function's work: claim due monitors, record runs (outbox), publish their jobs in bundles.
Used by the schedule function (functions/schedule) and the API's run-now."""

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
from psycopg.errors import UniqueViolation
from psycopg.rows import tuple_row

from shared import db, streams
from shared.checks import CHECK_TYPES
from shared.pipeline import routing
from shared.pipeline import schedule_sql as sql
from shared.pipeline.set_aside import examine_profiles, set_aside
from shared.redis import publish_dead_letters, publish_payloads
from shared.settings import get_settings
from shared.telemetry import Tally


@dataclass
class TickReport:
    runs_created: int = 0
    jobs_published: int = 0
    runs_redispatched: int = 0
    run_ids: list[str] = field(default_factory=list)
    # for the pipeline's telemetry only (not in the reply)
    monitors_due: int = 0
    runs_dispatched: int = 0

    def as_json(self) -> dict:
        return {
            "runsCreated": self.runs_created,
            "jobsPublished": self.jobs_published,
            "runsRedispatched": self.runs_redispatched,
            "runIds": self.run_ids,
        }


async def _active_regions(conn: AsyncConnection) -> list[str]:
    rows = await (
        await conn.execute("select code from regions where active order by created_at, code")
    ).fetchall()
    configured = get_settings().locations
    codes = [row["code"] for row in rows]
    # Keep the operator's configured order first: the first location also runs single-location monitors.
    return [loc for loc in configured if loc in codes] + [loc for loc in codes if loc not in configured]


# Every join here looks rows up by key, a batch at a time; misled by the CTEs' row estimates, the planner would
# rather hash or merge all of monitors to touch 10,000 of them. The render groups a batch's jobs in memory.
_STATEMENT_SETTINGS = (
    "set local enable_seqscan = off; set local enable_hashjoin = off; set local enable_mergejoin = off;"
    " set local work_mem = '64MB'"
)

CLAIM_BATCH = 10_000
# Claim transactions running at once in one tick, each over its own slice of monitor ids: Postgres spends most
# of a tick writing rows, and one backend uses one core.
CLAIM_WORKERS = 2
_PUBLISHES_IN_FLIGHT = 2  # per worker: claim the next batch in Postgres while the previous one goes to Redis
_RETRIES = 3


def _bundle_params() -> dict:
    return {"bundle_sizes": json.dumps({name: routing.jobs_per_entry(name) for name in CHECK_TYPES})}


def _run_id_parts() -> dict:
    """UUIDv7 pieces for one batch: the 48-bit millisecond, version 7, 12 random bits and the variant, then a
    random base for the last 60 bits with room left for a batch's row positions."""
    millis = time.time_ns() // 1_000_000
    rand_a = int.from_bytes(os.urandom(2), "big") & 0xFFF
    variant_nibble = "89ab"[os.urandom(1)[0] & 0x3]
    base = int.from_bytes(os.urandom(8), "big") & ((1 << 59) - 1)
    return {"id_prefix": f"{millis:012x}7{rand_a:03x}{variant_nibble}", "id_base": base}


@dataclass
class _Outbox:
    """Bundles of runs committed in one transaction, recorded as one dispatch batch until they are published."""

    batch_id: uuid.UUID | None
    run_ids: list[str]
    entries: list[tuple[str, str]]
    jobs: int
    dead: list[tuple[str, str, str]] = field(default_factory=list)  # (dead-letter stream, payload, reason)


@dataclass
class _Batch:
    outbox: _Outbox
    claimed: int
    last: tuple[datetime, uuid.UUID] | None


def _entries(rows: list[tuple], regions: list[str]) -> tuple[list[tuple[str, str]], list[tuple], int]:
    """(stream, payload) per rendered bundle, the bundles for a location no region serves (dead-lettered, with
    the reason), and how many jobs they carry."""
    stream_of = lru_cache(maxsize=None)(streams.job_stream)
    live = [(stream_of(row[0], row[1]), row[2]) for row in rows if row[1] in regions]
    dead = [
        (
            streams.dead_letter_stream(stream_of(row[0], row[1])),
            row[2],
            f"unknown location '{row[1]}': no region serves it (active: {', '.join(regions)})",
        )
        for row in rows
        if row[1] not in regions
    ]
    return live, dead, sum(row[3] for row in rows)


def _split_summary(rows: list[tuple]) -> tuple[list[tuple], list[tuple]]:
    """A statement's rows, and its one summary row (the row with no type)."""
    return [row for row in rows if row[0] is not None], [row for row in rows if row[0] is None]


async def _set_aside_claimed(conn: AsyncConnection, rows: str, problems: dict[tuple, str]) -> list[uuid.UUID]:
    """Sets aside the claimed monitors whose stored profile cannot run; returns their ids."""
    if not problems:
        return []
    types, configs, locations = (list(part) for part in zip(*problems, strict=True))
    cursor = conn.cursor(row_factory=tuple_row)
    await cursor.execute(
        sql.CLAIMED_OF_PROFILES, {"rows": rows, "types": types, "configs": configs, "locations": locations}
    )
    found = await cursor.fetchall()
    await set_aside(conn, {row[0]: problems[row[1:]] for row in found})
    return [row[0] for row in found]


async def _claim_and_record(
    conn: AsyncConnection, claim_sql: str, slot_sql: str, params: dict, skip_existing: bool
) -> _Batch:
    """The two statements of one batch, in the caller's transaction; commit publishes nothing by itself."""
    await conn.execute(_STATEMENT_SETTINGS)
    cursor = conn.cursor(row_factory=tuple_row)
    await cursor.execute(claim_sql.format(claimed_summary=sql.CLAIMED_SUMMARY), params, prepare=False)
    profiles, (summary,) = _split_summary(await cursor.fetchall())
    rows, claimed, last_at, last_id = summary[3:]
    if not claimed:
        return _Batch(_Outbox(None, [], [], 0), 0, None)
    regions = await _active_regions(conn)
    examined = examine_profiles(profiles, regions, get_settings().run_deadline_grace_seconds)
    aside = await _set_aside_claimed(conn, rows, examined.problems)
    conditions = [sql.SKIP_EXISTING.format(scheduled_at=slot_sql)] if skip_existing else []
    conditions += [sql.NOT_SET_ASIDE] if aside else []
    batch_id = uuid.uuid4()
    statement = sql.RECORD_AND_RENDER.format(
        scheduled_at=slot_sql,
        conditions=f"where {' and '.join(conditions)}" if conditions else "",
        render=sql.RENDER,
    )
    await cursor.execute(
        statement,
        {
            "now": params["now"],
            "rows": rows,
            "batch_id": batch_id,
            "set_aside": aside,
            **examined.params(),
            **_bundle_params(),
            **_run_id_parts(),
        },
        prepare=False,
    )
    bundles, (summary,) = _split_summary(await cursor.fetchall())
    recorded, run_ids = summary[3:]
    entries, dead, jobs = _entries(bundles, regions)
    outbox = _Outbox(batch_id if recorded else None, run_ids or [], entries, jobs, dead)
    return _Batch(outbox, claimed, (last_at, last_id))


async def _record_batch(claim_sql: str, slot_sql: str, params: dict) -> _Batch:
    """One committed batch; a batch that met an existing run for a claimed slot is redone without it."""
    for attempt in range(_RETRIES):
        try:
            async with db.transaction() as conn:
                return await _claim_and_record(conn, claim_sql, slot_sql, params, skip_existing=attempt > 0)
        except UniqueViolation:
            if attempt == _RETRIES - 1:
                raise
    raise AssertionError("unreachable")


async def _publish_and_mark(outbox: _Outbox) -> _Outbox:
    """Publishes after commit, then drops the batch row; a crash in between leaves it for the sweep."""
    if outbox.run_ids:
        await publish_payloads(outbox.entries)
        await publish_dead_letters(outbox.dead)
        async with db.transaction() as conn:
            await conn.execute("delete from dispatch_batches where id = %s", (outbox.batch_id,))
    return outbox


def _published(report: TickReport, done: set[asyncio.Task]) -> None:
    for task in done:
        if task.exception() is None:
            report.jobs_published += task.result().jobs
            report.runs_dispatched += len(task.result().run_ids)


def _id_slices(workers: int) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """Monitor ids are random (gen_random_uuid), so equal slices of the id space hold about equal shares."""
    edges = [(1 << 128) * index // workers for index in range(workers + 1)]
    return [
        (uuid.UUID(int=low), uuid.UUID(int=high - 1)) for low, high in zip(edges, edges[1:], strict=False)
    ]


async def _claim_slice(
    now: datetime, only_ids: list[uuid.UUID] | None, id_slice: tuple[uuid.UUID, uuid.UUID], report: TickReport
) -> None:
    """Claims one slice of monitor ids batch by batch, publishing each batch while the next one is claimed."""
    claim_sql = sql.CLAIM_DUE.replace("{only_ids}", "and id = any(%(ids)s)" if only_ids is not None else "")
    params = {
        "now": now,
        "horizon": now + timedelta(seconds=get_settings().schedule_lookahead_seconds),
        "ids": only_ids,
        "limit": CLAIM_BATCH,
        "id_from": id_slice[0],
        "id_to": id_slice[1],
    }
    after = (datetime.min.replace(tzinfo=UTC), uuid.UUID(int=0))
    publishing: set[asyncio.Task] = set()
    try:
        while True:
            batch = await _record_batch(
                claim_sql, sql.SLOT_CLAIMED, {**params, "after_at": after[0], "after_id": after[1]}
            )
            if batch.last is not None:
                after = batch.last
            report.monitors_due += batch.claimed
            report.runs_created += len(batch.outbox.run_ids)
            report.run_ids += batch.outbox.run_ids
            publishing.add(asyncio.create_task(_publish_and_mark(batch.outbox)))
            last_batch = batch.claimed < CLAIM_BATCH
            if len(publishing) >= _PUBLISHES_IN_FLIGHT or last_batch:
                done, publishing = await asyncio.wait(
                    publishing, return_when=asyncio.ALL_COMPLETED if last_batch else asyncio.FIRST_COMPLETED
                )
                _published(report, done)
                for task in done:
                    task.result()  # a failed publish stops the tick, as before
            if last_batch:
                return
    finally:
        if publishing:  # stopped by an error: what was committed still goes out, or waits for the sweep
            done, _ = await asyncio.wait(publishing)
            _published(report, done)


async def schedule_tick(now: datetime | None = None, only_ids: list[uuid.UUID] | None = None) -> TickReport:
    """One cron tick: safe to run twice at once (SKIP LOCKED) and safe to skip (missed slots collapse)."""
    now = now or datetime.now(UTC)
    report = TickReport()
    workers = 1 if only_ids is not None else CLAIM_WORKERS
    try:
        await asyncio.gather(
            *(_claim_slice(now, only_ids, id_slice, report) for id_slice in _id_slices(workers))
        )
        report.runs_redispatched = await redispatch_stale_runs(now)
    finally:
        await _tally_tick(report).flush()  # what was committed counts, even in a tick an error stopped
    return report


def _tally_tick(report: TickReport) -> Tally:
    tally = Tally()
    tally.count("supercheck_schedule_ticks")
    for stage, runs in (
        ("due", report.monitors_due),
        ("recorded", report.runs_created),
        ("dispatched", report.runs_dispatched),
        ("redispatched", report.runs_redispatched),
    ):
        tally.count("supercheck_schedule_runs", runs, stage=stage)
    return tally


async def run_now(monitor_ids: list[uuid.UUID], now: datetime | None = None) -> TickReport:
    """Start a run of each monitor immediately, outside its schedule (API "run now", CI webhooks)."""
    batch = await _record_batch(
        sql.SELECT_NOW, sql.SLOT_NOW, {"now": now or datetime.now(UTC), "ids": monitor_ids}
    )
    published = await _publish_and_mark(batch.outbox)
    return TickReport(
        runs_created=len(batch.outbox.run_ids), jobs_published=published.jobs, run_ids=batch.outbox.run_ids
    )


async def redispatch_stale_runs(now: datetime) -> int:
    """The outbox sweep: batches committed but never published (a crash between commit and XADD).

    Returns how many runs were published again; re-publishing is harmless, results are unique per location.
    """
    cutoff = now - timedelta(seconds=get_settings().dispatch_sweep_after_seconds)
    republished = 0
    async with db.transaction() as conn:
        for batch in await (await conn.execute(sql.STALE_BATCHES, (cutoff,))).fetchall():
            await conn.execute(_STATEMENT_SETTINGS)
            cursor = conn.cursor(row_factory=tuple_row)
            await cursor.execute(
                sql.REPUBLISH + sql.RENDER, {"run_ids": batch["run_ids"], **_bundle_params()}
            )
            entries, dead, _ = _entries(await cursor.fetchall(), await _active_regions(conn))
            await publish_payloads(entries)
            await publish_dead_letters(dead)
            await conn.execute("delete from dispatch_batches where id = %s", (batch["id"],))
            republished += len(batch["run_ids"])
    return republished


async def schedule_window(window_seconds: float, tick_seconds: float = 0.5) -> TickReport:
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
