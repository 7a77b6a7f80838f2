"""Monitors as the API stores and reads them (the "monitors" endpoints in shared/api/routes/monitors.py; always
scoped to one project). Their results and runs are shared/api/services/results.py's."""

from __future__ import annotations

import uuid
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from shared import audit, db
from shared.api.requests import MonitorCreate, MonitorFilterQuery, MonitorListQuery, PageQuery
from shared.api.schemas import (
    HeartbeatPingOut,
    HeartbeatPingPage,
    MonitorCounts,
    MonitorListItem,
    MonitorListPage,
    MonitorOut,
    Pagination,
    RunSummary,
    StatusCounts,
)
from shared.checks import HEARTBEAT_TYPE
from shared.errors import ApiError
from shared.heartbeats import store as heartbeats
from shared.heartbeats.tokens import ping_url, tokens_retired
from shared.rules.first_runs import first_run_offsets
from shared.security import mask_secrets, mask_target

# Fields whose change alters what is checked, so an update triggers an immediate run.
CHECK_DEFINING_FIELDS = ("type", "target", "config", "location_config")

_MONITOR_COLUMNS = """m.*, r.id as run_id, r.status as run_status, r.is_partial as run_is_partial,
    r.scheduled_at as run_scheduled_at, r.finalized_at as run_finalized_at, r.missing_locations as run_missing,
    h.token_encrypted as heartbeat_token"""
# a heartbeat's token, sealed: its pingUrl
_MONITOR_JOINS = "left join runs r on r.id = m.last_run_id left join heartbeats h on h.monitor_id = m.id"


def monitor_out(row: dict, model: type[MonitorOut] = MonitorOut) -> MonitorOut:
    last_run = None
    if row.get("run_id"):
        last_run = RunSummary(
            id=row["run_id"],
            status=row["run_status"],
            is_partial=row["run_is_partial"],
            scheduled_at=row["run_scheduled_at"],
            finalized_at=row["run_finalized_at"],
            missing_locations=row["run_missing"],
        )
    heartbeat = row["type"] == HEARTBEAT_TYPE
    sealed_token = row.get("heartbeat_token")
    return model(
        id=row["id"],
        project_id=row["project_id"],
        name=row["name"],
        type=row["type"],
        # credentials a stored target carries are never shown; a heartbeat has none
        target=None if heartbeat else mask_target(row["target"]),
        ping_url=ping_url(sealed_token, row["project_id"]) if heartbeat and sealed_token else None,
        frequency_minutes=row["frequency_minutes"],
        enabled=row["enabled"],
        config=mask_secrets(row["config"], row["project_id"], ("config",)),
        location_config=_as_stored(row["location_config"]),
        alert_config=_as_stored(row["alert_config"]),
        tags=row["tags"],
        status=row["status"],
        status_reason=row.get("status_reason"),
        is_flapping=(row.get("alert_state") or {}).get("is_flapping") is True,
        next_run_at=row["next_run_at"],
        last_check_at=row["last_check_at"],
        last_run=last_run,
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _as_stored(value: Any) -> dict:
    """A stored JSON object shown as it is; anything else (a row edited by hand) under "invalid"."""
    return value if isinstance(value, dict) else {"invalid": value}


def spec_of(row: dict) -> dict[str, Any]:
    """A stored monitor as the body that would create it (used to apply partial updates)."""
    return {
        "name": row["name"],
        "type": row["type"],
        "target": row["target"] or None,  # a heartbeat's is empty
        "config": row["config"],
        "frequencyMinutes": row["frequency_minutes"],
        "enabled": row["enabled"],
        "locationConfig": row["location_config"],
        "alertConfig": row["alert_config"],
        "tags": row["tags"],
    }


async def _require_references(
    conn: AsyncConnection, project_id: uuid.UUID, specs: list[MonitorCreate]
) -> None:
    """Everything the monitors point at must belong to their own project, and their locations must exist; the
    first that does not is named (by its index, for a batch of more than one). One query per kind for a batch."""
    await _require_providers(conn, project_id, specs)
    await _require_locations(conn, specs)
    await _require_synthetic_tests(conn, project_id, specs)


def _where(specs: list[MonitorCreate], index: int, field: str) -> str:
    """A field of one monitor of the request: as is for a single body, `[index].field` within a batch."""
    return field if len(specs) == 1 else f"[{index}].{field}"


async def _require_synthetic_tests(
    conn: AsyncConnection, project_id: uuid.UUID, specs: list[MonitorCreate]
) -> None:
    named = [spec.target for spec in specs if spec.type == "synthetic_test"]  # the target is the test's id
    if not named:
        return
    rows = await (
        await conn.execute(
            "select id::text as id from synthetic_tests where id::text = any(%s) and project_id = %s",
            (named, project_id),
        )
    ).fetchall()
    found = {row["id"] for row in rows}
    for index, spec in enumerate(specs):
        if spec.type == "synthetic_test" and spec.target not in found:
            field = _where(specs, index, "target")
            raise ApiError(400, "validation_error", f"{field}: no synthetic test {spec.target}", field)


async def _require_locations(conn: AsyncConnection, specs: list[MonitorCreate]) -> None:
    """A location no region serves is refused, not quietly run elsewhere (schedule dead-letters its jobs)."""
    if not any(spec.location_config.locations for spec in specs):
        return
    rows = await (await conn.execute("select code from regions where active order by code")).fetchall()
    known = [row["code"] for row in rows]
    for index, spec in enumerate(specs):
        unknown = [location for location in spec.location_config.locations if location not in known]
        if unknown:
            field = _where(specs, index, "locationConfig.locations")
            raise ApiError(
                400,
                "validation_error",
                f"{field}: unknown location '{unknown[0]}'; expected any of: {', '.join(known)}",
                field,
            )


async def _require_providers(
    conn: AsyncConnection, project_id: uuid.UUID, specs: list[MonitorCreate]
) -> None:
    wanted = {provider for spec in specs for provider in spec.alert_config.notification_providers}
    if not wanted:
        return
    rows = await (
        await conn.execute(
            "select id from notification_providers where project_id = %s and id = any(%s)",
            (project_id, list(wanted)),
        )
    ).fetchall()
    found = {row["id"] for row in rows}
    for index, spec in enumerate(specs):
        missing = sorted(str(p) for p in set(spec.alert_config.notification_providers) - found)
        if missing:
            field = _where(specs, index, "alertConfig.notificationProviders")
            raise ApiError(400, "validation_error", f"{field}: no provider {missing[0]}", field)


def _columns(spec: MonitorCreate) -> tuple:
    return (
        spec.name,
        spec.type,
        spec.stored_target,
        Jsonb(spec.config),
        spec.frequency_minutes,
        spec.enabled,
        Jsonb(spec.location_config.model_dump(by_alias=True)),
        Jsonb(spec.alert_config.model_dump(by_alias=True, mode="json")),
        spec.tags,
    )


# A batch is inserted from one JSON array: one statement and one parameter, whatever its size.
_INSERT_MONITORS = """
insert into monitors (id, name, type, target, config, frequency_minutes, enabled, location_config, alert_config,
                      tags, project_id, next_run_at)
select m.id, m.name, m.type, m.target, m.config, m.frequency_minutes, m.enabled, m.location_config,
    m.alert_config, array(select jsonb_array_elements_text(m.tags)), %(project)s,
    case when m.scheduled then now() + make_interval(secs => m.first_run_after) end
from jsonb_to_recordset(%(monitors)s) as m(
    id uuid, name text, type text, target text, config jsonb, frequency_minutes int, enabled bool,
    location_config jsonb, alert_config jsonb, tags jsonb, scheduled bool, first_run_after float8)
returning *
"""

_INSERT_AUDIT = """
insert into audit_log (project_id, api_key_id, action, object_type, object_id, changes)
select %(project)s, %(key)s, 'monitor.create', 'monitor', e.id, e.changes
from jsonb_to_recordset(%(entries)s) as e(id text, changes jsonb)
"""


def _stored(spec: MonitorCreate, monitor_id: uuid.UUID, first_run_after: float) -> dict:
    return {
        "id": str(monitor_id),
        "name": spec.name,
        "type": spec.type,
        "target": spec.stored_target,
        "config": spec.config,
        "frequency_minutes": spec.frequency_minutes,
        "enabled": spec.enabled,
        "location_config": spec.location_config.model_dump(by_alias=True),
        "alert_config": spec.alert_config.model_dump(by_alias=True, mode="json"),
        "tags": spec.tags,
        "scheduled": _scheduled(spec),
        "first_run_after": first_run_after,
    }


async def create_monitors(
    project_id: uuid.UUID, api_key_id: uuid.UUID | None, specs: list[MonitorCreate]
) -> list[dict]:
    """Creates every monitor or none (one transaction), in the given order; their first runs are spread over
    their frequency (shared/rules/first_runs.py), so a large batch joins the schedule without a burst."""
    ids = [uuid.uuid4() for _ in specs]
    offsets = first_run_offsets([spec.frequency_minutes for spec in specs])
    stored = [_stored(spec, ids[i], offsets[i]) for i, spec in enumerate(specs)]
    audit_entries = [
        {"id": str(ids[i]), "changes": mask_secrets(spec.model_dump(mode="json", by_alias=True), project_id)}
        for i, spec in enumerate(specs)
    ]
    async with db.transaction() as conn:
        await _require_references(conn, project_id, specs)
        rows = await (
            await conn.execute(_INSERT_MONITORS, {"project": project_id, "monitors": Jsonb(stored)})
        ).fetchall()
        for row in rows:
            if row["type"] == HEARTBEAT_TYPE:  # its ping token; other new monitors have nothing to clear
                await heartbeats.after_save(conn, row)
        await conn.execute(
            _INSERT_AUDIT, {"project": project_id, "key": api_key_id, "entries": Jsonb(audit_entries)}
        )
    by_id = {row["id"]: row for row in rows}
    return [by_id[monitor_id] for monitor_id in ids]


async def create_monitor(project_id: uuid.UUID, api_key_id: uuid.UUID | None, spec: MonitorCreate) -> dict:
    return (await create_monitors(project_id, api_key_id, [spec]))[0]


async def _fetch(
    conn: AsyncConnection, project_id: uuid.UUID, monitor_id: uuid.UUID, lock: bool = False
) -> dict:
    row = await (
        await conn.execute(
            f"""select {_MONITOR_COLUMNS} from monitors m {_MONITOR_JOINS}
                where m.id = %s and m.project_id = %s {"for update of m" if lock else ""}""",
            (monitor_id, project_id),
        )
    ).fetchone()
    if row is None:
        raise ApiError(404, "not_found", "monitor not found")
    return row


async def get_monitor(project_id: uuid.UUID, monitor_id: uuid.UUID) -> dict:
    async with db.transaction() as conn:
        return await _fetch(conn, project_id, monitor_id)


async def update_monitor(
    project_id: uuid.UUID, api_key_id: uuid.UUID | None, monitor_id: uuid.UUID, spec: MonitorCreate
) -> tuple[dict, bool]:
    """Replaces a monitor's definition; returns the row and whether what is checked changed."""
    async with db.transaction() as conn:
        before = await _fetch(conn, project_id, monitor_id, lock=True)
        await _require_references(conn, project_id, [spec])
        row = await (
            await conn.execute(
                """update monitors set name = %s, type = %s, target = %s, config = %s, frequency_minutes = %s,
                       enabled = %s, location_config = %s, alert_config = %s, tags = %s, updated_at = now(),
                       next_run_at = case when not %s then null
                                          when %s and next_run_at is null then now() else next_run_at end,
                       -- a monitor set aside (status error) is valid again once saved: back in the schedule
                       status = case when status = 'error' then 'pending' else status end, status_reason = null
                   where id = %s returning *""",
                (*_columns(spec), spec.type != HEARTBEAT_TYPE, _scheduled(spec), monitor_id),
            )
        ).fetchone()
        await heartbeats.after_save(conn, row)
        after = spec_of(row)
        changed = {key: after[key] for key, value in spec_of(before).items() if after[key] != value}
        await audit.record(conn, project_id, api_key_id, "monitor.update", "monitor", monitor_id, changed)
    if before["type"] == HEARTBEAT_TYPE and row["type"] != HEARTBEAT_TYPE:
        await tokens_retired()
    redefined = any(before[field] != row[field] for field in CHECK_DEFINING_FIELDS)
    return await get_monitor(project_id, monitor_id), redefined and _scheduled(spec)


def _scheduled(spec: MonitorCreate) -> bool:
    """Whether schedule runs the monitor: enabled, and checked (a heartbeat's job pings in instead)."""
    return spec.enabled and spec.type != HEARTBEAT_TYPE


async def set_enabled(
    project_id: uuid.UUID, api_key_id: uuid.UUID | None, monitor_id: uuid.UUID, enabled: bool
) -> dict:
    async with db.transaction() as conn:
        before = await _fetch(conn, project_id, monitor_id, lock=True)
        await conn.execute(
            """update monitors set enabled = %s, updated_at = now(),
                   next_run_at = case when %s then coalesce(next_run_at, now()) else next_run_at end
               where id = %s""",
            (enabled, enabled and before["type"] != HEARTBEAT_TYPE, monitor_id),
        )
        await audit.record(
            conn,
            project_id,
            api_key_id,
            "monitor.resume" if enabled else "monitor.pause",
            "monitor",
            monitor_id,
        )
        return await _fetch(conn, project_id, monitor_id)


async def rotate_ping_token(
    project_id: uuid.UUID, api_key_id: uuid.UUID | None, monitor_id: uuid.UUID
) -> dict:
    """A heartbeat's new token: its old ping URL is refused (404) from this commit on."""
    async with db.transaction() as conn:
        await _fetch(conn, project_id, monitor_id, lock=True)
        if not await heartbeats.rotate_token(conn, monitor_id, project_id):
            raise ApiError(400, "validation_error", "type: only a heartbeat monitor has a ping token", "type")
        await audit.record(conn, project_id, api_key_id, "monitor.ping_token.rotate", "monitor", monitor_id)
        rotated = await _fetch(conn, project_id, monitor_id)
    await tokens_retired()
    return rotated


async def list_pings(project_id: uuid.UUID, monitor_id: uuid.UUID, query: PageQuery) -> HeartbeatPingPage:
    """A heartbeat's pings, newest first (another type's: none)."""
    async with db.transaction() as conn:
        await _fetch(conn, project_id, monitor_id)
        total = (
            await (
                await conn.execute(
                    "select count(*) as n from heartbeat_pings where monitor_id = %s", (monitor_id,)
                )
            ).fetchone()
        )["n"]
        rows = await (
            await conn.execute(
                """select id, kind, source, exit_status, rid, received_at, duration_ms, message, run_id
                   from heartbeat_pings where monitor_id = %s order by received_at desc, id desc
                   limit %s offset %s""",
                (monitor_id, query.limit, (query.page - 1) * query.limit),
            )
        ).fetchall()
    return HeartbeatPingPage(
        data=[HeartbeatPingOut.model_validate(row) for row in rows],
        pagination=Pagination.of(query.page, query.limit, total),
    )


async def delete_monitor(project_id: uuid.UUID, api_key_id: uuid.UUID | None, monitor_id: uuid.UUID) -> None:
    async with db.transaction() as conn:
        monitor = await _fetch(conn, project_id, monitor_id)
        # Runs first, then the monitor: the order aggregate locks them in (a run, then its monitor). Locking the
        # monitor first and its runs through the delete trigger deadlocked with finalizing under load.
        await conn.execute("delete from runs where monitor_id = %s", (monitor_id,))
        deleted = await (
            await conn.execute(
                "delete from monitors where id = %s and project_id = %s returning id",
                (monitor_id, project_id),
            )
        ).fetchone()
        if deleted is None:  # deleted by a concurrent request meanwhile
            raise ApiError(404, "not_found", "monitor not found")
        await audit.record(conn, project_id, api_key_id, "monitor.delete", "monitor", monitor_id)
    if monitor["type"] == HEARTBEAT_TYPE:
        await tokens_retired()


# What the list and the counts show as a monitor's status: paused when it is not enabled.
_SHOWN_STATUS = "(case when m.enabled then m.status else 'paused' end)"
_SORT_COLUMNS = {
    "name": "lower(m.name)",
    "status": _SHOWN_STATUS,
    "type": "m.type",
    "lastCheckAt": "m.last_check_at",
    "createdAt": "m.created_at",
}


def like_pattern(text: str) -> str:
    """A substring pattern for ILIKE ... ESCAPE '\\' that matches `text` literally (its % and _ included)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _filters(project_id: uuid.UUID, query: MonitorFilterQuery) -> tuple[str, dict]:
    conditions, params = ["m.project_id = %(project_id)s"], {"project_id": project_id}
    if query.type:
        conditions.append("m.type = %(type)s")
        params["type"] = {"http": "http_request"}.get(query.type, query.type)
    if query.tag:
        conditions.append("m.tags @> array[%(tag)s]::text[]")
        params["tag"] = query.tag
    if query.search:
        # search_target: the target lower-cased, its credentials stripped by the rule that masks them for display
        # (migration 0010), so a search can never probe a secret the response hides. lower() and LIKE rather than
        # ILIKE: the same matches, at a third of the cost per row.
        conditions.append(
            "(lower(m.name) like lower(%(search)s) escape '\\' or m.search_target like lower(%(search)s) escape '\\')"
        )
        params["search"] = like_pattern(query.search)
    return " and ".join(conditions), params


def _order(sort: str | None) -> str:
    if sort is None:
        return "m.created_at desc, m.id"
    column = _SORT_COLUMNS[sort.removeprefix("-")]
    direction = "desc" if sort.startswith("-") else "asc"
    return (
        f"{column} {direction} nulls last, m.id"  # never-checked monitors last either way; id keeps it stable
    )


async def list_monitors(project_id: uuid.UUID, query: MonitorListQuery) -> MonitorListPage:
    where, params = _filters(project_id, query)
    if query.status == "paused":
        where += " and not m.enabled"
    elif query.status:
        where += (
            " and m.status = %(status)s"  # the stored status, paused monitors included (as before paused)
        )
        params["status"] = query.status
    async with db.transaction() as conn:
        total = (
            await (
                await conn.execute(f"select count(*) as n from monitors m where {where}", params)
            ).fetchone()
        )["n"]
        rows = await (
            await conn.execute(
                f"""select {_MONITOR_COLUMNS} from monitors m {_MONITOR_JOINS}
                    where {where} order by {_order(query.sort)} limit %(limit)s offset %(offset)s""",
                {**params, "limit": query.limit, "offset": (query.page - 1) * query.limit},
            )
        ).fetchall()
    # include=summary is filled in by the route from shared.api.services.series (which reads monitors through here)
    return MonitorListPage(
        data=[monitor_out(row, MonitorListItem) for row in rows],
        pagination=Pagination.of(query.page, query.limit, total),
    )


async def status_counts(project_id: uuid.UUID, query: MonitorFilterQuery) -> MonitorCounts:
    where, params = _filters(project_id, query)
    async with db.transaction() as conn:
        rows = await (
            await conn.execute(
                f"select {_SHOWN_STATUS} as status, count(*) as n from monitors m where {where} group by 1",
                params,
            )
        ).fetchall()
    counted = {row["status"]: row["n"] for row in rows}
    known = {name: counted.get(name, 0) for name in StatusCounts.model_fields}
    return MonitorCounts(total=sum(counted.values()), counts=StatusCounts(**known))


async def monitor_ids_for(
    project_id: uuid.UUID, monitor_ids: list[uuid.UUID], tag: str | None
) -> list[uuid.UUID]:
    """The project's monitors named by id or carrying the tag; ids of other projects are 404, as if absent."""
    async with db.transaction() as conn:
        rows = await (
            await conn.execute(
                """select id from monitors where project_id = %s
                   and (id = any(%s) or (%s::text is not null and tags @> array[%s]::text[]))""",
                (project_id, monitor_ids, tag, tag),
            )
        ).fetchall()
    found = {row["id"] for row in rows}
    unknown = [str(m) for m in monitor_ids if m not in found]
    if unknown:
        raise ApiError(404, "not_found", f"monitor {unknown[0]} not found")
    return sorted(found, key=str)
