"""Maintenance windows as the API stores them: alerts inside a window are recorded as suppressed."""

from __future__ import annotations

import uuid
from datetime import datetime

from shared import audit, db
from shared.api.requests import MaintenanceWindowCreate
from shared.errors import ApiError
from shared.models import ApiModel

_COLUMNS = (
    "id, name, monitor_ids, starts_at, ends_at, cron, duration_minutes, timezone, created_at, updated_at"
)


class MaintenanceWindowOut(ApiModel):
    id: uuid.UUID
    name: str
    monitor_ids: list[uuid.UUID]
    starts_at: datetime | None
    ends_at: datetime | None
    cron: str | None
    duration_minutes: int | None
    timezone: str
    created_at: datetime
    updated_at: datetime


async def _require_monitors(conn, project_id: uuid.UUID, monitor_ids: list[uuid.UUID]) -> None:
    found = await (
        await conn.execute(
            "select id from monitors where project_id = %s and id = any(%s)", (project_id, monitor_ids)
        )
    ).fetchall()
    unknown = [str(m) for m in monitor_ids if m not in {row["id"] for row in found}]
    if unknown:
        raise ApiError(400, "validation_error", f"monitorIds: no monitor {unknown[0]}", "monitorIds")


def _values(spec: MaintenanceWindowCreate) -> tuple:
    return (
        spec.name,
        list(dict.fromkeys(spec.monitor_ids)),
        spec.starts_at,
        spec.ends_at,
        spec.cron,
        spec.duration_minutes,
        spec.timezone,
    )


async def create_window(
    project_id: uuid.UUID, api_key_id: uuid.UUID | None, spec: MaintenanceWindowCreate
) -> MaintenanceWindowOut:
    async with db.transaction() as conn:
        await _require_monitors(conn, project_id, spec.monitor_ids)
        row = await (
            await conn.execute(
                f"""insert into maintenance_windows
                        (name, monitor_ids, starts_at, ends_at, cron, duration_minutes, timezone, project_id)
                    values (%s, %s, %s, %s, %s, %s, %s, %s) returning {_COLUMNS}""",
                (*_values(spec), project_id),
            )
        ).fetchone()
        await audit.record(
            conn,
            project_id,
            api_key_id,
            "maintenance_window.create",
            "maintenance_window",
            row["id"],
            spec.model_dump(mode="json", by_alias=True),
        )
    return MaintenanceWindowOut(**row)


async def replace_window(
    project_id: uuid.UUID, api_key_id: uuid.UUID | None, window_id: uuid.UUID, spec: MaintenanceWindowCreate
) -> MaintenanceWindowOut:
    async with db.transaction() as conn:
        await _require_monitors(conn, project_id, spec.monitor_ids)
        row = await (
            await conn.execute(
                f"""update maintenance_windows set name = %s, monitor_ids = %s, starts_at = %s, ends_at = %s,
                        cron = %s, duration_minutes = %s, timezone = %s, updated_at = now()
                    where id = %s and project_id = %s returning {_COLUMNS}""",
                (*_values(spec), window_id, project_id),
            )
        ).fetchone()
        if row is None:
            raise ApiError(404, "not_found", "maintenance window not found")
        await audit.record(
            conn,
            project_id,
            api_key_id,
            "maintenance_window.update",
            "maintenance_window",
            window_id,
            spec.model_dump(mode="json", by_alias=True),
        )
    return MaintenanceWindowOut(**row)


async def get_window(project_id: uuid.UUID, window_id: uuid.UUID) -> MaintenanceWindowOut:
    async with db.transaction() as conn:
        row = await (
            await conn.execute(
                f"select {_COLUMNS} from maintenance_windows where id = %s and project_id = %s",
                (window_id, project_id),
            )
        ).fetchone()
    if row is None:
        raise ApiError(404, "not_found", "maintenance window not found")
    return MaintenanceWindowOut(**row)


async def list_windows(project_id: uuid.UUID) -> list[MaintenanceWindowOut]:
    async with db.transaction() as conn:
        rows = await (
            await conn.execute(
                f"select {_COLUMNS} from maintenance_windows where project_id = %s order by created_at",
                (project_id,),
            )
        ).fetchall()
    return [MaintenanceWindowOut(**row) for row in rows]


async def delete_window(project_id: uuid.UUID, api_key_id: uuid.UUID | None, window_id: uuid.UUID) -> None:
    async with db.transaction() as conn:
        row = await (
            await conn.execute(
                "delete from maintenance_windows where id = %s and project_id = %s returning id",
                (window_id, project_id),
            )
        ).fetchone()
        if row is None:
            raise ApiError(404, "not_found", "maintenance window not found")
        await audit.record(
            conn, project_id, api_key_id, "maintenance_window.delete", "maintenance_window", window_id
        )
