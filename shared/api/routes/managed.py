"""The api function's endpoints for resources managed as code (tag "managed"): the supercheck CLI's state."""

from __future__ import annotations

from shared.api.framework import Context, LazyModule, as_uuid, endpoint
from shared.api.requests import ManagedApplyRecord, ManagedClaimRequest
from shared.api.schemas import ManagedApplyRecorded, ManagedClaim, ManagedState

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
    "/managed-resources/claims",
    summary="Claim the state before an apply writes, on the generation its plan read (expires)",
    tag="managed",
    body=ManagedClaimRequest,
    response=ManagedClaim,
    status=201,
    conflict="The generation moved, or another apply holds an unexpired claim: plan again",
)
async def claim_managed_state(ctx: Context):
    return await managed.claim(ctx.project_id, ctx.body)


@endpoint(
    "DELETE",
    "/managed-resources/claims/{claim_id}",
    summary="Release a claim (an apply that failed before recording)",
    tag="managed",
    status=204,
)
async def release_managed_claim(ctx: Context, claim_id: str):
    await managed.release(ctx.project_id, as_uuid(claim_id, "claim"))


@endpoint(
    "POST",
    "/managed-resources/applies",
    summary="Record an apply: the resources' new state, by compare-and-set on generation and claim; audited",
    tag="managed",
    body=ManagedApplyRecord,
    response=ManagedApplyRecorded,
    status=201,
    conflict="The apply's claim is gone (it expired and another apply claimed the state): plan again",
)
async def record_managed_apply(ctx: Context):
    return await managed.record_apply(ctx.project_id, ctx.api_key_id, ctx.body)
