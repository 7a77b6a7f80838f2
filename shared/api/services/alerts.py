"""Alert history as the API reads it (GET /alerts and GET /monitors/{id}/alerts in shared/api/routes/history.py):
alert_history rows of one project's monitors, newest first, with their monitor and provider named.

Scoped through monitors.project_id (alert_history has no project column; its monitor_id is indexed with
created_at). Error texts and recipients' outcomes are masked again on read (shared.security.masked_text)."""

from __future__ import annotations

import uuid

from shared import db
from shared.api.requests import AlertHistoryQuery, MonitorAlertsQuery
from shared.api.schemas import AlertOut, AlertPage, Pagination
from shared.api.services.monitors import get_monitor
from shared.security import masked_text

# A delivery's provider always exists (foreign key, on delete cascade): the count needs no join to it.
_SCOPED = "from alert_history a join monitors m on m.id = a.monitor_id"


def alert_out(row: dict) -> AlertOut:
    recipients = row["recipients"]
    return AlertOut(
        id=row["id"],
        monitor_id=row["monitor_id"],
        monitor_name=row["monitor_name"],
        run_id=row["run_id"],
        provider_id=row["provider_id"],
        provider_name=row["provider_name"],
        provider_type=row["provider_type"],
        kind=row["kind"],
        status=row["status"],
        attempts=row["attempts"],
        title=row["title"],
        reason=row["reason"],
        alert_reason=row["alert_reason"],
        error=masked_text(row["error"]),
        recipients={str(address): masked_text(str(outcome)) or "" for address, outcome in recipients.items()}
        if isinstance(recipients, dict)
        else None,
        created_at=row["created_at"],
        claimed_at=row["claimed_at"],
        sent_at=row["sent_at"],
    )


def _conditions(project_id: uuid.UUID, query: AlertHistoryQuery) -> tuple[str, list]:
    conditions, params = ["m.project_id = %s"], [project_id]
    for column, value in (
        ("a.monitor_id = %s", query.monitor_id),
        ("a.status = %s", query.status),
        ("a.kind = %s", query.kind),
        ("a.created_at >= %s", query.created_from),
        ("a.created_at <= %s", query.created_to),
    ):
        if value is not None:
            conditions.append(column)
            params.append(value)
    return " and ".join(conditions), params


async def alert_page(project_id: uuid.UUID, query: AlertHistoryQuery) -> AlertPage:
    where, params = _conditions(project_id, query)
    async with db.transaction() as conn:
        total = (
            await (await conn.execute(f"select count(*) as n {_SCOPED} where {where}", params)).fetchone()
        )["n"]
        rows = await (
            await conn.execute(
                f"""select a.id, a.monitor_id, m.name as monitor_name, a.run_id, a.provider_id,
                           p.name as provider_name, p.type as provider_type, a.kind, a.status, a.attempts,
                           a.title, a.reason, a.error, a.recipients, a.created_at, a.claimed_at, a.sent_at,
                           e.payload ->> 'reason' as alert_reason
                    {_SCOPED} join notification_providers p on p.id = a.provider_id
                    left join alert_events e on e.id = a.alert_event_id where {where}
                    order by a.created_at desc, a.id desc limit %s offset %s""",
                [*params, query.limit, (query.page - 1) * query.limit],
            )
        ).fetchall()
    return AlertPage(
        data=[alert_out(row) for row in rows], pagination=Pagination.of(query.page, query.limit, total)
    )


async def monitor_alert_page(
    project_id: uuid.UUID, monitor_id: uuid.UUID, query: MonitorAlertsQuery
) -> AlertPage:
    """One monitor's alerts; a monitor of another project (or none) is 404, as on every monitor endpoint."""
    await get_monitor(project_id, monitor_id)
    return await alert_page(project_id, AlertHistoryQuery(**dict(query), monitor_id=monitor_id))
