"""Incidents on status pages as the API stores them (the "incidents" endpoints in shared/api/routes/incidents.py):
opened by hand, or as drafts by aggregate (shared/pipeline/status_drafts.py) for an operator to publish. Each has
an append-only timeline; every message is Markdown, answered beside its sanitised HTML (shared.rules.markdown).

(A monitor's own incidents, its down periods, are shared/api/services/incidents.py's.)"""

from __future__ import annotations

import uuid

from psycopg import AsyncConnection
from psycopg.errors import UniqueViolation

from shared import audit, db
from shared.api.requests import (
    StatusIncidentCreate,
    StatusIncidentListQuery,
    StatusIncidentPatch,
    StatusIncidentUpdateCreate,
)
from shared.api.schemas import (
    Pagination,
    StatusIncidentOut,
    StatusIncidentPage,
    StatusIncidentSummary,
    StatusIncidentUpdateOut,
)
from shared.errors import ApiError
from shared.rules.markdown import render_markdown

# An incident with its monitors and its latest timeline entry's message.
_SUMMARY = """
select i.id, i.project_id, i.status_page_id, i.title, i.status, i.impact, i.is_draft, i.opened_by_run_id,
       i.created_at, i.updated_at, i.published_at, i.resolved_at,
       array(select im.monitor_id from incident_monitors im where im.incident_id = i.id order by im.monitor_id)
           as monitor_ids,
       coalesce((select u.message from incident_updates u where u.incident_id = i.id order by u.id desc limit 1), '')
           as message
from incidents i
"""


def incident_not_found() -> ApiError:
    return ApiError(404, "not_found", "incident not found")


def _summary(row: dict) -> StatusIncidentSummary:
    return StatusIncidentSummary(**row, message_html=render_markdown(row["message"]))


async def _require_page(conn: AsyncConnection, project_id: uuid.UUID, page_id: uuid.UUID) -> None:
    found = await (
        await conn.execute(
            "select 1 from status_pages where id = %s and project_id = %s", (page_id, project_id)
        )
    ).fetchone()
    if found is None:
        raise ApiError(400, "validation_error", f"statusPageId: no status page {page_id}", "statusPageId")


async def _require_on_page(conn: AsyncConnection, page_id: uuid.UUID, monitor_ids: list[uuid.UUID]) -> None:
    """An incident names only monitors its page shows (so only monitors of the caller's project)."""
    if not monitor_ids:
        return
    rows = await (
        await conn.execute(
            "select monitor_id from status_page_monitors where status_page_id = %s and monitor_id = any(%s)",
            (page_id, monitor_ids),
        )
    ).fetchall()
    on_page = {row["monitor_id"] for row in rows}
    for i, monitor_id in enumerate(monitor_ids):
        if monitor_id not in on_page:
            field = f"monitorIds.{i}"
            raise ApiError(
                400,
                "validation_error",
                f"{field}: monitor {monitor_id} is not on status page {page_id}",
                field,
            )


async def _set_monitors(conn: AsyncConnection, incident_id: uuid.UUID, monitor_ids: list[uuid.UUID]) -> None:
    await conn.execute("delete from incident_monitors where incident_id = %s", (incident_id,))
    await conn.execute(
        """insert into incident_monitors (incident_id, monitor_id) select %s, m from unnest(%s::uuid[]) m
           on conflict do nothing""",
        (incident_id, list(dict.fromkeys(monitor_ids))),
    )


async def _append(conn: AsyncConnection, incident_id: uuid.UUID, status: str, message: str) -> None:
    await conn.execute(
        "insert into incident_updates (incident_id, status, message) values (%s, %s, %s)",
        (incident_id, status, message),
    )


async def _fetch(
    conn: AsyncConnection, project_id: uuid.UUID, incident_id: uuid.UUID, lock: bool = False
) -> StatusIncidentOut:
    row = await (
        await conn.execute(
            f"{_SUMMARY} where i.id = %s and i.project_id = %s {'for update of i' if lock else ''}",
            (incident_id, project_id),
        )
    ).fetchone()
    if row is None:
        raise incident_not_found()
    updates = await (
        await conn.execute(
            "select id, status, message, created_at from incident_updates where incident_id = %s order by id",
            (incident_id,),
        )
    ).fetchall()
    return StatusIncidentOut(
        **_summary(row).model_dump(),
        updates=[StatusIncidentUpdateOut(**u, message_html=render_markdown(u["message"])) for u in updates],
    )


async def create_incident(
    project_id: uuid.UUID, api_key_id: uuid.UUID | None, spec: StatusIncidentCreate
) -> StatusIncidentOut:
    async with db.transaction() as conn:
        await _require_page(conn, project_id, spec.status_page_id)
        await _require_on_page(conn, spec.status_page_id, spec.monitor_ids)
        row = await (
            await conn.execute(
                """insert into incidents (project_id, status_page_id, title, status, impact, is_draft, published_at,
                                          resolved_at)
                   values (%s, %s, %s, %s, %s, false, now(), case when %s = 'resolved' then now() end)
                   returning id""",
                (project_id, spec.status_page_id, spec.title, spec.status, spec.impact, spec.status),
            )
        ).fetchone()
        await _set_monitors(conn, row["id"], spec.monitor_ids)
        await _append(conn, row["id"], spec.status, spec.message)
        await audit.record(
            conn,
            project_id,
            api_key_id,
            "incident.create",
            "incident",
            row["id"],
            spec.model_dump(mode="json", by_alias=True),
        )
        return await _fetch(conn, project_id, row["id"])


async def get_incident(project_id: uuid.UUID, incident_id: uuid.UUID) -> StatusIncidentOut:
    async with db.transaction() as conn:
        return await _fetch(conn, project_id, incident_id)


async def list_incidents(project_id: uuid.UUID, query: StatusIncidentListQuery) -> StatusIncidentPage:
    conditions, params = ["i.project_id = %(project_id)s"], {"project_id": project_id}
    if query.status_page_id is not None:
        conditions.append("i.status_page_id = %(page_id)s")
        params["page_id"] = query.status_page_id
    if query.status is not None:
        conditions.append("i.status = %(status)s")
        params["status"] = query.status
    if query.draft is not None:
        conditions.append("i.is_draft = %(draft)s")
        params["draft"] = query.draft
    where = " and ".join(conditions)
    async with db.transaction() as conn:
        total = (
            await (
                await conn.execute(f"select count(*) as n from incidents i where {where}", params)
            ).fetchone()
        )["n"]
        rows = await (
            await conn.execute(
                f"{_SUMMARY} where {where} order by i.created_at desc, i.id limit %(limit)s offset %(offset)s",
                {**params, "limit": query.limit, "offset": (query.page - 1) * query.limit},
            )
        ).fetchall()
    return StatusIncidentPage(
        data=[_summary(row) for row in rows], pagination=Pagination.of(query.page, query.limit, total)
    )


async def add_update(
    project_id: uuid.UUID,
    api_key_id: uuid.UUID | None,
    incident_id: uuid.UUID,
    spec: StatusIncidentUpdateCreate,
) -> StatusIncidentOut:
    """Appends to the timeline and moves the incident to the update's status: resolved sets resolvedAt, any
    other status after it reopens the incident."""
    try:
        async with db.transaction() as conn:
            await _fetch(conn, project_id, incident_id, lock=True)
            await conn.execute(
                """update incidents set status = %s, updated_at = now(),
                       resolved_at = case when %s = 'resolved' then coalesce(resolved_at, now()) end
                   where id = %s""",
                (spec.status, spec.status, incident_id),
            )
            await _append(conn, incident_id, spec.status, spec.message)
            await audit.record(
                conn,
                project_id,
                api_key_id,
                "incident.update",
                "incident",
                incident_id,
                spec.model_dump(mode="json", by_alias=True),
            )
            return await _fetch(conn, project_id, incident_id)
    except UniqueViolation:
        # reopening a resolved draft while aggregate has opened another on the page (incidents_one_open_draft)
        raise ApiError(
            409,
            "conflict",
            "status: another draft is open on this page; publish or delete one of them",
            "status",
        ) from None


async def patch_incident(
    project_id: uuid.UUID, api_key_id: uuid.UUID | None, incident_id: uuid.UUID, patch: StatusIncidentPatch
) -> StatusIncidentOut:
    async with db.transaction() as conn:
        current = await _fetch(conn, project_id, incident_id, lock=True)
        if patch.monitor_ids is not None:
            await _require_on_page(conn, current.status_page_id, patch.monitor_ids)
            await _set_monitors(conn, incident_id, patch.monitor_ids)
        await conn.execute(
            "update incidents set title = coalesce(%s, title), impact = coalesce(%s, impact), updated_at = now() "
            "where id = %s",
            (patch.title, patch.impact, incident_id),
        )
        await audit.record(
            conn,
            project_id,
            api_key_id,
            "incident.change",
            "incident",
            incident_id,
            patch.model_dump(mode="json", by_alias=True, exclude_unset=True),
        )
        return await _fetch(conn, project_id, incident_id)


async def publish_incident(
    project_id: uuid.UUID, api_key_id: uuid.UUID | None, incident_id: uuid.UUID
) -> StatusIncidentOut:
    """A draft becomes public (compare-and-set on is_draft); publishing a published incident changes nothing."""
    async with db.transaction() as conn:
        published = await (
            await conn.execute(
                """update incidents set is_draft = false, published_at = now(), updated_at = now()
                   where id = %s and project_id = %s and is_draft returning id""",
                (incident_id, project_id),
            )
        ).fetchone()
        if published is not None:
            await audit.record(conn, project_id, api_key_id, "incident.publish", "incident", incident_id)
        return await _fetch(conn, project_id, incident_id)


async def delete_incident(
    project_id: uuid.UUID, api_key_id: uuid.UUID | None, incident_id: uuid.UUID
) -> None:
    async with db.transaction() as conn:
        row = await (
            await conn.execute(
                "delete from incidents where id = %s and project_id = %s returning title",
                (incident_id, project_id),
            )
        ).fetchone()
        if row is None:
            raise incident_not_found()
        await audit.record(
            conn, project_id, api_key_id, "incident.delete", "incident", incident_id, {"title": row["title"]}
        )
