"""The api function's incident endpoints (tag "incidents"): incidents shown on status pages, with their
timelines; aggregate opens drafts when monitors on a page go down, and one call publishes a draft."""

from __future__ import annotations

from shared.api.framework import Context, LazyModule, as_uuid, endpoint
from shared.api.requests import (
    StatusIncidentCreate,
    StatusIncidentListQuery,
    StatusIncidentPatch,
    StatusIncidentUpdateCreate,
)
from shared.api.schemas import StatusIncidentOut, StatusIncidentPage

status_incidents = LazyModule("shared.api.services.status_incidents")


@endpoint(
    "GET",
    "/incidents",
    summary="List status page incidents, newest first (filter by statusPageId, status, draft)",
    tag="incidents",
    query=StatusIncidentListQuery,
    response=StatusIncidentPage,
)
async def list_incidents(ctx: Context):
    return await status_incidents.list_incidents(ctx.project_id, ctx.query)


@endpoint(
    "POST",
    "/incidents",
    summary="Open an incident on a status page, public at once; its message (Markdown) starts the timeline",
    tag="incidents",
    body=StatusIncidentCreate,
    response=StatusIncidentOut,
    status=201,
)
async def create_incident(ctx: Context):
    return await status_incidents.create_incident(ctx.project_id, ctx.api_key_id, ctx.body)


@endpoint(
    "GET",
    "/incidents/{incident_id}",
    summary="An incident and its timeline, oldest first",
    tag="incidents",
    response=StatusIncidentOut,
)
async def get_incident(ctx: Context, incident_id: str):
    return await status_incidents.get_incident(ctx.project_id, as_uuid(incident_id, "incident"))


@endpoint(
    "PATCH",
    "/incidents/{incident_id}",
    summary="Change an incident's title, impact or monitors",
    tag="incidents",
    body=StatusIncidentPatch,
    response=StatusIncidentOut,
)
async def patch_incident(ctx: Context, incident_id: str):
    return await status_incidents.patch_incident(
        ctx.project_id, ctx.api_key_id, as_uuid(incident_id, "incident"), ctx.body
    )


@endpoint(
    "POST",
    "/incidents/{incident_id}/updates",
    summary="Append to an incident's timeline and set its status (resolved sets resolvedAt)",
    tag="incidents",
    body=StatusIncidentUpdateCreate,
    response=StatusIncidentOut,
    status=201,
    conflict="Reopening a resolved draft while another draft is open on its page",
)
async def add_incident_update(ctx: Context, incident_id: str):
    return await status_incidents.add_update(
        ctx.project_id, ctx.api_key_id, as_uuid(incident_id, "incident"), ctx.body
    )


@endpoint(
    "POST",
    "/incidents/{incident_id}/publish",
    summary="Publish a draft incident: it shows on its public page from now on",
    tag="incidents",
    response=StatusIncidentOut,
)
async def publish_incident(ctx: Context, incident_id: str):
    return await status_incidents.publish_incident(
        ctx.project_id, ctx.api_key_id, as_uuid(incident_id, "incident")
    )


@endpoint(
    "DELETE",
    "/incidents/{incident_id}",
    summary="Delete an incident and its timeline",
    tag="incidents",
    status=204,
)
async def delete_incident(ctx: Context, incident_id: str):
    await status_incidents.delete_incident(ctx.project_id, ctx.api_key_id, as_uuid(incident_id, "incident"))
