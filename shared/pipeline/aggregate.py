"""The aggregate function's work: finalize runs (compare-and-set), advance monitor state in order, queue alerts.

Set-based: one batch of runs costs a fixed handful of statements however many runs it holds, because aggregate
keeps up with every check of every region and per-run round trips were what made it fall behind.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from shared import db, streams
from shared.models import AlertConfig, AlertEnvelope, LocationConfig
from shared.rules.alerts import (
    DEFAULT_SSL_WARNING_DAYS,
    AlertAction,
    AlertPolicy,
    AlertState,
    MaintenanceWindow,
    RunOutcome,
    SslFacts,
    decide,
)
from shared.rules.locations import RunVerdict, aggregate_run


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
"""

_ADVANCE_MONITORS = """
update monitors m
set status = s.status, alert_state = s.alert_state, last_applied_run_at = s.applied_at, last_check_at = %s,
    last_run_id = s.run_id
from unnest(%s::uuid[], %s::text[], %s::jsonb[], %s::timestamptz[], %s::uuid[])
        as s(id, status, alert_state, applied_at, run_id)
where m.id = s.id
"""

_QUEUE_ALERTS = """
insert into alert_events (monitor_id, run_id, kind, payload, suppressed_reason)
select a.monitor_id, a.run_id, a.kind, a.payload, a.suppressed_reason
from unnest(%s::uuid[], %s::uuid[], %s::text[], %s::jsonb[], %s::text[])
        as a(monitor_id, run_id, kind, payload, suppressed_reason)
on conflict (run_id, kind) do nothing
"""


@lru_cache(maxsize=4096)
def _location_config(raw: str | None) -> LocationConfig:
    return LocationConfig.model_validate_json(raw or "{}")


@lru_cache(maxsize=4096)
def _alert_config(raw: str | None) -> AlertConfig:
    return AlertConfig.model_validate_json(raw or "{}")


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


async def _finalize(run_ids: list[uuid.UUID], now: datetime, at_deadline: bool) -> int:
    async with db.transaction() as conn:
        runs = await (await conn.execute(_UNFINALIZED_RUNS, (run_ids,))).fetchall()
        verdicts: dict[uuid.UUID, RunVerdict] = {}
        for run in runs:
            statuses = dict(zip(run["locations"], run["statuses"], strict=True))
            if not at_deadline and any(loc not in statuses for loc in run["expected_locations"]):
                continue
            verdicts[run["id"]] = aggregate_run(
                statuses, run["expected_locations"], _location_config(run["location_config"])
            )
        won = await _mark_finalized(conn, verdicts, now)
        finalized = [run for run in runs if run["id"] in won]  # still in scheduled order
        effects = await _advance_monitors(conn, finalized, verdicts, now)
    await streams.publish_live_events(effects.flips)
    return len(finalized)


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
    conn: AsyncConnection, runs: list[dict], verdicts: dict[uuid.UUID, RunVerdict], now: datetime
) -> _Effects:
    """Applies finalized runs to their monitors in scheduled order; late runs are stored but never applied."""
    effects = _Effects()
    if not runs:
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
    policies = await _alert_policies(conn, [m.row for m in monitors.values()], now)
    ssl_details = await _ssl_details(
        conn,
        [run["id"] for run in runs if _wants_ssl(policies.get(run["monitor_id"]))],
    )
    for run in runs:
        monitor = monitors.get(run["monitor_id"])
        if monitor is None:
            continue  # deleted while the run was in flight
        if monitor.applied_at is not None and run["scheduled_at"] <= monitor.applied_at:
            continue  # a late run: stored and finalized, but state only moves forward
        verdict = verdicts[run["id"]]
        policy = policies[run["monitor_id"]]
        ssl = SslFacts.worst_of(ssl_details.get(run["id"], ())) if _wants_ssl(policy) else None
        decision = decide(monitor.alert_state, RunOutcome(verdict.status, ssl), policy, now)
        new_status = (
            monitor.status if verdict.status == "unknown" and monitor.status != "pending" else verdict.status
        )
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
        monitor.status, monitor.alert_state = new_status, decision.state
        monitor.applied_at, monitor.run_id = run["scheduled_at"], run["id"]
        effects.alerts += [(monitor.row, run, verdict, action) for action in decision.actions]
    await _write_effects(conn, [m for m in monitors.values() if m.run_id is not None], effects, now)
    return effects


async def _write_effects(
    conn: AsyncConnection, advanced: list[_MonitorState], effects: _Effects, now: datetime
) -> None:
    if effects.status_changes:
        await conn.execute(
            _RECORD_STATUS_CHANGES, (now, *map(list, zip(*effects.status_changes, strict=True)))
        )
    if advanced:
        await conn.execute(
            _ADVANCE_MONITORS,
            (
                now,
                [m.row["id"] for m in advanced],
                [m.status for m in advanced],
                [Jsonb(m.alert_state.to_json()) for m in advanced],
                [m.applied_at for m in advanced],
                [m.run_id for m in advanced],
            ),
        )
    if effects.alerts:
        contexts = await _alert_contexts(conn, [run["id"] for _, run, _, _ in effects.alerts])
        rows = [
            (
                monitor["id"],
                run["id"],
                action.kind,
                Jsonb(_alert_payload(contexts.get(run["id"], {}), monitor, run, verdict, action, now)),
                action.suppressed_reason,
            )
            for monitor, run, verdict, action in effects.alerts
        ]
        await conn.execute(_QUEUE_ALERTS, tuple(map(list, zip(*rows, strict=True))))


def _alert_payload(
    context: dict, monitor: dict, run: dict, verdict: RunVerdict, action: AlertAction, now: datetime
) -> dict:
    return {
        **context,
        "monitorName": monitor["name"],
        "monitorType": monitor["type"],
        "target": monitor["target"],
        "status": verdict.status,
        "locationsDown": verdict.locations_down,
        "locationsTotal": len(run["expected_locations"]),
        "missingLocations": list(verdict.missing_locations),
        "sequenceNumber": action.sequence_number,
        "time": now.isoformat(),
        **({"ssl": action.details} if action.kind.startswith("ssl") else {}),
    }


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
        await streams.publish(
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


# --- alerting inputs: what decide() needs beyond the run status, and what an alert says ------------------


async def _alert_policies(
    conn: AsyncConnection, monitors: list[dict], now: datetime
) -> dict[uuid.UUID, AlertPolicy]:
    """Each monitor's policy; the maintenance windows of every project involved are read in one statement."""
    configs = {monitor["id"]: _alert_config(monitor["alert_config"]) for monitor in monitors}
    alerting = [monitor for monitor in monitors if configs[monitor["id"]].enabled]
    windows = (
        await (
            await conn.execute(
                """select project_id, monitor_ids, name, starts_at, ends_at, cron, duration_minutes, timezone
                   from maintenance_windows
                   where project_id = any(%s) and (cron is not null or (starts_at <= %s and ends_at > %s))""",
                (list({monitor["project_id"] for monitor in alerting}), now, now),
            )
        ).fetchall()
        if alerting
        else []
    )
    policies = {monitor["id"]: AlertPolicy(configs[monitor["id"]]) for monitor in monitors}
    for monitor in alerting:
        applying = tuple(
            MaintenanceWindow(
                name=w["name"],
                starts_at=w["starts_at"],
                ends_at=w["ends_at"],
                cron=w["cron"],
                duration_minutes=w["duration_minutes"],
                timezone=w["timezone"],
            )
            for w in windows
            if w["project_id"] == monitor["project_id"]
            and (not w["monitor_ids"] or monitor["id"] in w["monitor_ids"])
        )
        warning_days = (monitor["config"] or {}).get("sslDaysUntilExpirationWarning")
        policies[monitor["id"]] = AlertPolicy(
            configs[monitor["id"]],
            applying,
            warning_days if isinstance(warning_days, int) and warning_days > 0 else DEFAULT_SSL_WARNING_DAYS,
        )
    return policies


def _wants_ssl(policy: AlertPolicy | None) -> bool:
    return policy is not None and policy.config.enabled and policy.config.alert_on_ssl_expiration


async def _ssl_details(conn: AsyncConnection, run_ids: list[uuid.UUID]) -> dict[uuid.UUID, list]:
    """The certificate facts each run's checks reported in details["ssl"], by run."""
    if not run_ids:
        return {}
    rows = await (
        await conn.execute(
            "select run_id, details -> 'ssl' as ssl from monitor_results where run_id = any(%s) and details ? 'ssl'",
            (run_ids,),
        )
    ).fetchall()
    by_run: dict[uuid.UUID, list] = {}
    for row in rows:
        by_run.setdefault(row["run_id"], []).append(row["ssl"])
    return by_run


async def _alert_contexts(conn: AsyncConnection, run_ids: list[uuid.UUID]) -> dict[uuid.UUID, dict]:
    rows = await (
        await conn.execute(
            """select r.id as run_id, p.name as project_name,
                      round(avg(res.response_time_ms))::int as response_time_ms,
                      (array_agg(res.location || ': ' || res.message order by res.location)
                         filter (where res.status in ('down', 'error', 'timeout') and res.message <> ''))[1]
                         as reason
               from runs r
               join monitors m on m.id = r.monitor_id
               join projects p on p.id = m.project_id
               left join monitor_results res on res.run_id = r.id
               where r.id = any(%s)
               group by r.id, p.name""",
            (list(set(run_ids)),),
        )
    ).fetchall()
    return {
        row["run_id"]: {
            "projectName": row["project_name"],
            "responseTimeMs": row["response_time_ms"],
            "reason": row["reason"],
        }
        for row in rows
    }
