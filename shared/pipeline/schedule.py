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
from shared.checks import CHECK_TYPES, configured_timeout
from shared.pipeline import routing
from shared.redis import publish_payloads
from shared.rules.locations import expected_locations
from shared.settings import get_settings


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


@lru_cache(maxsize=4096)
def _timeout_budget(check_type: str, config_text: str) -> float:
    return configured_timeout(check_type, json.loads(config_text))


async def _active_regions(conn: AsyncConnection) -> list[str]:
    rows = await (
        await conn.execute("select code from regions where active order by created_at, code")
    ).fetchall()
    configured = get_settings().locations
    codes = [row["code"] for row in rows]
    # Keep the operator's configured order first: the first location also runs single-location monitors.
    return [loc for loc in configured if loc in codes] + [loc for loc in codes if loc not in configured]


# --- SQL -------------------------------------------------------------------------------------------
#
# A claim batch is two statements in one transaction. The first claims due monitors (FOR NO KEY UPDATE SKIP
# LOCKED) and advances next_run_at; it returns the claimed row versions as one array text that Python hands back
# untouched, and each distinct stored config once. Python turns those configs into what only it knows: a
# config's timeout budget and where a location config sends its runs. The second statement records the runs
# and the batch's dispatch row, and renders the jobs as bundles: one stream entry per (type, location,
# jobs_per_entry jobs). Python and Redis then move a few thousand bundles instead of hundreds of thousands of
# rows, and a run's slot is read back from next_run_at rather than carried.

_CLAIM_DUE = """
with due as (
    select id, next_run_at from monitors
    -- up to the lookahead ahead of time: the job travels while the slot approaches, and the check starts on it
    where enabled and next_run_at <= %(horizon)s and (next_run_at, id) > (%(after_at)s, %(after_id)s)
        and id between %(id_from)s and %(id_to)s {only_ids}
    order by next_run_at, id
    limit %(limit)s
    -- the lock an UPDATE of non-key columns takes: overlapping ticks still skip each other's claims, but not
    -- monitors a check function's result insert holds key-share locked (its foreign key check)
    for no key update skip locked
),
claimed as (
    -- next_run_at moves one frequency past the latest due slot, the slot this run takes: slots missed while
    -- nothing ran are skipped, not replayed
    update monitors m
    set next_run_at = due.next_run_at + make_interval(mins => m.frequency_minutes)
            * (greatest(floor(extract(epoch from (%(now)s - due.next_run_at)) / (m.frequency_minutes * 60)), 0) + 1)
    from due
    where m.id = due.id
    -- ctid: the version this update makes, which the record statement then reads directly
    returning m.id, m.ctid, m.type, m.config, m.location_config, due.next_run_at as claimed_slot
)
{claimed_summary}
"""

# run now: the monitors as they are, at this instant; locked as an update would, so each stays the row version
# (ctid) the record statement reads, and is not deleted under us
_SELECT_NOW = """
with claimed as (
    select id, ctid, type, config, location_config, %(now)s::timestamptz as claimed_slot
    from monitors where id = any(%(ids)s)
    for no key update
)
{claimed_summary}
"""

# A claimed run's slot: the claim moved next_run_at exactly one frequency past it (see _CLAIM_DUE).
_SLOT_CLAIMED = "(m.next_run_at - make_interval(mins => m.frequency_minutes))"
_SLOT_NOW = "%(now)s::timestamptz"

_CLAIMED_SUMMARY = """
select type, config::text, location_config::text,
    null::text as ids, null::bigint as claimed, null::timestamptz as last_at, null::uuid as last_id
from claimed group by type, config, location_config
union all
-- rows grouped by type: a run's position in this array then numbers its bundle (position / bundle size)
select null, null, null, array_agg(ctid order by type)::text, count(*), max(claimed_slot),
    (select id from claimed order by claimed_slot desc, id desc limit 1)
from claimed
"""

# Run ids are UUIDv7 (time-ordered, so inserts stay at the right edge of the primary key): the 48-bit
# millisecond, version and variant come from Python per batch, the remaining bits are a random base plus the
# row's position; far cheaper than one gen_random_uuid() per row.
_RECORD_AND_RENDER = """
with planned as (
    select m.id as monitor_id, m.project_id, m.type, m.target, config.text as config, {scheduled_at} as scheduled_at,
        greatest(%(now)s, {scheduled_at}) + make_interval(secs => least(
            (%(budgets)s::jsonb ->> (m.type || ' ' || config.text))::float8, m.frequency_minutes * 60)) as deadline,
        string_to_array(%(location_lists)s::jsonb ->> m.location_config::text, ',') as locations,
        (%(id_prefix)s || lpad(to_hex(%(id_base)s::bigint + c.position), 15, '0'))::uuid as run_id,
        c.position - 1 as position
    from unnest(%(rows)s::tid[]) with ordinality as c(row_id, position)
    -- claimed rows are locked by this transaction, so their versions stay where the claim left them
    join monitors m on m.ctid = c.row_id
    cross join lateral (select m.config::text offset 0) as config(text)  -- once: looked up, then rendered
    {skip_existing}
),
recorded as (
    -- no ON CONFLICT: a run already recorded for a claimed slot fails the batch, which is redone without it
    -- (see _SKIP_EXISTING); speculative insertion would cost every run a probe and a WAL record more
    insert into runs (id, monitor_id, scheduled_at, expected_locations, deadline)
    select run_id, monitor_id, scheduled_at, locations, deadline from planned
),
dispatch as (
    insert into dispatch_batches (id, run_ids)
    select %(batch_id)s, array_agg(run_id) from planned having count(*) > 0
)
{render}
union all
select null, null, null, count(*), array_agg(run_id::text) from planned
"""

# Monitors that already have a run at this slot (next_run_at moved back by hand) are left out: taken only when
# the fast path met such a conflict, which is rare, so the probe is not paid on every run.
_SKIP_EXISTING = """
    where not exists (select 1 from runs x where x.monitor_id = m.id and x.scheduled_at = {scheduled_at})
"""

# A bundle (shared.models.CheckJobBundle) names its stream's type and location once; its jobs carry the rest of
# a CheckJob, rendered once per run whatever the number of locations. A bundle of one job is sent as the job
# itself (a full CheckJob envelope), as for check types bundled one job per entry.
_RENDER = """
select j.type, j.location,
    case when count(*) = 1
        then concat('{"v":1,"kind":"check_job","type":', to_json(j.type), ',"location":', to_json(j.location),
            ',', substr(string_agg(j.job, ','), 2))
        else concat('{"v":1,"kind":"check_jobs","type":', to_json(j.type), ',"location":', to_json(j.location),
            ',"jobs":[', string_agg(j.job, ','), ']}') end as payload,
    count(*) as jobs, null::text[] as run_ids
from (
    select p.type, loc.location, p.position / (%(bundle_sizes)s::jsonb ->> p.type)::int as bundle, p.job
    from (
        -- concat() of JSON-safe parts renders twice as fast as json_build_object()
        select planned.*, concat(
            '{"run_id":"', run_id, '","monitor_id":"', monitor_id, '","project_id":"', project_id,
            '","target":', to_json(target),
            ',"config":', config, ',"scheduled_at":', to_json(scheduled_at), ',"deadline":', to_json(deadline),
            '}') as job
        from planned
        offset 0  -- rendered once per run, not once per location
    ) p
    cross join unnest(p.locations) as loc(location)
) j
group by j.type, j.location, j.bundle
"""

_STALE_BATCHES = """
select id, run_ids from dispatch_batches where created_at < %s order by created_at limit 20 for update skip locked
"""

_REPUBLISH = """
with planned as (
    select r.id as run_id, r.monitor_id, m.project_id, m.type, m.target, m.config, r.scheduled_at, r.deadline,
        r.expected_locations as locations, row_number() over (partition by m.type) - 1 as position
    from runs r join monitors m on m.id = r.monitor_id
    where r.id = any(%(run_ids)s) and r.finalized_at is null
)
"""

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


def _profile_params(profiles: list[tuple], regions: list[str]) -> dict:
    """Per distinct stored config among the claimed monitors: its deadline budget and where it runs."""
    grace = get_settings().run_deadline_grace_seconds
    budgets = {
        f"{check_type} {config}": _timeout_budget(check_type, config) + grace
        for check_type, config, *_ in profiles
    }
    location_lists = {
        location_config: ",".join(expected_locations(location_config, regions))
        for _, _, location_config, *_ in profiles
    }
    return {"budgets": json.dumps(budgets), "location_lists": json.dumps(location_lists)}


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


@dataclass
class _Batch:
    outbox: _Outbox
    claimed: int
    last: tuple[datetime, uuid.UUID] | None


def _entries(rows: list[tuple]) -> tuple[list[tuple[str, str]], int]:
    """(stream, payload) per rendered bundle, and how many jobs they carry."""
    stream_of = lru_cache(maxsize=None)(streams.job_stream)
    return [(stream_of(row[0], row[1]), row[2]) for row in rows], sum(row[3] for row in rows)


def _split_summary(rows: list[tuple]) -> tuple[list[tuple], list[tuple]]:
    """A statement's rows, and its one summary row (the row with no type)."""
    return [row for row in rows if row[0] is not None], [row for row in rows if row[0] is None]


async def _claim_and_record(
    conn: AsyncConnection, claim_sql: str, slot_sql: str, params: dict, skip_existing: bool
) -> _Batch:
    """The two statements of one batch, in the caller's transaction; commit publishes nothing by itself."""
    await conn.execute(_STATEMENT_SETTINGS)
    cursor = conn.cursor(row_factory=tuple_row)
    await cursor.execute(claim_sql.format(claimed_summary=_CLAIMED_SUMMARY), params, prepare=False)
    profiles, (summary,) = _split_summary(await cursor.fetchall())
    rows, claimed, last_at, last_id = summary[3:]
    if not claimed:
        return _Batch(_Outbox(None, [], [], 0), 0, None)
    batch_id = uuid.uuid4()
    statement = _RECORD_AND_RENDER.format(
        scheduled_at=slot_sql,
        skip_existing=_SKIP_EXISTING.format(scheduled_at=slot_sql) if skip_existing else "",
        render=_RENDER,
    )
    await cursor.execute(
        statement,
        {
            "now": params["now"],
            "rows": rows,
            "batch_id": batch_id,
            **_profile_params(profiles, await _active_regions(conn)),
            **_bundle_params(),
            **_run_id_parts(),
        },
        prepare=False,
    )
    bundles, (summary,) = _split_summary(await cursor.fetchall())
    recorded, run_ids = summary[3:]
    entries, jobs = _entries(bundles)
    return _Batch(
        _Outbox(batch_id if recorded else None, run_ids or [], entries, jobs), claimed, (last_at, last_id)
    )


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


async def _publish_and_mark(outbox: _Outbox) -> int:
    """Publishes after commit, then drops the batch row; a crash in between leaves it for the sweep."""
    if not outbox.run_ids:
        return 0
    await publish_payloads(outbox.entries)
    async with db.transaction() as conn:
        await conn.execute("delete from dispatch_batches where id = %s", (outbox.batch_id,))
    return outbox.jobs


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
    claim_sql = _CLAIM_DUE.replace("{only_ids}", "and id = any(%(ids)s)" if only_ids is not None else "")
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
                claim_sql, _SLOT_CLAIMED, {**params, "after_at": after[0], "after_id": after[1]}
            )
            if batch.last is not None:
                after = batch.last
            report.runs_created += len(batch.outbox.run_ids)
            report.run_ids += batch.outbox.run_ids
            publishing.add(asyncio.create_task(_publish_and_mark(batch.outbox)))
            last_batch = batch.claimed < CLAIM_BATCH
            if len(publishing) >= _PUBLISHES_IN_FLIGHT or last_batch:
                done, publishing = await asyncio.wait(
                    publishing, return_when=asyncio.ALL_COMPLETED if last_batch else asyncio.FIRST_COMPLETED
                )
                report.jobs_published += sum(task.result() for task in done)
            if last_batch:
                return
    finally:
        if publishing:  # stopped by an error: what was committed still goes out, or waits for the sweep
            done, _ = await asyncio.wait(publishing)
            report.jobs_published += sum(task.result() for task in done if task.exception() is None)


async def schedule_tick(now: datetime | None = None, only_ids: list[uuid.UUID] | None = None) -> TickReport:
    """One cron tick: safe to run twice at once (SKIP LOCKED) and safe to skip (missed slots collapse)."""
    now = now or datetime.now(UTC)
    report = TickReport()
    workers = 1 if only_ids is not None else CLAIM_WORKERS
    await asyncio.gather(*(_claim_slice(now, only_ids, id_slice, report) for id_slice in _id_slices(workers)))
    report.runs_redispatched = await redispatch_stale_runs(now)
    return report


async def run_now(monitor_ids: list[uuid.UUID], now: datetime | None = None) -> TickReport:
    """Start a run of each monitor immediately, outside its schedule (API "run now", CI webhooks)."""
    batch = await _record_batch(_SELECT_NOW, _SLOT_NOW, {"now": now or datetime.now(UTC), "ids": monitor_ids})
    published = await _publish_and_mark(batch.outbox)
    return TickReport(
        runs_created=len(batch.outbox.run_ids), jobs_published=published, run_ids=batch.outbox.run_ids
    )


async def redispatch_stale_runs(now: datetime) -> int:
    """The outbox sweep: batches committed but never published (a crash between commit and XADD).

    Returns how many runs were published again; re-publishing is harmless, results are unique per location.
    """
    cutoff = now - timedelta(seconds=get_settings().dispatch_sweep_after_seconds)
    republished = 0
    async with db.transaction() as conn:
        for batch in await (await conn.execute(_STALE_BATCHES, (cutoff,))).fetchall():
            await conn.execute(_STATEMENT_SETTINGS)
            cursor = conn.cursor(row_factory=tuple_row)
            await cursor.execute(_REPUBLISH + _RENDER, {"run_ids": batch["run_ids"], **_bundle_params()})
            entries, _ = _entries(await cursor.fetchall())
            await publish_payloads(entries)
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
