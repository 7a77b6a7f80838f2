"""The cleanup function's run (functions/cleanup): roll up, then delete old results, runs and alert history in
short batches (cleanup_tables), trim streams (cleanup_streams), expire artifacts (cleanup_artifacts). The decisions
are shared/rules/retention.py's; these modules only carry them out. A run for one project (asked for with its API
key) counts and deletes that project's rows only, and leaves what every project shares (streams, artifacts, the
hourly rollups' pruning, the marks of how far deletion has reached) to the daily run."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import psycopg

from shared import db
from shared.pipeline import rollups
from shared.pipeline.cleanup_artifacts import expire_artifacts
from shared.pipeline.cleanup_streams import prune_monitor_counters, trim_streams
from shared.pipeline.cleanup_tables import count_deletions, delete_old, delete_results, delete_runs
from shared.rules.retention import (
    ArtifactReport,
    CleanupReport,
    RetentionConfig,
    RollupReport,
    alert_cutoff,
    deletion_cutoff,
    hourly_prune_cutoff,
    location_hourly_prune_cutoff,
    results_cutoff,
)
from shared.settings import Settings, get_settings
from shared.telemetry import Tally

log = logging.getLogger("supercheck.cleanup")
CLEANUP_LOCK = 7_340_009  # one cleanup run at a time; the cron-connector does not prevent overlaps
_SHARED_BY_EVERY_PROJECT = "streams and artifacts are shared by every project: the daily run expires them"


@contextmanager
def _timed(report: CleanupReport, phase: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        report.seconds[phase] = round(report.seconds.get(phase, 0.0) + time.perf_counter() - started, 3)


class CleanupBusy(Exception):
    """Another cleanup run holds the lock."""


async def run_cleanup(
    dry_run: bool,
    now: datetime | None = None,
    config: RetentionConfig | None = None,
    settings: Settings | None = None,
    project_id: uuid.UUID | None = None,
) -> CleanupReport:
    """A real run holds the cleanup lock from start to end (CleanupBusy if another has it); a dry run writes
    nothing, so it needs no lock. project_id: only that project's monitors are counted, deleted and reported."""
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
        project_id=project_id,
    )
    try:
        await _run_phases(report, config, settings, now, project_id)
    finally:
        if not dry_run:  # each batch commits on its own: what went before an error counts too
            await _tally_deleted(report.finish()).flush()
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


async def _run_phases(
    report: CleanupReport,
    config: RetentionConfig,
    settings: Settings,
    now: datetime,
    project_id: uuid.UUID | None,
) -> None:
    """Each phase, timed; a real run under the cleanup lock."""
    with _timed(report, "total"):
        if report.dry_run:
            with _timed(report, "database"):
                await count_deletions(report, config, project_id)
        else:
            async with _exclusive(settings):
                await _real_run(report, config, now, project_id)
        if project_id is None:
            with _timed(report, "streams"):
                await trim_streams(report, config, settings, now)
                await prune_monitor_counters(report, settings)
            with _timed(report, "artifacts"):
                await expire_artifacts(report, config, settings, now)
        else:
            report.artifacts = ArtifactReport(skipped=_SHARED_BY_EVERY_PROJECT)


def _tally_deleted(report: CleanupReport) -> Tally:
    tally = Tally()
    for table, rows in (
        ("monitor_results", report.results_deleted),
        ("runs", report.runs_deleted),
        ("alert_history", report.alert_history_deleted),
        ("alert_events", report.alert_events_deleted),
        ("heartbeat_pings", report.heartbeat_pings_deleted),
        ("rollup_hourly", report.rollups.hourly_pruned),
    ):
        tally.count("supercheck_cleanup_deleted_rows", rows, table=table)
    return tally


class _exclusive:
    """A session-level advisory lock on its own autocommit connection: no transaction stays open for the run,
    and the lock goes with the connection if the function dies."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.conn: psycopg.AsyncConnection | None = None

    async def __aenter__(self) -> None:
        self.conn = await psycopg.AsyncConnection.connect(
            self.settings.require_database_url(),
            autocommit=True,
            application_name=self.settings.function_name,
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


async def _real_run(
    report: CleanupReport, config: RetentionConfig, now: datetime, project_id: uuid.UUID | None
) -> None:
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
        await delete_results(report, config, cutoff, project_id)
        report.heartbeat_pings_deleted = await delete_old(
            "heartbeat_pings",
            cutoff,
            config.batch_size,
            config.safety_limit,
            project_id,
            time_column="received_at",
        )
    with _timed(report, "alerts"):
        report.alert_history_deleted = await delete_old(
            "alert_history", report.alert_history_cutoff, config.batch_size, config.safety_limit, project_id
        )
        report.alert_events_deleted = await delete_old(
            "alert_events", report.alert_history_cutoff, config.batch_size, config.safety_limit, project_id
        )
    if report.safety_limit_reached:
        report.notes.append("safety limit reached: old runs are left for the next run")
    else:
        with _timed(report, "runs"):
            await delete_runs(report, config, cutoff, project_id)
    if project_id is not None:
        return
    async with db.transaction() as conn:
        raw_complete_from = (await rollups.read_marks(conn)).get(rollups.RAW_MARK)
    prune_before = hourly_prune_cutoff(now, config.hourly_rollup_days, raw_complete_from)
    if prune_before is not None:
        with _timed(report, "prune"):
            report.rollups.hourly_pruned = await rollups.prune_hourly(
                prune_before,
                config.batch_size,
                config.safety_limit,
                location_before=location_hourly_prune_cutoff(now, prune_before),
            )
