"""Projects and their API keys, as the API manages them."""

from __future__ import annotations

import uuid

from shared import audit, auth, db
from shared.api.schemas import (
    ApiKeyCreated,
    ApiKeyOut,
    AuditEntry,
    AuditPage,
    Pagination,
    ProjectCreated,
    ProjectOut,
)
from shared.errors import ApiError


def key_out(row: dict) -> ApiKeyOut:
    return ApiKeyOut(
        id=row["id"],
        name=row["name"],
        prefix=row["prefix"],
        created_at=row["created_at"],
        last_used_at=row["last_used_at"],
        revoked_at=row["revoked_at"],
    )


async def create_project(name: str, api_key_id: uuid.UUID | None) -> ProjectCreated:
    async with db.transaction() as conn:
        project = await (
            await conn.execute(
                "insert into projects (name) values (%s) returning id, name, created_at", (name,)
            )
        ).fetchone()
        key_row, key = await auth.store_key(conn, project["id"], "initial")
        await audit.record(
            conn, project["id"], api_key_id, "project.create", "project", project["id"], {"name": name}
        )
    return ProjectCreated(**project, api_key=ApiKeyCreated(**key_out(key_row).model_dump(), key=key))


async def get_project(project_id: uuid.UUID) -> ProjectOut:
    async with db.transaction() as conn:
        row = await (
            await conn.execute("select id, name, created_at from projects where id = %s", (project_id,))
        ).fetchone()
    return ProjectOut(**row)


async def create_key(project_id: uuid.UUID, api_key_id: uuid.UUID | None, name: str) -> ApiKeyCreated:
    async with db.transaction() as conn:
        row, key = await auth.store_key(conn, project_id, name)
        await audit.record(
            conn,
            project_id,
            api_key_id,
            "api_key.create",
            "api_key",
            row["id"],
            {"name": name, "prefix": row["prefix"]},
        )
    return ApiKeyCreated(**key_out(row).model_dump(), key=key)


async def list_keys(project_id: uuid.UUID) -> list[ApiKeyOut]:
    async with db.transaction() as conn:
        rows = await (
            await conn.execute(
                """select id, name, prefix, created_at, last_used_at, revoked_at from api_keys
                   where project_id = %s order by created_at""",
                (project_id,),
            )
        ).fetchall()
    return [key_out(row) for row in rows]


async def revoke_key(project_id: uuid.UUID, api_key_id: uuid.UUID | None, key_id: uuid.UUID) -> ApiKeyOut:
    async with db.transaction() as conn:
        row = await (
            await conn.execute(
                """update api_keys set revoked_at = coalesce(revoked_at, now()) where id = %s and project_id = %s
                   returning id, name, prefix, created_at, last_used_at, revoked_at""",
                (key_id, project_id),
            )
        ).fetchone()
        if row is None:
            raise ApiError(404, "not_found", "API key not found")
        await audit.record(
            conn, project_id, api_key_id, "api_key.revoke", "api_key", key_id, {"prefix": row["prefix"]}
        )
    return key_out(row)


async def audit_page(project_id: uuid.UUID, page: int, limit: int) -> AuditPage:
    async with db.transaction() as conn:
        total = (
            await (
                await conn.execute("select count(*) as n from audit_log where project_id = %s", (project_id,))
            ).fetchone()
        )["n"]
        rows = await (
            await conn.execute(
                """select id, api_key_id, action, object_type, object_id, changes, created_at from audit_log
                   where project_id = %s order by id desc limit %s offset %s""",
                (project_id, limit, (page - 1) * limit),
            )
        ).fetchall()
    return AuditPage(data=[AuditEntry(**row) for row in rows], pagination=Pagination.of(page, limit, total))
