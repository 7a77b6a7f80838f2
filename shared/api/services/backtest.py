"""The alert policy backtest (POST /monitors/{id}/alert-policy/backtest): a monitor's stored runs of the last days
read in two statements, replayed by shared/rules/alert_replay.py, beside what was actually sent. Reads only."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

from shared import db
from shared.api.requests import AlertPolicyBacktest
from shared.api.schemas import BacktestAlert, BacktestReply
from shared.api.services.monitors import get_monitor
from shared.models import FAILED_STATUSES
from shared.pipeline.alert_inputs import alert_policies, ssl_details, wants_ssl
from shared.rules.alert_replay import ReplayedAlert, StoredRun, replay
from shared.rules.alerts import SslFacts

_STORED_RUNS = """
select r.id, r.scheduled_at, r.finalized_at, r.status, cardinality(r.expected_locations) as locations_total,
       coalesce(array_agg(res.location order by res.location)
                filter (where res.status = any(%(failed)s)), '{}') as failing,
       (array_agg(res.message order by res.checked_at desc, res.location)
          filter (where res.status = any(%(failed)s) and res.message <> ''))[1] as last_error
from runs r
left join monitor_results res on res.run_id = r.id
where r.monitor_id = %(monitor)s and r.finalized_at is not null and r.scheduled_at >= %(since)s
group by r.id
"""

# One entry per alert event that reached at least one provider (alert_history holds one row per provider).
_SENT = """
select e.run_id, r.finalized_at as time, e.kind, coalesce(e.payload ->> 'reason', '') as reason
from alert_events e
join runs r on r.id = e.run_id
where e.monitor_id = %(monitor)s and r.scheduled_at >= %(since)s
  and exists (select 1 from alert_history h where h.alert_event_id = e.id and h.status in ('sent', 'partial'))
order by r.finalized_at, e.created_at, e.kind
"""


async def backtest(project_id: uuid.UUID, monitor_id: uuid.UUID, body: AlertPolicyBacktest) -> BacktestReply:
    monitor = await get_monitor(project_id, monitor_id)
    now = datetime.now(UTC)
    since = now - timedelta(days=body.days)
    candidate = {
        **monitor,
        "alert_config": json.dumps(body.alert_config.model_dump(by_alias=True, mode="json")),
    }
    params = {"monitor": monitor_id, "since": since, "failed": list(FAILED_STATUSES)}
    async with db.transaction() as conn:
        rows = await (await conn.execute(_STORED_RUNS, params)).fetchall()
        policies, _ = await alert_policies(conn, [candidate], since, now)
        policy = policies[monitor_id]
        certificates = await ssl_details(conn, [row["id"] for row in rows]) if wants_ssl(policy) else {}
        sent = await (await conn.execute(_SENT, params)).fetchall()
    runs = [_stored_run(row, certificates.get(row["id"], ())) for row in rows]
    alerts, _ = replay(runs, policy)
    return BacktestReply(
        alerts=[_out(alert) for alert in alerts if alert.suppressed_reason is None],
        suppressed=[_out(alert) for alert in alerts if alert.suppressed_reason is not None],
        sent=[
            BacktestAlert(run_id=r["run_id"], time=r["time"], kind=r["kind"], reason=r["reason"])
            for r in sent
        ],
        runs=len(runs),
    )


def _stored_run(row: dict, certificates) -> StoredRun:
    return StoredRun(
        row["id"],
        row["scheduled_at"],
        row["finalized_at"],
        row["status"] or "unknown",
        tuple(row["failing"]),
        row["locations_total"] or 0,
        row["last_error"],
        SslFacts.worst_of(certificates),
    )


def _out(alert: ReplayedAlert) -> BacktestAlert:
    return BacktestAlert(run_id=alert.run_id, time=alert.time, kind=alert.kind, reason=alert.reason)
