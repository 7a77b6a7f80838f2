"""The api function's endpoints for resources managed as code (tag "managed"): the supercheck CLI's state."""

from __future__ import annotations

from shared.api.framework import Context, LazyModule, endpoint
from shared.api.requests import ManagedApplyRecord
from shared.api.schemas import ManagedApplyRecorded, ManagedState

managed = LazyModule("shared.api.services.managed")


@endpoint(
    "GET",
    "/managed-resources",
    summary="The last-applied state of resources managed as code, by kind and key",
    tag="managed",
    response=ManagedState,
)
async def get_managed_state(ctx: Context):
    return await managed.read_state(ctx.project_id)


@endpoint(
    "POST",
    "/managed-resources/applies",
    summary="Record an apply: the resources' new state, by compare-and-set on the generation; audited",
    tag="managed",
    body=ManagedApplyRecord,
    response=ManagedApplyRecorded,
    status=201,
    conflict="Another apply was recorded since expectedGeneration was read: plan again",
)
async def record_managed_apply(ctx: Context):
    return await managed.record_apply(ctx.project_id, ctx.api_key_id, ctx.body)
