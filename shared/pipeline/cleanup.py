"""A cleanup run: roll up, then delete old results, runs and alert history in short batches, trim streams, expire
artifacts. The decisions are shared/rules/retention.py's; this module only carries them out."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg

from shared import db, streams
from shared.pipeline import rollups
from shared.redis import get_redis
from shared.rules.retention import (
    ARTIFACT_PREFIX,
    ArtifactReport,
    CleanupReport,
    GroupState,
    RetentionConfig,
    RollupReport,
    StoredObject,
    StreamTrim,
    alert_cutoff,
    artifact_owner,
    artifacts_to_delete,
    deletion_cutoff,
    hourly_prune_cutoff,
    next_batch_size,
    results_cutoff,
    stream_cutoff,
    stream_trim_floor,
)
from shared.settings import Settings, get_settings

log = logging.getLogger("supercheck.cleanup")
CLEANUP_LOCK = 7_340_009  # one cleanup run at a time; the cron-connector does not prevent overlaps
_S3_DELETE_CHUNK = 1000  # DeleteObjects takes at most 1000 keys


@contextmanager
def _timed(report: CleanupReport, phase: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        report.seconds[phase] = round(report.seconds.get(phase, 0.0) + time.perf_counter() - started, 3)


class CleanupBusy(Exception):
    """Another cleanup run holds the lock."""


@dataclass
class Budget:
    """The per-run safety limit, spent batch by batch."""

    limit: int
    used: int = 0

    def next(self, batch_size: int) -> int:
        return next_batch_size(self.used, batch_size, self.limit)

    @property
    def spent(self) -> bool:
        return self.used >= self.limit


# Old results per monitor: what goes and what stays as a status change. The lateral range per monitor uses the
# (monitor_id, checked_at) index; monitor_results has no index on checked_at alone.
_OLD_RESULTS_BY_MONITOR = """
select m.id as monitor_id, c.deletable, c.kept
from monitors m
cross join lateral (
    select count(*) filter (where not (%(preserve)s and r.is_status_change)) as deletable,
           count(*) filter (where %(preserve)s and r.is_status_change) as kept
    from monitor_results r
    where r.monitor_id = m.id and r.checked_at >= %(since)s and r.checked_at < %(cutoff)s
) c
where (c.deletable > 0 or c.kept > 0) and (%(monitor_ids)s::uuid[] is null or m.id = any(%(monitor_ids)s::uuid[]))
order by m.id
"""

# One batch of a monitor's walk from the cutoff back in time, in (checked_at, id) order from where the previous
# batch stopped: it never revisits the index entries of rows it already deleted (they stay in the index until
# vacuum), and it meets each kept status change once, which is how they are counted. Rows go by ctid, so a
# deleted row costs no second index lookup.
_RESULTS_WALK_BATCH = """
with batch as materialized (
    select ctid, id, checked_at, (%(preserve)s and is_status_change) as keep
    from monitor_results
    where monitor_id = %(monitor_id)s and checked_at >= %(since)s and checked_at < %(cutoff)s
      and checked_at <= %(after_at)s and (checked_at, id) < (%(after_at)s, %(after_id)s)
    order by checked_at desc, id desc
    limit %(size)s
),
gone as (
    delete from monitor_results where ctid = any(array(select ctid from batch where not keep)) returning 1
),
last as (select checked_at, id from batch order by checked_at, id limit 1)
select (select count(*) from gone) as deleted, (select count(*) from batch where keep) as kept,
       (select count(*) from batch) as scanned, last.checked_at as last_at, last.id as last_id
from (select 1) one left join last on true
"""
_NO_ID_YET = 2**63 - 1
# Every deletable result before this mark is gone (set when a run finishes its results without hitting the safety
# limit), so the next run walks only from here: not through the index entries of rows deleted before, which stay
# until vacuum. Status changes kept are counted over the same span.
DELETED_MARK = "results_deleted_before"
_BEGINNING = datetime(1970, 1, 1, tzinfo=UTC)


def _walk_from(marks: dict[str, datetime], config: RetentionConfig) -> datetime:
    """Without preservation, status changes kept by earlier runs below the mark are due too."""
    return marks.get(DELETED_MARK, _BEGINNING) if config.preserve_status_changes else _BEGINNING


# The same for runs, but a run kept by an alert row becomes free when that row expires: walks reach back that far.
RUNS_DELETED_MARK = "runs_deleted_before"


def _runs_walk_from(marks: dict[str, datetime], config: RetentionConfig) -> datetime:
    if not config.preserve_status_changes or RUNS_DELETED_MARK not in marks:
        return _BEGINNING
    return marks[RUNS_DELETED_MARK] - timedelta(days=config.alert_history_days + 1)


# A run goes once nothing refers to it: no result (a kept status change keeps its run), no status change, no
# alert outbox or history row, and it is not a monitor's latest run.
_RUN_UNREFERENCED = """
    not exists (select 1 from status_changes s where s.run_id = r.id)
    and not exists (select 1 from monitors mm where mm.last_run_id = r.id)
"""

# The same walk for runs; (monitor_id, scheduled_at) is unique, so scheduled_at alone is the keyset.
_RUNS_WALK_BATCH = f"""
with batch as materialized (
    select r.ctid, r.scheduled_at,
           not exists (select 1 from monitor_results x where x.run_id = r.id)
           and not exists (select 1 from alert_events e where e.run_id = r.id)
           and not exists (select 1 from alert_history h where h.run_id = r.id)
           and {_RUN_UNREFERENCED} as unreferenced
    from runs r
    where r.monitor_id = %(monitor_id)s and r.scheduled_at >= %(since)s and r.scheduled_at < %(cutoff)s
      and r.scheduled_at < %(after_at)s
    order by r.scheduled_at desc
    limit %(size)s
),
gone as (delete from runs where ctid = any(array(select ctid from batch where unreferenced)) returning 1)
select (select count(*) from gone) as deleted, (select count(*) from batch) as scanned,
       (select min(scheduled_at) from batch) as last_at
"""

# The dry run's mirror of the above: the runs that would have no reference left once results and alert rows
# past their retention are gone.
_COUNT_RUNS_BY_MONITOR = f"""
select r.monitor_id, count(*) as n from runs r
where r.scheduled_at >= %(runs_since)s and r.scheduled_at < %(cutoff)s
  and not exists (select 1 from monitor_results x where x.run_id = r.id
                  and (x.checked_at >= %(cutoff)s or (%(preserve)s and x.is_status_change)))
  and not exists (select 1 from alert_events e where e.run_id = r.id and e.created_at >= %(alert_cutoff)s)
  and not exists (select 1 from alert_history h where h.run_id = r.id and h.created_at >= %(alert_cutoff)s)
  and {_RUN_UNREFERENCED}
group by r.monitor_id order by r.monitor_id
"""


async def run_cleanup(
    dry_run: bool,
    now: datetime | None = None,
    config: RetentionConfig | None = None,
    settings: Settings | None = None,
) -> CleanupReport:
    """A real run holds the cleanup lock from start to end (CleanupBusy if another has it); a dry run writes
    nothing, so it needs no lock."""
    config = config or RetentionConfig.from_variables(get_settings().monitor_variables)
    settings = settings or get_settings()
    now = now or datetime.now(UTC)
    report = CleanupReport(
        dry_run=dry_run,
        started_at=now,
        retention_days=config.retention_days,
        preserve_status_changes=config.preserve_status_changes,
        results_cutoff=results_cutoff(now, config.retention_days),
        alert_history_cutoff=alert_cutoff(now, config.alert_history_days),
    )
    with _timed(report, "total"):
        if dry_run:
            with _timed(report, "database"):
                await _dry_run(report, config)
        else:
            async with _exclusive(settings):
                await _real_run(report, config, now)
        with _timed(report, "streams"):
            await _trim_streams(report, config, settings, now)
        with _timed(report, "artifacts"):
            await _expire_artifacts(report, config, settings, now)
    log.info(
        "cleanup%s: %d results, %d runs, %d alert rows deleted; %d status changes kept; phases %s",
        " (dry run)" if dry_run else "",
        report.results_deleted,
        report.runs_deleted,
        report.alert_history_deleted,
        report.status_changes_kept,
        report.seconds,
    )
    return report.finish()


class _exclusive:
    """A session-level advisory lock on its own autocommit connection: no transaction stays open for the run,
    and the lock goes with the connection if the function dies."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.conn: psycopg.AsyncConnection | None = None

    async def __aenter__(self) -> None:
        self.conn = await psycopg.AsyncConnection.connect(
            self.settings.require_database_url(), autocommit=True
        )
        acquired = (
            await (await self.conn.execute("select pg_try_advisory_lock(%s)", (CLEANUP_LOCK,))).fetchone()
        )[0]
        if not acquired:
            await self.conn.close()
            raise CleanupBusy("another cleanup run is in progress")

    async def __aexit__(self, *exc) -> None:
        assert self.conn is not None
        try:
            await self.conn.execute("select pg_advisory_unlock(%s)", (CLEANUP_LOCK,))
        finally:
            await self.conn.close()


async def _dry_run(report: CleanupReport, config: RetentionConfig) -> None:
    cutoff = report.results_cutoff
    async with db.transaction() as conn:
        marks = await rollups.read_marks(conn)
        report.rollups = RollupReport(
            hourly_through=marks.get(rollups.HOURLY_MARK), daily_through=marks.get(rollups.DAILY_MARK)
        )
        params = {
            "since": _walk_from(marks, config),
            "runs_since": _runs_walk_from(marks, config),
            "cutoff": cutoff,
            "preserve": config.preserve_status_changes,
            "alert_cutoff": report.alert_history_cutoff,
            "monitor_ids": None,
        }
        old = await (await conn.execute(_OLD_RESULTS_BY_MONITOR, params)).fetchall()
        budget = Budget(config.safety_limit)
        for row in old:
            entry = report.monitor(row["monitor_id"])
            entry.results_deleted = min(row["deletable"], budget.limit - budget.used)
            entry.status_changes_kept = row["kept"]
            budget.used += entry.results_deleted
        report.safety_limit_reached = sum(row["deletable"] for row in old) > config.safety_limit
        for table in ("alert_history", "alert_events"):
            count_sql = f"select count(*) as n from {table} where created_at < %(alert_cutoff)s"
            count = (await (await conn.execute(count_sql, params)).fetchone())["n"]
            setattr(report, f"{table}_deleted", min(config.safety_limit, count))
        if report.safety_limit_reached:
            report.notes.append("safety limit reached: old runs are left for the next run")
            return
        runs = await (await conn.execute(_COUNT_RUNS_BY_MONITOR, params)).fetchall()
        budget = Budget(config.safety_limit)
        for row in runs:
            n = min(row["n"], budget.limit - budget.used)
            if n:
                report.monitor(row["monitor_id"]).runs_deleted = n
                budget.used += n


async def _real_run(report: CleanupReport, config: RetentionConfig, now: datetime) -> None:
    with _timed(report, "rollups"):
        progress = await rollups.catch_up(now, config)
    report.rollups = RollupReport(
        hourly_through=progress.hourly_through,
        daily_through=progress.daily_through,
        hours_rolled=progress.hours_rolled,
        days_rolled=progress.days_rolled,
    )
    cutoff = deletion_cutoff(report.results_cutoff, progress.daily_through)
    if cutoff is None:
        report.notes.append("nothing is rolled up yet, so no raw result may be deleted")
        return
    if cutoff < report.results_cutoff:
        report.notes.append(
            f"rollups reach only {cutoff.isoformat()}: results before it are deleted, not later ones"
        )
    report.results_cutoff = cutoff
    async with db.transaction() as conn:
        raw_complete_from = (await rollups.read_marks(conn)).get(rollups.RAW_MARK)
    if raw_complete_from is None or raw_complete_from < cutoff:
        # Every row about to go must be in its hourly rollup: re-roll the hours that gained rows late.
        with _timed(report, "reconcile"):
            report.rollups.hours_reconciled = await rollups.reconcile(raw_complete_from, cutoff)
        async with db.transaction() as conn:
            # From here reads take rollups before the cutoff, so deleting the rows below it changes no figure.
            await rollups.set_mark(conn, rollups.RAW_MARK, cutoff)

    with _timed(report, "results"):
        await _delete_results(report, config, cutoff)
    with _timed(report, "alerts"):
        report.alert_history_deleted = await _delete_old(
            "alert_history", report.alert_history_cutoff, config.batch_size, config.safety_limit
        )
        report.alert_events_deleted = await _delete_old(
            "alert_events", report.alert_history_cutoff, config.batch_size, config.safety_limit
        )
    if report.safety_limit_reached:
        report.notes.append("safety limit reached: old runs are left for the next run")
    else:
        with _timed(report, "runs"):
            await _delete_runs(report, config, cutoff)
    async with db.transaction() as conn:
        raw_complete_from = (await rollups.read_marks(conn)).get(rollups.RAW_MARK)
    prune_before = hourly_prune_cutoff(now, config.hourly_rollup_days, raw_complete_from)
    if prune_before is not None:
        with _timed(report, "prune"):
            report.rollups.hourly_pruned = await rollups.prune_hourly(
                prune_before, config.batch_size, config.safety_limit
            )


async def _monitor_ids() -> list:
    async with db.transaction() as conn:
        return [
            row["id"] for row in await (await conn.execute("select id from monitors order by id")).fetchall()
        ]


async def _walk(sql: str, params: dict, batch_size: int, budget: Budget) -> tuple[int, int, bool]:
    """A monitor's walk in batches, each its own short transaction: (deleted, kept, reached the end)."""
    deleted = kept = 0
    after = {"after_at": params["cutoff"], "after_id": _NO_ID_YET}
    while size := budget.next(batch_size):
        async with db.transaction() as conn:
            batch = await (
                await conn.execute(sql, {**params, **after, "size": size}, prepare=False)
            ).fetchone()
        deleted += batch["deleted"]
        kept += batch.get("kept", 0)
        budget.used += batch["deleted"]
        if batch["scanned"] < size:
            return deleted, kept, True
        after = {"after_at": batch["last_at"], "after_id": batch.get("last_id", _NO_ID_YET)}
    return deleted, kept, False


async def _delete_results(report: CleanupReport, config: RetentionConfig, cutoff: datetime) -> None:
    async with db.transaction() as conn:
        since = _walk_from(await rollups.read_marks(conn), config)
    params = {"since": since, "cutoff": cutoff, "preserve": config.preserve_status_changes}
    budget = Budget(config.safety_limit)
    unfinished = []
    for monitor_id in await _monitor_ids():
        if budget.spent:  # the safety limit: the rest waits for the next run
            unfinished.append(monitor_id)
            continue
        deleted, kept, finished = await _walk(
            _RESULTS_WALK_BATCH, {**params, "monitor_id": monitor_id}, config.batch_size, budget
        )
        if deleted:
            report.monitor(monitor_id).results_deleted = deleted
        if not finished:
            unfinished.append(monitor_id)
        elif kept:
            report.monitor(monitor_id).status_changes_kept = kept
    if unfinished:
        # Counted, not walked: what the limit left over, and the status changes kept by monitors not walked through.
        async with db.transaction() as conn:
            rows = await (
                await conn.execute(_OLD_RESULTS_BY_MONITOR, {**params, "monitor_ids": unfinished})
            ).fetchall()
        for row in rows:
            report.monitor(row["monitor_id"]).status_changes_kept = row["kept"]
        report.safety_limit_reached = any(row["deletable"] for row in rows)
    if not report.safety_limit_reached:
        async with db.transaction() as conn:
            await rollups.set_mark(conn, DELETED_MARK, cutoff)


async def _delete_runs(report: CleanupReport, config: RetentionConfig, cutoff: datetime) -> None:
    async with db.transaction() as conn:
        since = _runs_walk_from(await rollups.read_marks(conn), config)
    budget = Budget(config.safety_limit)
    for monitor_id in await _monitor_ids():
        deleted, _, _ = await _walk(
            _RUNS_WALK_BATCH,
            {"since": since, "cutoff": cutoff, "monitor_id": monitor_id},
            config.batch_size,
            budget,
        )
        if deleted:
            report.monitor(monitor_id).runs_deleted = deleted
        if budget.spent:
            report.notes.append("safety limit reached while deleting runs: the rest wait for the next run")
            return
    async with db.transaction() as conn:
        await rollups.set_mark(conn, RUNS_DELETED_MARK, cutoff)


async def _delete_in_batches(sql: str, params: dict, batch_size: int, budget: Budget) -> int:
    """Each batch is its own short transaction, so no lock is held for longer than one batch."""
    deleted = 0
    while size := budget.next(batch_size):
        async with db.transaction() as conn:
            count = (await conn.execute(sql, {**params, "size": size}, prepare=False)).rowcount
        deleted += count
        budget.used += count
        if count < size:
            break
    return deleted


async def _delete_old(table: str, cutoff: datetime, batch_size: int, limit: int) -> int:
    sql = f"delete from {table} where id in (select id from {table} where created_at < %(cutoff)s limit %(size)s)"
    return await _delete_in_batches(sql, {"cutoff": cutoff}, batch_size, Budget(limit))


# --- Redis streams ------------------------------------------------------------------------------


def _redis_urls(settings: Settings) -> list[str]:
    urls = [settings.require_redis_url()]
    urls += [url for url in settings.region_redis_urls.values() if url not in urls]
    return urls


async def _group_states(client, stream: str) -> list[GroupState]:
    states = []
    for group in await client.xinfo_groups(stream):
        pending = int(group["pending"])
        oldest = None
        if pending:
            summary = await client.xpending(stream, group["name"])
            oldest = summary["min"]
        states.append(GroupState(group["name"], group["last-delivered-id"], pending, oldest))
    return states


async def _trim_streams(
    report: CleanupReport, config: RetentionConfig, settings: Settings, now: datetime
) -> None:
    """Every stream of ours in every Redis, trimmed by age with XTRIM MINID, never past a pending or
    undelivered entry of any consumer group."""
    try:
        for url in _redis_urls(settings):
            client = get_redis(url)
            async for stream in client.scan_iter(match=f"{streams.PREFIX}:*", _type="stream"):
                floor = stream_trim_floor(
                    stream_cutoff(stream, now, config), await _group_states(client, stream)
                )
                trim = StreamTrim(stream=stream, min_id=floor)
                if not report.dry_run:
                    trim.trimmed = await client.xtrim(stream, minid=floor, approximate=False)
                report.streams.append(trim)
    except Exception as error:  # a Redis outage must not hide what the database part did
        log.exception("stream trimming failed")
        report.notes.append(f"stream trimming failed: {type(error).__name__}")
    report.streams.sort(key=lambda trim: trim.stream)


# --- synthetic artifacts ------------------------------------------------------------------------


def _s3_client(settings: Settings):
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint_url,
        region_name=settings.s3_region,
        aws_access_key_id=settings.s3_access_key_id,
        aws_secret_access_key=settings.s3_secret_access_key,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3, "mode": "standard"}),
    )


async def _kept_status_change_results(run_ids: set[str]) -> set[tuple[str, str]]:
    if not run_ids:
        return set()
    async with db.transaction() as conn:
        rows = await (
            await conn.execute(
                "select run_id::text as run_id, location from monitor_results where is_status_change and run_id = any(%s::uuid[])",
                (list(run_ids),),
            )
        ).fetchall()
    return {(row["run_id"], row["location"]) for row in rows}


async def _expire_artifacts(
    report: CleanupReport, config: RetentionConfig, settings: Settings, now: datetime
) -> None:
    if not settings.s3_bucket:
        report.artifacts = ArtifactReport(skipped="no artifacts bucket configured (S3_BUCKET)")
        return
    report.artifacts = ArtifactReport(bucket=settings.s3_bucket)
    cutoff = now - timedelta(days=config.retention_days)
    budget = Budget(config.safety_limit)
    try:
        client = await asyncio.to_thread(_s3_client, settings)
        pages = client.get_paginator("list_objects_v2").paginate(
            Bucket=settings.s3_bucket, Prefix=ARTIFACT_PREFIX
        )
        iterator = iter(pages)
        while (page := await asyncio.to_thread(next, iterator, None)) is not None:
            objects = [StoredObject(item["Key"], item["LastModified"]) for item in page.get("Contents", [])]
            old_runs = {
                owner[0]
                for stored in objects
                if stored.last_modified < cutoff and (owner := artifact_owner(stored.key)) is not None
            }
            kept = await _kept_status_change_results(old_runs) if config.preserve_status_changes else set()
            doomed = artifacts_to_delete(objects, cutoff, kept)[: budget.next(len(objects) or 1)]
            deleted = len(doomed)
            if not report.dry_run:
                for start in range(0, len(doomed), _S3_DELETE_CHUNK):
                    chunk = doomed[start : start + _S3_DELETE_CHUNK]
                    answer = await asyncio.to_thread(
                        client.delete_objects,
                        Bucket=settings.s3_bucket,
                        Delete={"Objects": [{"Key": key} for key in chunk], "Quiet": True},
                    )
                    failed = answer.get("Errors", [])
                    if failed:  # e.g. AccessDenied on some keys: counted as not deleted, tried again next run
                        deleted -= len(failed)
                        report.notes.append(f"{len(failed)} artifact(s) not deleted: {failed[0].get('Code')}")
            report.artifacts.deleted += deleted
            budget.used += deleted
            if budget.spent:
                report.notes.append("safety limit reached while expiring artifacts")
                break
    except Exception as error:  # storage being down must not hide what the database part did
        log.exception("artifact expiry failed")
        report.notes.append(f"artifact expiry failed: {type(error).__name__}")
