"""The schedule function's work: claim due monitors, record runs (outbox), publish one job per location."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from psycopg import AsyncConnection

from shared import db, streams
from shared.checks import configured_timeout
from shared.models import CheckJob, LocationConfig
from shared.settings import get_settings

CLAIM_BATCH = 5000


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


def expected_locations(location_config: dict, active_regions: list[str]) -> list[str]:
    config = LocationConfig.model_validate(location_config or {})
    if not config.enabled:
        return active_regions[:1]
    if not config.locations:
        return list(active_regions)
    chosen = [loc for loc in config.locations if loc in active_regions]
    return chosen or active_regions[:1]


def run_deadline(now: datetime, check_type: str, config: dict, frequency_minutes: int) -> datetime:
    """Check timeout plus grace, but never later than the next run would start."""
    grace = get_settings().run_deadline_grace_seconds
    seconds = min(configured_timeout(check_type, config) + grace, frequency_minutes * 60)
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
    where enabled and next_run_at <= %(now)s {only_ids}
    order by next_run_at
    limit %(limit)s
    for update skip locked
)
update monitors m
set next_run_at = due.next_run_at + make_interval(mins => m.frequency_minutes)
        * (floor(extract(epoch from (%(now)s - due.next_run_at)) / (m.frequency_minutes * 60)) + 1)
from due
where m.id = due.id
returning m.id, m.type, m.target, m.config, m.location_config, m.frequency_minutes,
    -- the latest slot that is due; slots missed while nothing ran are skipped, not replayed
    due.next_run_at + make_interval(mins => m.frequency_minutes)
        * floor(extract(epoch from (%(now)s - due.next_run_at)) / (m.frequency_minutes * 60)) as scheduled_at
"""

_SELECT_FOR_RUN_NOW = """
select id, type, target, config, location_config, frequency_minutes, %(now)s::timestamptz as scheduled_at
from monitors where id = any(%(ids)s)
"""


async def _record_runs(conn: AsyncConnection, monitors: list[dict], now: datetime) -> list[tuple[dict, dict]]:
    if not monitors:
        return []
    regions = await _active_regions(conn)
    rows = []
    for monitor in monitors:
        rows.append(
            (
                uuid.uuid4(),
                monitor["id"],
                monitor["scheduled_at"],
                expected_locations(monitor["location_config"], regions),
                run_deadline(now, monitor["type"], monitor["config"], monitor["frequency_minutes"]),
            )
        )
    inserted = await (
        await conn.execute(
            """
            insert into runs (id, monitor_id, scheduled_at, expected_locations, deadline)
            select r.id, r.monitor_id, r.scheduled_at, string_to_array(r.locations, ','), r.deadline
            from unnest(%s::uuid[], %s::uuid[], %s::timestamptz[], %s::text[], %s::timestamptz[])
                as r(id, monitor_id, scheduled_at, locations, deadline)
            on conflict (monitor_id, scheduled_at) do nothing
            returning id, monitor_id, scheduled_at, expected_locations, deadline
            """,
            (
                [r[0] for r in rows],
                [r[1] for r in rows],
                [r[2] for r in rows],
                [",".join(r[3]) for r in rows],
                [r[4] for r in rows],
            ),
        )
    ).fetchall()
    by_monitor = {monitor["id"]: monitor for monitor in monitors}
    return [(run, by_monitor[run["monitor_id"]]) for run in inserted]


def jobs_for_run(run: dict, monitor: dict) -> list[tuple[str, CheckJob]]:
    return [
        (
            streams.job_stream(monitor["type"], location),
            CheckJob(
                run_id=run["id"],
                monitor_id=monitor["id"],
                location=location,
                type=monitor["type"],
                target=monitor["target"],
                config=monitor["config"],
                scheduled_at=run["scheduled_at"],
                deadline=run["deadline"],
            ),
        )
        for location in run["expected_locations"]
    ]


async def _publish_and_mark(runs: list[tuple[dict, dict]]) -> int:
    if not runs:
        return 0
    jobs = [job for run, monitor in runs for job in jobs_for_run(run, monitor)]
    published = await streams.publish(jobs)
    async with db.transaction() as conn:
        await conn.execute(
            "update runs set dispatched_at = now() where id = any(%s) and dispatched_at is null",
            ([run["id"] for run, _ in runs],),
        )
    return published


async def schedule_tick(now: datetime | None = None, only_ids: list[uuid.UUID] | None = None) -> TickReport:
    """One cron tick: safe to run twice at once (SKIP LOCKED) and safe to skip (missed slots collapse)."""
    now = now or datetime.now(UTC)
    report = TickReport()
    while True:
        async with db.transaction() as conn:
            claimed = await (
                await conn.execute(
                    _CLAIM_DUE.format(only_ids="and id = any(%(ids)s)" if only_ids is not None else ""),
                    {"now": now, "limit": CLAIM_BATCH, "ids": only_ids},
                )
            ).fetchall()
            runs = await _record_runs(conn, claimed, now)
        report.jobs_published += await _publish_and_mark(runs)
        report.runs_created += len(runs)
        report.run_ids += [str(run["id"]) for run, _ in runs]
        if len(claimed) < CLAIM_BATCH:
            break
    report.runs_redispatched = await redispatch_stale_runs(now)
    return report


async def run_now(monitor_ids: list[uuid.UUID], now: datetime | None = None) -> TickReport:
    """Start a run of each monitor immediately, outside its schedule (API "run now", CI webhooks)."""
    now = now or datetime.now(UTC)
    report = TickReport()
    async with db.transaction() as conn:
        monitors = await (
            await conn.execute(_SELECT_FOR_RUN_NOW, {"now": now, "ids": monitor_ids})
        ).fetchall()
        runs = await _record_runs(conn, monitors, now)
    report.jobs_published = await _publish_and_mark(runs)
    report.runs_created = len(runs)
    report.run_ids = [str(run["id"]) for run, _ in runs]
    return report


async def redispatch_stale_runs(now: datetime) -> int:
    """The outbox sweep: runs committed but never marked dispatched (a crash between commit and XADD)."""
    cutoff = now - timedelta(seconds=get_settings().dispatch_sweep_after_seconds)
    async with db.transaction() as conn:
        rows = await (
            await conn.execute(
                """
                select r.id, r.monitor_id, r.scheduled_at, r.expected_locations, r.deadline,
                       m.type, m.target, m.config
                from runs r join monitors m on m.id = r.monitor_id
                where r.dispatched_at is null and r.finalized_at is null and r.created_at < %s
                order by r.created_at
                limit 1000
                for update of r skip locked
                """,
                (cutoff,),
            )
        ).fetchall()
        runs = [
            (
                row,
                {
                    "id": row["monitor_id"],
                    "type": row["type"],
                    "target": row["target"],
                    "config": row["config"],
                },
            )
            for row in rows
        ]
        jobs = [job for run, monitor in runs for job in jobs_for_run(run, monitor)]
        await streams.publish(jobs)
        if rows:
            await conn.execute(
                "update runs set dispatched_at = now() where id = any(%s)", ([r["id"] for r in rows],)
            )
    return len(rows)
