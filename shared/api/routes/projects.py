"""The api function's project endpoints (tag "projects"): the project, its API keys and its audit log."""

from __future__ import annotations

from shared.api.framework import Context, LazyModule, as_uuid, endpoint
from shared.api.requests import ApiKeyCreate, PageQuery, ProjectCreate
from shared.api.schemas import ApiKeyCreated, ApiKeyOut, AuditPage, ProjectCreated, ProjectOut

projects = LazyModule("shared.api.services.projects")


@endpoint("GET", "/project", summary="The project of the calling key", tag="projects", response=ProjectOut)
async def current_project(ctx: Context):
    return await projects.get_project(ctx.project_id)


@endpoint(
    "POST",
    "/projects",
    summary="Create a project; its first API key is shown once",
    tag="projects",
    body=ProjectCreate,
    response=ProjectCreated,
    status=201,
)
async def create_project(ctx: Context):
    return await projects.create_project(ctx.body.name, ctx.api_key_id)


@endpoint(
    "GET",
    "/api-keys",
    summary="List the project's API keys by prefix",
    tag="projects",
    response=list[ApiKeyOut],
)
async def list_keys(ctx: Context):
    return await projects.list_keys(ctx.project_id)


@endpoint(
    "POST",
    "/api-keys",
    summary="Create an API key; the key is shown once",
    tag="projects",
    body=ApiKeyCreate,
    response=ApiKeyCreated,
    status=201,
)
async def create_key(ctx: Context):
    return await projects.create_key(ctx.project_id, ctx.api_key_id, ctx.body.name)


@endpoint("DELETE", "/api-keys/{key_id}", summary="Revoke an API key", tag="projects", response=ApiKeyOut)
async def revoke_key(ctx: Context, key_id: str):
    return await projects.revoke_key(ctx.project_id, ctx.api_key_id, as_uuid(key_id, "API key"))


@endpoint(
    "GET",
    "/audit-log",
    summary="Every change in the project, newest first",
    tag="projects",
    query=PageQuery,
    response=AuditPage,
)
async def audit_log(ctx: Context):
    return await projects.audit_page(ctx.project_id, ctx.query.page, ctx.query.limit)
