"""A monitor's incidents, as GET /monitors/{id}/incidents reads them (shared/api/routes/history.py): the periods
during which its aggregated status was down or degraded, from status_changes, in SQL (gaps and islands).

What counts:
- An incident opens at a change into down or degraded from any other status, and stays open through changes
  between down and degraded (its status is the worst it reached). It ends at the first change to anything
  else: in practice up, since aggregate writes no other change out of down or degraded (pending is only a
  new monitor's status, unknown only follows pending, and a set-aside monitor's error is not a status change).
- Pending and unknown periods are not incidents: no location has reported on the target yet.
- Pausing records no status change, and a paused monitor keeps the status it had: an incident open when the
  monitor was paused stays open (ongoing) until a run after resuming changes the status. The time paused
  counts, as nothing says the target recovered meanwhile.
- Times are status_changes.changed_at: when aggregate applied the run that changed the status.

An incident is listed when any part of it falls in the last `days` (it may have started before them); its
startedAt is always its real start. Only the changes from the last end before the window on are read, through
the (monitor_id, changed_at) index, so a long history costs nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from shared import db
from shared.api.requests import IncidentsQuery
from shared.api.schemas import IncidentOut, IncidentPage, Pagination
from shared.api.services.monitors import get_monitor

INCIDENT_STATUSES = ("down", "degraded")

_INCIDENTS = """
with boundary as (
    -- the last change out of an incident (or into a non-incident status) before the window: no incident
    -- listed can have started before it
    select coalesce(max(changed_at), '-infinity'::timestamptz) as at
    from (select changed_at from status_changes
          where monitor_id = %(monitor_id)s and changed_at < %(since)s
            and not (to_status = any(%(incident)s))
          order by changed_at desc limit 1) last_end
),
changes as (
    select s.id, s.run_id, s.changed_at, s.to_status,
           s.to_status = any(%(incident)s) as is_incident,
           s.from_status = any(%(incident)s) as was_incident
    from status_changes s, boundary b
    where s.monitor_id = %(monitor_id)s and s.changed_at >= b.at
),
numbered as (
    -- every change into an incident from outside one opens the next incident; the changes after it (within
    -- it, and the one that ends it) share its number
    select *, count(*) filter (where is_incident and not was_incident)
                  over (order by changed_at, id) as incident
    from changes
),
incidents as (
    select incident,
           min(changed_at) filter (where is_incident and not was_incident) as started_at,
           min(changed_at) filter (where was_incident and not is_incident) as ended_at,
           (array_agg(run_id order by changed_at, id) filter (where is_incident and not was_incident))[1]
               as run_id,
           case when bool_or(to_status = 'down') then 'down' else 'degraded' end as status
    from numbered
    where incident > 0 and (is_incident or was_incident)
    group by incident
),
listed as (
    select status, started_at, ended_at, run_id,
           extract(epoch from coalesce(ended_at, %(now)s) - started_at)::float8 as duration_seconds
    from incidents
    where started_at is not null and (ended_at is null or ended_at >= %(since)s)
)
-- one row even past the last page, so the total always comes back
select t.total, page.*
from (select count(*) as total from listed) t
left join lateral (
    select * from listed order by started_at desc limit %(limit)s offset %(offset)s
) page on true
order by page.started_at desc
"""


async def incident_page(
    project_id: uuid.UUID, monitor_id: uuid.UUID, query: IncidentsQuery, now: datetime | None = None
) -> IncidentPage:
    await get_monitor(project_id, monitor_id)
    now = now or datetime.now(UTC)
    since = now - timedelta(days=query.days)
    params = {
        "monitor_id": monitor_id,
        "since": since,
        "now": now,
        "incident": list(INCIDENT_STATUSES),
        "limit": query.limit,
        "offset": (query.page - 1) * query.limit,
    }
    async with db.transaction() as conn:
        rows = await (await conn.execute(_INCIDENTS, params)).fetchall()
    total = rows[0]["total"]
    rows = [row for row in rows if row["started_at"] is not None]
    return IncidentPage(
        since=since,
        data=[
            IncidentOut(
                status=row["status"],
                started_at=row["started_at"],
                ended_at=row["ended_at"],
                duration_seconds=row["duration_seconds"],
                run_id=row["run_id"],
            )
            for row in rows
        ],
        pagination=Pagination.of(query.page, query.limit, total),
    )
