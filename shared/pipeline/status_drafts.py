"""Automatic draft incidents, written by aggregate in the transaction that records the status changes: read the
pages of the monitors that went down or recovered, decide (shared.rules.status_drafts), and write the plans in
a fixed handful of set-based statements (none at all for a batch whose monitors stayed out of down, one for a
batch whose monitors are on no page).

Exactly once: only status changes this transaction inserted reach here (their insert is ON CONFLICT (run_id) DO
NOTHING, behind the runs' compare-and-set on finalized_at), so a redelivered finalize writes nothing twice. A
draft is upserted on the open-draft index, so two batches opening one for the same page end with one draft."""

from __future__ import annotations

import uuid
from datetime import datetime

from psycopg import AsyncConnection

from shared.rules.status_drafts import (
    DRAFT_STATUS,
    IMPACTS,
    MonitorChange,
    OpenDraft,
    PageFacts,
    plan_drafts,
)

# Two batches with monitors on one page take turns, in page order (no deadlock between them): the second reads
# the page only once the first has committed, so it sees that batch's monitors down and its draft open, and the
# impact it computes counts both. A separate statement from the read, which then takes a fresh snapshot.
_LOCK_PAGES = """
select id from status_pages
where id in (select status_page_id from status_page_monitors where monitor_id = any(%s))
order by id
for no key update
"""

# Read after the batch advanced its monitors, so a page's down monitors include this batch's.
_PAGES_OF_MONITORS = """
select p.id as page_id, p.project_id,
       array_agg(spm.monitor_id) as monitor_ids,
       coalesce(array_agg(spm.monitor_id) filter (where m.status = 'down'), '{}') as down_monitor_ids,
       d.id as draft_id, d.impact as draft_impact, d.monitor_ids as draft_monitor_ids
from status_pages p
join status_page_monitors spm on spm.status_page_id = p.id
join monitors m on m.id = spm.monitor_id
left join lateral (
    select i.id, i.impact, array(select im.monitor_id from incident_monitors im where im.incident_id = i.id)
               as monitor_ids
    from incidents i where i.status_page_id = p.id and i.is_draft and i.resolved_at is null
) d on true
where p.id = any(%s)
group by p.id, d.id, d.impact, d.monitor_ids
"""

# One row per page, in page order. A conflict is a draft already open on the page (perhaps opened by a
# concurrent batch since the read): it is extended, its title kept and its impact only ever raised.
_UPSERT_DRAFTS = """
insert into incidents (project_id, status_page_id, title, status, impact, is_draft, opened_by_run_id,
                       created_at, updated_at)
select d.project_id, d.page_id, d.title, %(status)s, d.impact, true, d.run_id, %(now)s, %(now)s
from unnest(%(projects)s::uuid[], %(pages)s::uuid[], %(titles)s::text[], %(impacts)s::text[], %(runs)s::uuid[])
        as d(project_id, page_id, title, impact, run_id)
on conflict (status_page_id) where is_draft and resolved_at is null do update
set updated_at = excluded.updated_at,
    impact = case when array_position(%(order)s::text[], excluded.impact)
                       > array_position(%(order)s::text[], incidents.impact)
                  then excluded.impact else incidents.impact end
returning id, status_page_id
"""

_ADD_MONITORS = """
insert into incident_monitors (incident_id, monitor_id)
select * from unnest(%s::uuid[], %s::uuid[])
on conflict do nothing
"""

# Each entry takes the incident's status as it stands (a draft an operator moved on keeps its status).
_APPEND_NOTES = """
insert into incident_updates (incident_id, status, message, created_at)
select u.incident_id, i.status, u.message, %s
from unnest(%s::uuid[], %s::text[]) with ordinality as u(incident_id, message, n)
join incidents i on i.id = u.incident_id
order by u.n
"""


def _facts(row: dict) -> PageFacts:
    draft = None
    if row["draft_id"] is not None:
        draft = OpenDraft(row["draft_id"], frozenset(row["draft_monitor_ids"]), row["draft_impact"])
    return PageFacts(
        row["page_id"],
        row["project_id"],
        frozenset(row["monitor_ids"]),
        frozenset(row["down_monitor_ids"]),
        draft,
    )


async def follow_status_changes(conn: AsyncConnection, changes: list[MonitorChange], now: datetime) -> None:
    """Opens or extends the draft of every page a monitor that went down is on; notes recoveries on drafts."""
    if not changes:
        return
    monitor_ids = sorted({change.monitor_id for change in changes}, key=str)
    locked = await (await conn.execute(_LOCK_PAGES, (monitor_ids,))).fetchall()
    if not locked:
        return  # none of these monitors is on a page
    rows = await (await conn.execute(_PAGES_OF_MONITORS, ([row["id"] for row in locked],))).fetchall()
    plans = plan_drafts(changes, {row["page_id"]: _facts(row) for row in rows})
    if not plans:
        return
    incident_of: dict[uuid.UUID, uuid.UUID | None] = {plan.page_id: plan.incident_id for plan in plans}
    drafts = [plan for plan in plans if plan.writes_draft]
    if drafts:
        written = await (
            await conn.execute(
                _UPSERT_DRAFTS,
                {
                    "status": DRAFT_STATUS,
                    "now": now,
                    "order": list(IMPACTS),
                    "projects": [plan.project_id for plan in drafts],
                    "pages": [plan.page_id for plan in drafts],
                    "titles": [plan.title for plan in drafts],
                    "impacts": [plan.impact for plan in drafts],
                    "runs": [plan.opened_by_run_id for plan in drafts],
                },
            )
        ).fetchall()
        incident_of.update({row["status_page_id"]: row["id"] for row in written})
    additions = [(incident_of[plan.page_id], m) for plan in drafts for m in plan.add_monitor_ids]
    if additions:
        await conn.execute(_ADD_MONITORS, tuple(map(list, zip(*additions, strict=True))))
    notes = [(incident_of[plan.page_id], note) for plan in plans for note in plan.notes]
    await conn.execute(_APPEND_NOTES, (now, *map(list, zip(*notes, strict=True))))
