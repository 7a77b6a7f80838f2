"""What aggregate's alert decisions need beyond a run's status (each monitor's policy with the maintenance
windows that cover its runs, certificate facts) and what an alert says. Used by shared/pipeline/aggregate.py."""

from __future__ import annotations

import uuid
from datetime import datetime

from psycopg import AsyncConnection

from shared.pipeline.set_aside import alert_config
from shared.rules.alert_triggers import alert_reason, failing_locations
from shared.rules.alerts import (
    DEFAULT_SSL_WARNING_DAYS,
    AlertAction,
    AlertPolicy,
    MaintenanceWindow,
)
from shared.rules.locations import RunVerdict


def alert_payload(
    context: dict, monitor: dict, run: dict, verdict: RunVerdict, action: AlertAction, now: datetime
) -> dict:
    failing = failing_locations(run["locations"], run["statuses"])
    reason = alert_reason(
        action.kind, action.reason, failing, len(run["expected_locations"]), context.get("lastError")
    )
    return {
        **context,
        "reason": reason,
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
        **({"flapping": action.details} if action.kind.startswith("flapping") else {}),
        **({"dnsChanges": action.details.get("changes", {})} if action.kind == "dns_changed" else {}),
    }


_WINDOWS = """
select project_id, monitor_ids, name, starts_at, ends_at, cron, duration_minutes, timezone
from maintenance_windows
where project_id = any(%s) and (cron is not null or (starts_at <= %s and ends_at > %s))
"""


async def alert_policies(
    conn: AsyncConnection, monitors: list[dict], earliest_run: datetime, now: datetime
) -> tuple[dict[uuid.UUID, AlertPolicy], dict[uuid.UUID, str]]:
    """Each monitor's policy, and why a monitor whose stored alert config no longer validates has none. The
    maintenance windows of every project involved that may cover a run scheduled from `earliest_run` on are read
    in one statement; decide() judges each at its run's scheduled time."""
    configs = {monitor["id"]: alert_config(monitor["alert_config"]) for monitor in monitors}
    problems = {id_: config for id_, config in configs.items() if isinstance(config, str)}
    alerting = [m for m in monitors if m["id"] not in problems and configs[m["id"]].enabled]
    windows = (
        await (
            await conn.execute(
                _WINDOWS, (list({monitor["project_id"] for monitor in alerting}), now, earliest_run)
            )
        ).fetchall()
        if alerting
        else []
    )
    policies = {m["id"]: AlertPolicy(configs[m["id"]]) for m in monitors if m["id"] not in problems}
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
        config = monitor["config"] if isinstance(monitor["config"], dict) else {}
        warning_days = config.get("sslDaysUntilExpirationWarning")
        policies[monitor["id"]] = AlertPolicy(
            configs[monitor["id"]],
            applying,
            warning_days if isinstance(warning_days, int) and warning_days > 0 else DEFAULT_SSL_WARNING_DAYS,
        )
    return policies, problems


def wants_ssl(policy: AlertPolicy | None) -> bool:
    return policy is not None and policy.config.enabled and policy.config.alert_on_ssl_expiration


async def ssl_details(conn: AsyncConnection, run_ids: list[uuid.UUID]) -> dict[uuid.UUID, list]:
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


async def answer_changes(conn: AsyncConnection, run_ids: list[uuid.UUID]) -> dict[uuid.UUID, dict]:
    """The DNS answer changes each run's checks noted in details["changes"], by run and location."""
    if not run_ids:
        return {}
    rows = await (
        await conn.execute(
            """select run_id, location, details -> 'changes' as changes from monitor_results
               where run_id = any(%s) and details ? 'changes'""",
            (run_ids,),
        )
    ).fetchall()
    by_run: dict[uuid.UUID, dict] = {}
    for row in rows:
        by_run.setdefault(row["run_id"], {})[row["location"]] = row["changes"]
    return by_run


def wants_answer_changes(monitor: dict) -> bool:
    config = monitor.get("config")
    return monitor.get("type") == "dns" and isinstance(config, dict) and config.get("alertOnChange") is True


async def alert_contexts(conn: AsyncConnection, run_ids: list[uuid.UUID]) -> dict[uuid.UUID, dict]:
    rows = await (
        await conn.execute(
            """select r.id as run_id, p.name as project_name,
                      round(avg(res.response_time_ms))::int as response_time_ms,
                      (array_agg(res.message order by res.checked_at desc, res.location)
                         filter (where res.status in ('down', 'error', 'timeout') and res.message <> ''))[1]
                         as last_error
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
            "lastError": row["last_error"],
        }
        for row in rows
    }
