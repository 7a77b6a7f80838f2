"""Cleanup's database part (shared.pipeline.cleanup): old results, runs and alert rows deleted in short batches,
each its own transaction, under the per-run safety limit; and the dry run's counts of the same. Each takes an
optional project: a run asked for by a project's key sees and deletes that project's rows only."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from shared import db
from shared.pipeline import rollups
from shared.rules.retention import Budget, CleanupReport, RetentionConfig, RollupReport

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
  and (%(project_id)s::uuid is null or m.project_id = %(project_id)s::uuid)
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

# A row of the given project's monitors, or of any when no project is given.
_IN_PROJECT = (
    "(%(project_id)s::uuid is null"
    " or {alias}.monitor_id in (select id from monitors where project_id = %(project_id)s::uuid))"
)

_RUNS_IN_PROJECT = _IN_PROJECT.format(alias="r")

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
  and {_RUNS_IN_PROJECT}
group by r.monitor_id order by r.monitor_id
"""


async def count_deletions(
    report: CleanupReport, config: RetentionConfig, project_id: uuid.UUID | None = None
) -> None:
    """The dry run: what a real run would delete now, counted under the same safety limit; writes nothing."""
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
            "project_id": project_id,
        }
        old = await (await conn.execute(_OLD_RESULTS_BY_MONITOR, params)).fetchall()
        budget = Budget(config.safety_limit)
        for row in old:
            entry = report.monitor(row["monitor_id"])
            entry.results_deleted = min(row["deletable"], budget.limit - budget.used)
            entry.status_changes_kept = row["kept"]
            budget.used += entry.results_deleted
        report.safety_limit_reached = sum(row["deletable"] for row in old) > config.safety_limit
        # as delete_old takes them in a real run: each table by its own time column and cutoff
        for table, time_column, cutoff_param in (
            ("alert_history", "created_at", "alert_cutoff"),
            ("alert_events", "created_at", "alert_cutoff"),
            ("heartbeat_pings", "received_at", "cutoff"),
        ):
            count_sql = (
                f"select count(*) as n from {table} t where {time_column} < %({cutoff_param})s"
                f" and {_IN_PROJECT.format(alias='t')}"
            )
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


async def _monitor_ids(project_id: uuid.UUID | None) -> list:
    async with db.transaction() as conn:
        rows = await (
            await conn.execute(
                "select id from monitors where %(p)s::uuid is null or project_id = %(p)s::uuid order by id",
                {"p": project_id},
            )
        ).fetchall()
    return [row["id"] for row in rows]


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


async def delete_results(
    report: CleanupReport, config: RetentionConfig, cutoff: datetime, project_id: uuid.UUID | None = None
) -> None:
    async with db.transaction() as conn:
        since = _walk_from(await rollups.read_marks(conn), config)
    params = {
        "since": since,
        "cutoff": cutoff,
        "preserve": config.preserve_status_changes,
        "project_id": project_id,
    }
    budget = Budget(config.safety_limit)
    unfinished = []
    for monitor_id in await _monitor_ids(project_id):
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
    if not report.safety_limit_reached and project_id is None:  # the mark speaks for every project's rows
        async with db.transaction() as conn:
            await rollups.set_mark(conn, DELETED_MARK, cutoff)


async def delete_runs(
    report: CleanupReport, config: RetentionConfig, cutoff: datetime, project_id: uuid.UUID | None = None
) -> None:
    async with db.transaction() as conn:
        since = _runs_walk_from(await rollups.read_marks(conn), config)
    budget = Budget(config.safety_limit)
    for monitor_id in await _monitor_ids(project_id):
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
    if project_id is None:
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


async def delete_old(
    table: str,
    cutoff: datetime,
    batch_size: int,
    limit: int,
    project_id: uuid.UUID | None = None,
    time_column: str = "created_at",
) -> int:
    sql = (
        f"delete from {table} where id in (select id from {table} t where {time_column} < %(cutoff)s"
        f" and {_IN_PROJECT.format(alias='t')} limit %(size)s)"
    )
    return await _delete_in_batches(
        sql, {"cutoff": cutoff, "project_id": project_id}, batch_size, Budget(limit)
    )
