"""Notification providers and which monitors notify them, scoped to a project; configs encrypted at rest.

Used by the API's provider endpoints (shared/api/routes.py), including "send test notification".
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from shared import audit, db
from shared.api.requests import NotificationProviderCreate, ProviderPatch
from shared.api.schemas import NotificationSettings, ProviderOut
from shared.errors import ApiError
from shared.notify import build_message, masked_config, send_to_provider, validate_provider_config
from shared.security import key_ring, provider_binding


def provider_out(row: dict) -> ProviderOut:
    return ProviderOut(
        id=row["id"],
        project_id=row["project_id"],
        name=row["name"],
        type=row["type"],
        config=row["config_masked"],
        enabled=row["enabled"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def _fetch(
    conn: AsyncConnection, project_id: uuid.UUID, provider_id: uuid.UUID, lock: bool = False
) -> dict:
    row = await (
        await conn.execute(
            f"select * from notification_providers where id = %s and project_id = %s {'for update' if lock else ''}",
            (provider_id, project_id),
        )
    ).fetchone()
    if row is None:
        raise ApiError(404, "not_found", "notification provider not found")
    return row


async def create_provider(
    project_id: uuid.UUID, api_key_id: uuid.UUID | None, spec: NotificationProviderCreate
) -> dict:
    async with db.transaction() as conn:
        row = await (
            await conn.execute(
                """insert into notification_providers (project_id, name, type, config_encrypted, config_masked)
                   values (%s, %s, %s, %s, %s) returning *""",
                (
                    project_id,
                    spec.name,
                    spec.type,
                    key_ring().encrypt(json.dumps(spec.config), provider_binding(project_id)),
                    Jsonb(masked_config(spec.type, spec.config)),
                ),
            )
        ).fetchone()
        await audit.record(
            conn,
            project_id,
            api_key_id,
            "provider.create",
            "notification_provider",
            row["id"],
            {"name": spec.name, "type": spec.type, "config": row["config_masked"]},
        )
    return row


async def get_provider(project_id: uuid.UUID, provider_id: uuid.UUID) -> dict:
    async with db.transaction() as conn:
        return await _fetch(conn, project_id, provider_id)


async def list_providers(project_id: uuid.UUID) -> list[dict]:
    async with db.transaction() as conn:
        return await (
            await conn.execute(
                "select * from notification_providers where project_id = %s order by created_at",
                (project_id,),
            )
        ).fetchall()


async def update_provider(
    project_id: uuid.UUID, api_key_id: uuid.UUID | None, provider_id: uuid.UUID, patch: ProviderPatch
) -> dict:
    async with db.transaction() as conn:
        row = await _fetch(conn, project_id, provider_id, lock=True)
        encrypted, masked = row["config_encrypted"], row["config_masked"]
        if patch.config is not None:
            try:
                config = validate_provider_config(row["type"], patch.config)
            except ValueError as error:
                raise ApiError(400, "validation_error", str(error), str(error).partition(":")[0]) from None
            encrypted = key_ring().encrypt(json.dumps(config), provider_binding(project_id))
            masked = masked_config(row["type"], config)
        row = await (
            await conn.execute(
                """update notification_providers set name = coalesce(%s, name), enabled = coalesce(%s, enabled),
                       config_encrypted = %s, config_masked = %s, updated_at = now()
                   where id = %s returning *""",
                (patch.name, patch.enabled, encrypted, Jsonb(masked), provider_id),
            )
        ).fetchone()
        changes = patch.model_dump(by_alias=True, exclude_none=True)
        if "config" in changes:
            changes["config"] = masked
        await audit.record(
            conn, project_id, api_key_id, "provider.update", "notification_provider", provider_id, changes
        )
    return row


async def delete_provider(
    project_id: uuid.UUID, api_key_id: uuid.UUID | None, provider_id: uuid.UUID
) -> None:
    async with db.transaction() as conn:
        await _fetch(conn, project_id, provider_id, lock=True)
        await conn.execute("delete from notification_providers where id = %s", (provider_id,))
        await audit.record(
            conn, project_id, api_key_id, "provider.delete", "notification_provider", provider_id
        )


async def get_settings_for(project_id: uuid.UUID, monitor_id: uuid.UUID) -> NotificationSettings:
    async with db.transaction() as conn:
        await _require_monitor(conn, project_id, monitor_id)
        rows = await (
            await conn.execute(
                "select provider_id from monitor_notification_settings where monitor_id = %s order by provider_id",
                (monitor_id,),
            )
        ).fetchall()
    return NotificationSettings(provider_ids=[row["provider_id"] for row in rows])


async def put_settings_for(
    project_id: uuid.UUID, api_key_id: uuid.UUID | None, monitor_id: uuid.UUID, settings: NotificationSettings
) -> NotificationSettings:
    async with db.transaction() as conn:
        await _require_monitor(conn, project_id, monitor_id)
        wanted = list(dict.fromkeys(settings.provider_ids))
        found = await (
            await conn.execute(
                "select id from notification_providers where project_id = %s and id = any(%s)",
                (project_id, wanted),
            )
        ).fetchall()
        unknown = [str(p) for p in wanted if p not in {row["id"] for row in found}]
        if unknown:
            raise ApiError(400, "validation_error", f"providerIds: no provider {unknown[0]}", "providerIds")
        await conn.execute("delete from monitor_notification_settings where monitor_id = %s", (monitor_id,))
        for provider_id in wanted:
            await conn.execute(
                "insert into monitor_notification_settings (monitor_id, provider_id) values (%s, %s)",
                (monitor_id, provider_id),
            )
        await audit.record(
            conn,
            project_id,
            api_key_id,
            "monitor.notification_settings",
            "monitor",
            monitor_id,
            {"providerIds": [str(p) for p in wanted]},
        )
    return NotificationSettings(provider_ids=sorted(wanted, key=str))


async def _require_monitor(conn: AsyncConnection, project_id: uuid.UUID, monitor_id: uuid.UUID) -> None:
    row = await (
        await conn.execute(
            "select 1 from monitors where id = %s and project_id = %s", (monitor_id, project_id)
        )
    ).fetchone()
    if row is None:
        raise ApiError(404, "not_found", "monitor not found")


async def send_test_notification(project_id: uuid.UUID, provider_id: uuid.UUID) -> dict[str, Any]:
    """Sends a sample alert through one provider now (with retries) and reports how it went; records nothing."""
    async with db.transaction() as conn:
        row = await (
            await conn.execute(
                """select p.type, p.name, p.config_encrypted, pr.name as project_name
                   from notification_providers p join projects pr on pr.id = p.project_id
                   where p.id = %s and p.project_id = %s""",
                (provider_id, project_id),
            )
        ).fetchone()
    if row is None:
        raise ApiError(404, "not_found", "notification provider not found")
    payload = {
        "projectName": row["project_name"],
        "monitorName": row["name"],
        "monitorType": "test",
        "target": "this provider",
        "status": "up",
        "locationsDown": 0,
        "locationsTotal": 0,
        "time": datetime.now(UTC).isoformat(),
    }
    message = build_message("test", payload, monitor_id=f"test-{provider_id}")
    config = json.loads(key_ring().decrypt(row["config_encrypted"], provider_binding(project_id)))
    result = await send_to_provider(row["type"], config, message)
    answer: dict[str, Any] = {"status": result.status, "attempts": result.attempts, "error": result.error}
    if result.recipients is not None:
        answer["recipients"] = result.recipients
    return answer
