"""The last-applied state of resources managed as code (the supercheck CLI), per project, kind and key.
An apply claims the state on the generation its plan read (compare-and-set, with an expiry), writes through the
API, then records by compare-and-set on that generation and claim, with its audit entry."""

from __future__ import annotations

import uuid

from psycopg.types.json import Jsonb

from shared import audit, db
from shared.api.requests import ManagedApplyRecord, ManagedClaimRequest
from shared.api.schemas import ManagedApplyRecorded, ManagedClaim, ManagedResourceOut, ManagedState
from shared.errors import ApiError
from shared.security import mask_secrets


async def read_state(project_id: uuid.UUID) -> ManagedState:
    async with db.transaction() as conn:
        head = await (
            await conn.execute(
                "select generation, applied_at from managed_state where project_id = %s", (project_id,)
            )
        ).fetchone()
        rows = await (
            await conn.execute(
                """select kind, key, resource_id, desired, observed, applied_at from managed_resources
                   where project_id = %s order by kind, key""",
                (project_id,),
            )
        ).fetchall()
    return ManagedState(
        generation=head["generation"] if head else 0,
        applied_at=head["applied_at"] if head else None,
        resources=[ManagedResourceOut.model_validate(row) for row in rows],
    )


async def claim(project_id: uuid.UUID, request: ManagedClaimRequest) -> ManagedClaim:
    async with db.transaction() as conn:
        await _ensure_state(conn, project_id)
        row = await (
            await conn.execute(
                """update managed_state set claim_id = gen_random_uuid(),
                       claimed_until = now() + make_interval(secs => %s)
                   where project_id = %s and generation = %s and (claimed_until is null or claimed_until < now())
                   returning claim_id, generation, claimed_until""",
                (request.ttl_seconds, project_id, request.expected_generation),
            )
        ).fetchone()
    if row is None:
        raise ApiError(
            409,
            "conflict",
            "expectedGeneration: another apply holds the state or was recorded since this plan; plan again",
            "expectedGeneration",
        )
    return ManagedClaim.model_validate(row)


async def release(project_id: uuid.UUID, claim_id: uuid.UUID) -> None:
    """An apply that failed lets go of its claim; a claim recorded or released already is not found."""
    async with db.transaction() as conn:
        released = await (
            await conn.execute(
                """update managed_state set claim_id = null, claimed_until = null
                   where project_id = %s and claim_id = %s returning project_id""",
                (project_id, claim_id),
            )
        ).fetchone()
    if released is None:
        raise ApiError(404, "not_found", "claim not found")


async def _ensure_state(conn, project_id: uuid.UUID) -> None:
    await conn.execute(
        "insert into managed_state (project_id) values (%s) on conflict (project_id) do nothing",
        (project_id,),
    )


async def record_apply(
    project_id: uuid.UUID, api_key_id: uuid.UUID | None, record: ManagedApplyRecord
) -> ManagedApplyRecorded:
    async with db.transaction() as conn:
        # the claim may have expired meanwhile: recorded all the same unless another apply claimed since
        advanced = await (
            await conn.execute(
                """update managed_state set generation = generation + 1, applied_at = now(),
                       claim_id = null, claimed_until = null
                   where project_id = %s and generation = %s and claim_id = %s returning generation""",
                (project_id, record.expected_generation, record.claim_id),
            )
        ).fetchone()
        if advanced is None:
            raise ApiError(
                409,
                "conflict",
                "claimId: this apply's claim is gone (another apply claimed the state after it expired, or "
                "it was recorded already); plan again",
                "claimId",
            )
        for item in record.upserts:
            await conn.execute(
                """insert into managed_resources (project_id, kind, key, resource_id, desired, observed)
                   values (%s, %s, %s, %s, %s, %s)
                   on conflict (project_id, kind, key) do update set resource_id = excluded.resource_id,
                       desired = excluded.desired, observed = excluded.observed, applied_at = now()""",
                (
                    project_id,
                    item.kind,
                    item.key,
                    item.resource_id,
                    Jsonb(item.desired),
                    Jsonb(mask_secrets(item.observed, project_id)),  # already masked by the reads; never less
                ),
            )
        for gone in record.deletes:
            await conn.execute(
                "delete from managed_resources where project_id = %s and kind = %s and key = %s",
                (project_id, gone.kind, gone.key),
            )
        await audit.record(
            conn,
            project_id,
            api_key_id,
            "managed.apply",
            "project",
            project_id,
            {
                "message": record.message,
                "commitSha": record.commit_sha,
                "created": record.created,
                "updated": record.updated,
                "deleted": record.deleted,
                "generation": advanced["generation"],
            },
        )
    return ManagedApplyRecorded(
        generation=advanced["generation"], upserted=len(record.upserts), deleted=len(record.deletes)
    )
