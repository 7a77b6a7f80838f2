"""Monitors and notification providers as the API stores and shows them."""

from __future__ import annotations

import json
import math
import uuid
from datetime import datetime

from psycopg.types.json import Jsonb

from shared import db
from shared.models import ApiError, MonitorCreate, NotificationProviderCreate, ResultsQuery
from shared.notify import masked_config
from shared.security import key_ring


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def monitor_json(row: dict) -> dict:
    return {
        "id": str(row["id"]),
        "projectId": str(row["project_id"]),
        "name": row["name"],
        "type": row["type"],
        "target": row["target"],
        "frequencyMinutes": row["frequency_minutes"],
        "enabled": row["enabled"],
        "config": row["config"],
        "locationConfig": row["location_config"],
        "alertConfig": row["alert_config"],
        "tags": row["tags"],
        "status": row["status"],
        "nextRunAt": _iso(row["next_run_at"]),
        "lastCheckAt": _iso(row["last_check_at"]),
        "createdAt": _iso(row["created_at"]),
        "updatedAt": _iso(row["updated_at"]),
    }


def result_json(row: dict) -> dict:
    return {
        "id": row["id"],
        "runId": str(row["run_id"]),
        "monitorId": str(row["monitor_id"]),
        "location": row["location"],
        "status": row["status"],
        "checkedAt": _iso(row["checked_at"]),
        "responseTimeMs": row["response_time_ms"],
        "statusCode": row["status_code"],
        "timings": {
            "dnsMs": row["dns_ms"],
            "connectMs": row["connect_ms"],
            "tlsMs": row["tls_ms"],
            "firstByteMs": row["first_byte_ms"],
        },
        "message": row["message"],
        "details": row["details"],
        "isStatusChange": row["is_status_change"],
    }


async def default_project_id() -> uuid.UUID:
    async with db.transaction() as conn:
        row = await (await conn.execute("select id from projects where is_default")).fetchone()
    return row["id"]


async def create_monitor(project_id: uuid.UUID, spec: MonitorCreate) -> dict:
    async with db.transaction() as conn:
        await _require_providers(conn, project_id, spec.alert_config.notification_providers)
        row = await (
            await conn.execute(
                """
                insert into monitors (project_id, name, type, target, config, frequency_minutes, enabled,
                                      location_config, alert_config, tags, next_run_at)
                values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, case when %s then now() end)
                returning *
                """,
                (
                    project_id,
                    spec.name,
                    spec.type,
                    spec.target,
                    Jsonb(spec.config),
                    spec.frequency_minutes,
                    spec.enabled,
                    Jsonb(spec.location_config.model_dump(by_alias=True)),
                    Jsonb(spec.alert_config.model_dump(by_alias=True, mode="json")),
                    spec.tags,
                    spec.enabled,
                ),
            )
        ).fetchone()
    return row


async def _require_providers(conn, project_id: uuid.UUID, provider_ids: list[uuid.UUID]) -> None:
    if not provider_ids:
        return
    found = await (
        await conn.execute(
            "select id from notification_providers where project_id = %s and id = any(%s)",
            (project_id, provider_ids),
        )
    ).fetchall()
    missing = set(provider_ids) - {row["id"] for row in found}
    if missing:
        raise ApiError(
            400,
            "validation_error",
            f"alertConfig.notificationProviders: no provider {sorted(map(str, missing))[0]}",
            "alertConfig.notificationProviders",
        )


async def get_monitor(project_id: uuid.UUID, monitor_id: uuid.UUID) -> dict:
    async with db.transaction() as conn:
        row = await (
            await conn.execute(
                "select * from monitors where id = %s and project_id = %s", (monitor_id, project_id)
            )
        ).fetchone()
    if row is None:
        raise ApiError(404, "not_found", "monitor not found")
    return row


async def results_page(project_id: uuid.UUID, monitor_id: uuid.UUID, query: ResultsQuery) -> dict:
    await get_monitor(project_id, monitor_id)
    async with db.transaction() as conn:
        total = (
            await (
                await conn.execute(
                    "select count(*) as n from monitor_results where monitor_id = %s", (monitor_id,)
                )
            ).fetchone()
        )["n"]
        rows = await (
            await conn.execute(
                """select * from monitor_results where monitor_id = %s
                   order by checked_at desc, id desc limit %s offset %s""",
                (monitor_id, query.limit, (query.page - 1) * query.limit),
            )
        ).fetchall()
    total_pages = math.ceil(total / query.limit) if total else 0
    return {
        "data": [result_json(row) for row in rows],
        "pagination": {
            "page": query.page,
            "limit": query.limit,
            "total": total,
            "totalPages": total_pages,
            "hasNextPage": query.page < total_pages,
            "hasPrevPage": query.page > 1,
        },
    }


def provider_json(row: dict) -> dict:
    return {
        "id": str(row["id"]),
        "projectId": str(row["project_id"]),
        "name": row["name"],
        "type": row["type"],
        "config": row["config_masked"],
        "enabled": row["enabled"],
        "createdAt": _iso(row["created_at"]),
    }


async def create_provider(project_id: uuid.UUID, spec: NotificationProviderCreate) -> dict:
    async with db.transaction() as conn:
        return await (
            await conn.execute(
                """insert into notification_providers (project_id, name, type, config_encrypted, config_masked)
                   values (%s, %s, %s, %s, %s) returning *""",
                (
                    project_id,
                    spec.name,
                    spec.type,
                    key_ring().encrypt(json.dumps(spec.config)),
                    Jsonb(masked_config(spec.config)),
                ),
            )
        ).fetchone()
