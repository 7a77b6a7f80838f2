"""The aggregate function's work: finalize runs (compare-and-set), advance monitor state in order, queue alerts."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from shared import db, streams
from shared.aggregation import RunVerdict, aggregate_run
from shared.alerts import (
    DEFAULT_SSL_WARNING_DAYS,
    AlertAction,
    AlertPolicy,
    AlertState,
    MaintenanceWindow,
    RunOutcome,
    SslFacts,
    decide,
)
from shared.models import AlertConfig, AlertEvent, LocationConfig


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


async def _finalize(run_ids: list[uuid.UUID], now: datetime, at_deadline: bool) -> int:
    finalized = 0
    flips: list[dict] = []
    async with db.transaction() as conn:
        runs = await (
            await conn.execute(
                """
                select r.id, r.monitor_id, r.scheduled_at, r.expected_locations, m.location_config,
                       coalesce(jsonb_object_agg(res.location, res.status) filter (where res.location is not null),
                                '{}'::jsonb) as statuses
                from runs r
                join monitors m on m.id = r.monitor_id
                left join monitor_results res on res.run_id = r.id
                where r.id = any(%s) and r.finalized_at is null
                group by r.id, m.location_config
                order by r.scheduled_at
                """,
                (run_ids,),
            )
        ).fetchall()
        for run in runs:
            statuses = run["statuses"]
            if not at_deadline and any(loc not in statuses for loc in run["expected_locations"]):
                continue
            verdict = aggregate_run(
                statuses,
                run["expected_locations"],
                LocationConfig.model_validate(run["location_config"] or {}),
            )
            won = await (
                await conn.execute(
                    """update runs set finalized_at = %s, status = %s, is_partial = %s, missing_locations = %s
                       where id = %s and finalized_at is null returning id""",
                    (now, verdict.status, verdict.is_partial, list(verdict.missing_locations), run["id"]),
                )
            ).fetchone()
            if won is None:
                continue  # another aggregate invocation finalized it first
            finalized += 1
            flip = await _apply_to_monitor(conn, run, verdict, now)
            if flip:
                flips.append(
                    {
                        "type": "status_change",
                        "monitorId": run["monitor_id"],
                        "runId": run["id"],
                        "from": flip[0],
                        "to": flip[1],
                        "isPartial": verdict.is_partial,
                        "at": now.isoformat(),
                    }
                )
    await streams.publish_events(flips)
    return finalized


async def _apply_to_monitor(
    conn: AsyncConnection, run: dict, verdict: RunVerdict, now: datetime
) -> tuple[str, str] | None:
    """Advances the monitor's state with this run; returns the status flip (from, to) if there was one."""
    monitor = await (
        await conn.execute(
            """select id, project_id, name, type, target, config, status, alert_state, alert_config,
                      last_applied_run_at
               from monitors where id = %s for update""",
            (run["monitor_id"],),
        )
    ).fetchone()
    if monitor is None:
        return None
    if monitor["last_applied_run_at"] is not None and run["scheduled_at"] <= monitor["last_applied_run_at"]:
        return None  # a late run: stored and finalized, but state only moves forward
    policy = await _alert_policy(conn, monitor, now)
    outcome = RunOutcome(verdict.status, await _ssl_facts(conn, run, policy))
    decision = decide(AlertState.from_json(monitor["alert_state"]), outcome, policy, now)
    new_status = (
        monitor["status"]
        if verdict.status == "unknown" and monitor["status"] != "pending"
        else verdict.status
    )
    if new_status != monitor["status"]:
        await conn.execute(
            """insert into status_changes (monitor_id, run_id, from_status, to_status, changed_at)
               values (%s, %s, %s, %s, %s) on conflict (run_id) do nothing""",
            (monitor["id"], run["id"], monitor["status"], new_status, now),
        )
    await conn.execute(
        """update monitors set status = %s, alert_state = %s, last_applied_run_at = %s, last_check_at = %s,
               last_run_id = %s
           where id = %s""",
        (new_status, Jsonb(decision.state.to_json()), run["scheduled_at"], now, run["id"], monitor["id"]),
    )
    for action in decision.actions:
        await _queue_alert(conn, monitor, run, verdict, action, now)
    return (monitor["status"], new_status) if new_status != monitor["status"] else None


async def _queue_alert(
    conn: AsyncConnection, monitor: dict, run: dict, verdict: RunVerdict, action: AlertAction, now: datetime
) -> None:
    payload = {
        **await _alert_context(conn, monitor, run),
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
    await conn.execute(
        """insert into alert_events (monitor_id, run_id, kind, payload, suppressed_reason)
           values (%s, %s, %s, %s, %s)
           on conflict (run_id, kind) do nothing""",
        (monitor["id"], run["id"], action.kind, Jsonb(payload), action.suppressed_reason),
    )


async def publish_pending_alerts(run_ids: list[uuid.UUID] | None = None) -> int:
    """Outbox relay for alert events; re-publishing is harmless because delivery is keyed on (run, provider, kind)."""
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
                AlertEvent(
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


async def _alert_policy(conn: AsyncConnection, monitor: dict, now: datetime) -> AlertPolicy:
    config = AlertConfig.model_validate(monitor["alert_config"] or {})
    if not config.enabled:
        return AlertPolicy(config)
    rows = await (
        await conn.execute(
            """select name, starts_at, ends_at, cron, duration_minutes, timezone from maintenance_windows
               where project_id = %s and (cardinality(monitor_ids) = 0 or %s = any(monitor_ids))
                 and (cron is not null or (starts_at <= %s and ends_at > %s))""",
            (monitor["project_id"], monitor["id"], now, now),
        )
    ).fetchall()
    warning_days = (monitor["config"] or {}).get("sslDaysUntilExpirationWarning")
    return AlertPolicy(
        config,
        tuple(MaintenanceWindow(**row) for row in rows),
        warning_days if isinstance(warning_days, int) and warning_days > 0 else DEFAULT_SSL_WARNING_DAYS,
    )


async def _ssl_facts(conn: AsyncConnection, run: dict, policy: AlertPolicy) -> SslFacts | None:
    """The certificate facts the run's checks reported in details["ssl"], when SSL alerts are wanted."""
    if not (policy.config.enabled and policy.config.alert_on_ssl_expiration):
        return None
    rows = await (
        await conn.execute(
            "select details -> 'ssl' as ssl from monitor_results where run_id = %s and details ? 'ssl'",
            (run["id"],),
        )
    ).fetchall()
    return SslFacts.worst_of(row["ssl"] for row in rows)


async def _alert_context(conn: AsyncConnection, monitor: dict, run: dict) -> dict:
    row = await (
        await conn.execute(
            """select p.name as project_name,
                      round(avg(r.response_time_ms))::int as response_time_ms,
                      (array_agg(r.location || ': ' || r.message order by r.location)
                         filter (where r.status in ('down', 'error', 'timeout') and r.message <> ''))[1] as reason
               from projects p left join monitor_results r on r.run_id = %s
               where p.id = %s group by p.name""",
            (run["id"], monitor["project_id"]),
        )
    ).fetchone()
    if row is None:
        return {}
    return {
        "projectName": row["project_name"],
        "responseTimeMs": row["response_time_ms"],
        "reason": row["reason"],
    }
