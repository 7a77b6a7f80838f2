"""The aggregate function's work: finalize runs (compare-and-set), advance monitor state in order, queue alerts.
Used by the aggregate function (functions/aggregate).

Set-based: one batch of runs costs a fixed handful of statements however many runs it holds, because aggregate
keeps up with every check of every region and per-run round trips were what made it fall behind.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from shared import db, streams
from shared.models import FAILED_STATUSES, AlertEnvelope
from shared.pipeline.alert_inputs import (
    alert_contexts,
    alert_payload,
    alert_policies,
    answer_changes,
    ssl_details,
    wants_answer_changes,
    wants_ssl,
)
from shared.pipeline.set_aside import location_config, set_aside
from shared.pipeline.status_drafts import follow_status_changes
from shared.redis import publish, publish_live_events
from shared.rules.alerts import AlertAction, AlertState, RunOutcome, SslFacts, decide
from shared.rules.dns_changes import change_alerts
from shared.rules.locations import RunVerdict, aggregate_run, monitor_status_after
from shared.rules.status_drafts import MonitorChange
from shared.telemetry import Tally


async def finalize_runs(run_ids: Iterable[uuid.UUID], now: datetime | None = None) -> int:
    """Finalize each run whose expected locations have all reported. Returns how many this call finalized."""
    ids = list(dict.fromkeys(run_ids))
    if not ids:
        return 0
    finalized = await _finalize(ids, now or datetime.now(UTC), at_deadline=False)
    await publish_pending_alerts(ids)
    return finalized


async def sweep_deadlines(now: datetime | None = None, limit: int = 1000) -> int:
    """Finalize runs past their deadline from whatever reported; the rest are recorded as missing."""
    now = now or datetime.now(UTC)
    async with db.transaction() as conn:
        rows = await (
            await conn.execute(
                "select id from runs where finalized_at is null and deadline <= %s order by deadline limit %s",
                (now, limit),
            )
        ).fetchall()
    ids = [row["id"] for row in rows]
    finalized = await _finalize(ids, now, at_deadline=True) if ids else 0
    await publish_pending_alerts(ids)
    return finalized


_UNFINALIZED_RUNS = """
select r.id, r.monitor_id, r.scheduled_at, r.expected_locations, m.location_config::text as location_config,
       array_remove(array_agg(res.location), null) as locations, array_remove(array_agg(res.status), null) as statuses
from runs r
join monitors m on m.id = r.monitor_id
left join monitor_results res on res.run_id = r.id
where r.id = any(%s) and r.finalized_at is null
group by r.id, m.id
order by r.scheduled_at, r.id
"""

# Compare-and-set on finalized_at. Rows are locked in id order (no deadlock between two aggregate invocations),
# and a run another invocation is finalizing right now is skipped: that one commits it, or its batch is
# redelivered and finalized again.
_MARK_FINALIZED = """
with claimed as (
    select id from runs where id = any(%(ids)s) and finalized_at is null
    order by id
    for no key update skip locked
)
update runs r
set finalized_at = %(now)s, status = v.status, is_partial = v.is_partial,
    missing_locations = string_to_array(v.missing, ',')
from unnest(%(ids)s::uuid[], %(statuses)s::text[], %(partial)s::bool[], %(missing)s::text[])
        as v(id, status, is_partial, missing)
join claimed on claimed.id = v.id
where r.id = v.id
returning r.id
"""

_LOCK_MONITORS = """
select id, project_id, name, type, target, config, status, alert_state, alert_config::text as alert_config,
       last_applied_run_at
from monitors where id = any(%s)
order by id
for no key update
"""

_RECORD_STATUS_CHANGES = """
insert into status_changes (monitor_id, run_id, from_status, to_status, changed_at)
select c.monitor_id, c.run_id, c.from_status, c.to_status, %s
from unnest(%s::uuid[], %s::uuid[], %s::text[], %s::text[]) as c(monitor_id, run_id, from_status, to_status)
on conflict (run_id) do nothing
returning run_id
"""

# One jsonb document for the batch, not five arrays: psycopg dumps an array element by element in Python, and
# the jsonb[] of alert states was a tenth of aggregate's CPU writing heartbeat pings (py-spy).
_ADVANCE_MONITORS = """
update monitors m
set status = s.status, alert_state = s.alert_state, last_applied_run_at = s.applied_at, last_check_at = %s,
    last_run_id = s.run_id
from jsonb_to_recordset(%s) as s(id uuid, status text, alert_state jsonb, applied_at timestamptz, run_id uuid)
where m.id = s.id
"""

_QUEUE_ALERTS = """
insert into alert_events (monitor_id, run_id, kind, payload, suppressed_reason)
select a.monitor_id, a.run_id, a.kind, a.payload, a.suppressed_reason
from unnest(%s::uuid[], %s::uuid[], %s::text[], %s::jsonb[], %s::text[])
        as a(monitor_id, run_id, kind, payload, suppressed_reason)
on conflict (run_id, kind) do nothing
"""


@dataclass
class _MonitorState:
    """A locked monitor row as this batch advances it: several of its runs may finalize in one batch."""

    row: dict
    status: str
    alert_state: AlertState
    applied_at: datetime | None
    run_id: uuid.UUID | None = (
        None  # the run this batch applied last; None: the batch left the monitor as it was
    )


@dataclass
class _Effects:
    """Everything one batch writes after finalizing its runs, collected so each kind is one statement."""

    status_changes: list[tuple] = field(default_factory=list)
    alerts: list[tuple[dict, dict, RunVerdict, AlertAction]] = field(default_factory=list)
    flips: list[dict] = field(default_factory=list)
    # changes into or out of down, for the status pages' automatic draft incidents
    outages: list[MonitorChange] = field(default_factory=list)


def _verdicts(
    runs: list[dict], at_deadline: bool
) -> tuple[dict[uuid.UUID, RunVerdict], dict[uuid.UUID, str]]:
    """Each finalizable run's verdict, and why a monitor whose stored location config no longer validates is
    set aside: its runs are finalized `unknown` (they cannot be judged) so none waits forever, and never applied."""
    verdicts: dict[uuid.UUID, RunVerdict] = {}
    problems: dict[uuid.UUID, str] = {}
    for run in runs:
        statuses = dict(zip(run["locations"], run["statuses"], strict=True))
        expected = run["expected_locations"]
        if not at_deadline and any(loc not in statuses for loc in expected):
            continue
        config = location_config(run["location_config"])
        if isinstance(config, str):
            problems[run["monitor_id"]] = config
            missing = tuple(loc for loc in expected if loc not in statuses)
            verdicts[run["id"]] = RunVerdict("unknown", False, missing, 0, len(statuses))
            continue
        verdicts[run["id"]] = aggregate_run(statuses, expected, config)
    return verdicts, problems


async def _finalize(run_ids: list[uuid.UUID], now: datetime, at_deadline: bool) -> int:
    async with db.transaction() as conn:
        runs = await (await conn.execute(_UNFINALIZED_RUNS, (run_ids,))).fetchall()
        verdicts, problems = _verdicts(runs, at_deadline)
        won = await _mark_finalized(conn, verdicts, now)
        finalized = [run for run in runs if run["id"] in won]  # still in scheduled order
        effects = await _advance_monitors(conn, finalized, verdicts, now, problems)
    await announce_finalized(finalized, verdicts, effects)
    return len(finalized)


def verdicts_of_complete_runs(runs: list[dict]) -> tuple[dict[uuid.UUID, RunVerdict], dict[uuid.UUID, str]]:
    """The verdicts of runs whose every expected location has reported, written with all their results in one
    transaction (a heartbeat's run and its one result, shared/heartbeats/record.py): the writer inserts them
    already finalized with these and calls finalize_written in the same transaction. Each run as
    _UNFINALIZED_RUNS reads one: id, monitor_id, scheduled_at, expected_locations, locations, statuses,
    location_config (text). Also the monitors to set aside, as _verdicts says."""
    return _verdicts(runs, at_deadline=False)


async def finalize_written(
    conn: AsyncConnection,
    runs: list[dict],
    verdicts: dict[uuid.UUID, RunVerdict],
    problems: dict[uuid.UUID, str],
    now: datetime,
) -> _Effects:
    """Runs inserted finalized in this transaction (verdicts_of_complete_runs), in scheduled order: their monitors
    advanced, status changes and alerts recorded, as for runs finalized here. Saves what finalize_runs would cost
    them: reading them back, marking each finalized (a second version of each row) and a transaction. After the
    commit, announce_finalized and publish_pending_alerts."""
    return await _advance_monitors(conn, runs, verdicts, now, problems)


async def announce_finalized(
    runs: list[dict], verdicts: dict[uuid.UUID, RunVerdict], effects: _Effects
) -> None:
    """After the commit that finalized `runs`: their count for the metrics, and the status flips' live events."""
    await _tally_finalized([verdicts[run["id"]] for run in runs]).flush()
    await publish_live_events(effects.flips)


def _tally_finalized(verdicts: list[RunVerdict]) -> Tally:
    """The runs this call won the compare-and-set for: a run another invocation finalized is its to count."""
    tally = Tally()
    for verdict in verdicts:
        tally.count("supercheck_runs_finalized", late=str(bool(verdict.missing_locations)).lower())
        for location in verdict.missing_locations:
            tally.count("supercheck_run_missing_locations", location=location)
    return tally


async def _mark_finalized(
    conn: AsyncConnection, verdicts: dict[uuid.UUID, RunVerdict], now: datetime
) -> set[uuid.UUID]:
    if not verdicts:
        return set()
    rows = await (
        await conn.execute(
            _MARK_FINALIZED,
            {
                "now": now,
                "ids": list(verdicts),
                "statuses": [v.status for v in verdicts.values()],
                "partial": [v.is_partial for v in verdicts.values()],
                "missing": [",".join(v.missing_locations) for v in verdicts.values()],
            },
        )
    ).fetchall()
    return {row["id"] for row in rows}


async def _advance_monitors(
    conn: AsyncConnection,
    runs: list[dict],
    verdicts: dict[uuid.UUID, RunVerdict],
    now: datetime,
    problems: dict[uuid.UUID, str],
) -> _Effects:
    """Applies finalized runs to their monitors in scheduled order; late runs are stored but never applied, and
    monitors whose stored row no longer validates (problems) are set aside instead."""
    effects = _Effects()
    if not runs:
        await set_aside(conn, problems)
        return effects
    rows = await (
        await conn.execute(_LOCK_MONITORS, (sorted({run["monitor_id"] for run in runs}),))
    ).fetchall()
    monitors = {
        row["id"]: _MonitorState(
            row, row["status"], AlertState.from_json(row["alert_state"]), row["last_applied_run_at"]
        )
        for row in rows
    }
    earliest = min(run["scheduled_at"] for run in runs)
    policies, alert_problems = await alert_policies(conn, [m.row for m in monitors.values()], earliest, now)
    problems = {**alert_problems, **problems}
    await set_aside(conn, problems)
    certificates = await ssl_details(
        conn,
        [run["id"] for run in runs if wants_ssl(policies.get(run["monitor_id"]))],
    )
    changes = await answer_changes(
        conn,
        [
            run["id"]
            for run in runs
            if run["monitor_id"] in monitors and wants_answer_changes(monitors[run["monitor_id"]].row)
        ],
    )
    for run in runs:
        monitor = monitors.get(run["monitor_id"])
        if monitor is None or run["monitor_id"] in problems:
            continue  # deleted while the run was in flight, or set aside
        if monitor.applied_at is not None and run["scheduled_at"] <= monitor.applied_at:
            continue  # a late run: stored and finalized, but state only moves forward
        verdict = verdicts[run["id"]]
        policy = policies[run["monitor_id"]]
        ssl = SslFacts.worst_of(certificates.get(run["id"], ())) if wants_ssl(policy) else None
        outcome = RunOutcome(verdict.status, ssl, scheduled_at=run["scheduled_at"])
        decision = decide(monitor.alert_state, outcome, policy, now)
        decision.actions.extend(
            change_alerts(
                wants_answer_changes(monitor.row),
                changes.get(run["id"], {}),
                policy,
                now,
                run["scheduled_at"],
            )
        )
        new_status = monitor_status_after(monitor.status, verdict.status)
        if new_status != monitor.status:
            effects.status_changes.append((monitor.row["id"], run["id"], monitor.status, new_status))
            effects.flips.append(
                {
                    "type": "status_change",
                    "monitorId": monitor.row["id"],
                    "runId": run["id"],
                    "from": monitor.status,
                    "to": new_status,
                    "isPartial": verdict.is_partial,
                    "at": now.isoformat(),
                }
            )
            if "down" in (monitor.status, new_status):
                effects.outages.append(_outage(monitor, run, new_status))
        monitor.status, monitor.alert_state = new_status, decision.state
        monitor.applied_at, monitor.run_id = run["scheduled_at"], run["id"]
        effects.alerts += [(monitor.row, run, verdict, action) for action in decision.actions]
    await _write_effects(conn, [m for m in monitors.values() if m.run_id is not None], effects, now)
    return effects


def _outage(monitor: _MonitorState, run: dict, new_status: str) -> MonitorChange:
    failing = sorted(
        location
        for location, status in zip(run["locations"], run["statuses"], strict=True)
        if status in FAILED_STATUSES
    )
    return MonitorChange(
        monitor.row["id"], monitor.row["name"], run["id"], monitor.status, new_status, tuple(failing)
    )


async def _write_effects(
    conn: AsyncConnection, advanced: list[_MonitorState], effects: _Effects, now: datetime
) -> None:
    recorded: set[uuid.UUID] = set()
    if effects.status_changes:
        rows = await (
            await conn.execute(
                _RECORD_STATUS_CHANGES, (now, *map(list, zip(*effects.status_changes, strict=True)))
            )
        ).fetchall()
        recorded = {row["run_id"] for row in rows}
    if advanced:
        states = [
            {
                "id": str(m.row["id"]),
                "status": m.status,
                "alert_state": m.alert_state.to_json(),
                "applied_at": m.applied_at.isoformat(),
                "run_id": str(m.run_id),
            }
            for m in advanced
        ]
        await conn.execute(_ADVANCE_MONITORS, (now, Jsonb(states)))
    # after the monitors advanced (a page's down monitors include this batch's), and only for the changes this
    # transaction recorded: a redelivered batch writes no draft twice
    await follow_status_changes(conn, [c for c in effects.outages if c.run_id in recorded], now)
    if effects.alerts:
        contexts = await alert_contexts(conn, [run["id"] for _, run, _, _ in effects.alerts])
        rows = [
            (
                monitor["id"],
                run["id"],
                action.kind,
                Jsonb(alert_payload(contexts.get(run["id"], {}), monitor, run, verdict, action, now)),
                action.suppressed_reason,
            )
            for monitor, run, verdict, action in effects.alerts
        ]
        await conn.execute(_QUEUE_ALERTS, tuple(map(list, zip(*rows, strict=True))))


async def publish_pending_alerts(run_ids: list[uuid.UUID] | None = None) -> int:
    """Outbox relay for alert events; re-publishing is harmless because a send is keyed on (run, provider, kind)."""
    async with db.transaction() as conn:
        condition = (
            "run_id = any(%s)" if run_ids is not None else "created_at < now() - interval '30 seconds'"
        )
        rows = await (
            await conn.execute(
                f"""select id, run_id, monitor_id, kind from alert_events
                    where dispatched_at is null and {condition}
                    order by created_at limit 1000 for update skip locked""",
                (run_ids,) if run_ids is not None else (),
            )
        ).fetchall()
        if not rows:
            return 0
        await publish(
            (
                streams.ALERTS_STREAM,
                AlertEnvelope(
                    alert_event_id=row["id"],
                    run_id=row["run_id"],
                    monitor_id=row["monitor_id"],
                    alert_kind=row["kind"],
                ),
            )
            for row in rows
        )
        await conn.execute(
            "update alert_events set dispatched_at = now() where id = any(%s)", ([r["id"] for r in rows],)
        )
    return len(rows)
