"""What a check function does with jobs and job bundles: run them concurrently, store results once, announce them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse

from shared import db, streams
from shared.checks import CHECK_TYPES, run_check
from shared.handlers import is_connector_batch, json_endpoint, parse, read_json
from shared.models import (
    ApiError,
    CheckJob,
    CheckJobBundle,
    CheckOutcome,
    DirectCheck,
    ResultEvent,
    validation_error_to_api_error,
)
from shared.settings import get_settings

_INSERT_RESULTS = """
insert into monitor_results (
    run_id, monitor_id, location, status, checked_at, response_time_ms,
    dns_ms, connect_ms, tls_ms, first_byte_ms, status_code, message, details, is_status_change)
select r.run_id, r.monitor_id, r.location, r.status, r.checked_at, r.response_time_ms,
    r.dns_ms, r.connect_ms, r.tls_ms, r.first_byte_ms, r.status_code, r.message, r.details,
    r.status is distinct from (
        select p.status from monitor_results p
        where p.monitor_id = r.monitor_id and p.location = r.location
        order by p.checked_at desc limit 1)
from unnest(%s::uuid[], %s::uuid[], %s::text[], %s::text[], %s::timestamptz[], %s::int[],
            %s::real[], %s::real[], %s::real[], %s::real[], %s::int[], %s::text[], %s::jsonb[])
    as r(run_id, monitor_id, location, status, checked_at, response_time_ms,
         dns_ms, connect_ms, tls_ms, first_byte_ms, status_code, message, details)
on conflict (run_id, location) do nothing
"""


# A job never waits longer than this for its slot, whatever a skewed clock says.
MAX_EARLY_START_SECONDS = 30.0


async def _already_stored(jobs: list[CheckJob]) -> dict[tuple[str, str], str]:
    async with db.transaction() as conn:
        rows = await (
            await conn.execute(
                """select r.run_id, r.location, r.status from monitor_results r
                   join unnest(%s::uuid[], %s::text[]) as j(run_id, location)
                     on r.run_id = j.run_id and r.location = j.location""",
                ([job.run_id for job in jobs], [job.location for job in jobs]),
            )
        ).fetchall()
    return {(str(row["run_id"]), row["location"]): row["status"] for row in rows}


async def _run_all(jobs: list[CheckJob]) -> list[tuple[CheckJob, CheckOutcome, datetime]]:
    limit = asyncio.Semaphore(get_settings().check_concurrency)

    async def one(job: CheckJob) -> tuple[CheckJob, CheckOutcome, datetime]:
        early = (job.scheduled_at - datetime.now(UTC)).total_seconds()
        if early > 0:  # dispatched ahead of its slot (SCHEDULE_LOOKAHEAD_SECONDS): start on the slot
            await asyncio.sleep(min(early, MAX_EARLY_START_SECONDS))
        async with limit:
            checked_at = datetime.now(UTC)
            return job, await run_check(job), checked_at

    return await asyncio.gather(*(one(job) for job in jobs))


async def _store(executed: list[tuple[CheckJob, CheckOutcome, datetime]]) -> None:
    if not executed:
        return
    from psycopg.types.json import Jsonb  # with the first results stored: direct checks never load psycopg

    columns: list[list] = [[] for _ in range(13)]
    for job, outcome, checked_at in executed:
        values = (
            job.run_id,
            job.monitor_id,
            job.location,
            outcome.status,
            checked_at,
            outcome.response_time_ms,
            outcome.dns_ms,
            outcome.connect_ms,
            outcome.tls_ms,
            outcome.first_byte_ms,
            outcome.status_code,
            outcome.message,
            Jsonb(outcome.details),
        )
        for column, value in zip(columns, values, strict=True):
            column.append(value)
    async with db.transaction() as conn:
        await conn.execute(_INSERT_RESULTS, columns)


async def execute_jobs(jobs: list[CheckJob]) -> int:
    """Runs each job not yet stored, commits every result, then publishes one event per job.

    Redelivered jobs are not re-run; their stored result is announced again, which aggregate ignores if seen.
    Returns how many checks actually ran.
    """
    stored = await _already_stored(jobs)
    pending = [job for job in jobs if (str(job.run_id), job.location) not in stored]
    executed = await _run_all(pending)
    await _store(executed)
    fresh = {(str(job.run_id), job.location): outcome.status for job, outcome, _ in executed}
    statuses = stored | fresh
    await streams.publish(
        (
            streams.RESULTS_STREAM,
            ResultEvent(
                run_id=job.run_id,
                monitor_id=job.monitor_id,
                location=job.location,
                status=statuses[(str(job.run_id), job.location)],
            ),
        )
        for job in jobs
    )
    await streams.publish_events(
        {
            "type": "result",
            "monitorId": job.monitor_id,
            "runId": job.run_id,
            "location": job.location,
            "status": outcome.status,
            "responseTimeMs": outcome.response_time_ms,
            "checkedAt": checked_at.isoformat(),
        }
        for job, outcome, checked_at in executed
    )
    return len(executed)


@dataclass
class Delivery:
    """A connector batch unpacked into jobs: single-job entries and bundles, each job validated on its own.

    An entry that is not a job or a bundle at all is rejected whole. A bundle with invalid jobs is answered as
    rejected too, but only after its valid jobs are stored, and with every invalid job listed (index, reason,
    the job as sent): the connector dead-letters each of those jobs by itself and acknowledges the entry, so a
    bad job neither blocks nor silently drops the good ones, and replaying the entry re-runs nothing stored.
    """

    jobs: list[CheckJob] = field(default_factory=list)
    processed: list[str] = field(default_factory=list)
    rejected: list[dict] = field(default_factory=list)

    def reply(self, **extra: Any) -> JSONResponse:
        return JSONResponse({"processed": self.processed, "rejected": self.rejected, **extra})


def _reason(error: ValidationError, prefix: str = "") -> str:
    """The first error's message naming its field, the field prefixed (a job's place in its bundle)."""
    described = validation_error_to_api_error(error)
    if not prefix:
        return described.message
    return f"{prefix}.{described.message}" if described.field else f"{prefix}: {described.message}"


def _validate_job(raw: Any, prefix: str = "") -> CheckJob | str:
    """A job, or the reason it is not one (naming the field, under prefix for a job inside a bundle)."""
    try:
        job = CheckJob.model_validate(raw)
    except ValidationError as error:
        return _reason(error, prefix)
    if job.type not in CHECK_TYPES:
        where = f"{prefix}.type" if prefix else "type"
        return f"{where}: unknown check type '{job.type}'"
    return job


def unpack_jobs(data: dict) -> Delivery:
    """Validates a connector batch ({"messages": [{"id", "data"}]}) entry by entry and job by job."""
    delivery = Delivery()
    for index, message in enumerate(data["messages"]):
        message_id = message.get("id") if isinstance(message, dict) else None
        if not isinstance(message_id, str):
            raise ApiError(400, "validation_error", f"messages.{index}.id: is required")
        payload = message.get("data")
        if not (isinstance(payload, dict) and payload.get("kind") == streams.BUNDLE_KIND):
            job = _validate_job(payload)
            if isinstance(job, str):
                delivery.rejected.append({"id": message_id, "error": job})
            else:
                delivery.jobs.append(job)
                delivery.processed.append(message_id)
            continue
        try:
            bundle = CheckJobBundle.model_validate(payload)
        except ValidationError as error:
            delivery.rejected.append({"id": message_id, "error": _reason(error)})
            continue
        invalid = []
        for position, raw in enumerate(bundle.job_envelopes()):
            job = _validate_job(raw, f"jobs.{position}")
            if isinstance(job, str):
                invalid.append({"index": position, "error": job, "job": raw})
            else:
                delivery.jobs.append(job)
        if invalid:
            delivery.rejected.append(
                {
                    "id": message_id,
                    "error": f"{len(invalid)} of {len(bundle.jobs)} jobs in the bundle are invalid "
                    f"(the others ran and were stored); first: {invalid[0]['error']}",
                    "jobs": invalid,
                }
            )
        else:
            delivery.processed.append(message_id)
    return delivery


def check_function_handler(group_size: Callable[[], int] | None = None):
    """The handler every check function serves: a connector batch of jobs and bundles, or one check given directly.

    group_size: run a batch a few jobs at a time, each group stored and announced before the next starts
    (browser journeys take minutes; a job's timeout must not be spent queueing behind the others).
    """

    @json_endpoint
    async def handle(request: Request):
        data = await read_json(request)
        if is_connector_batch(data):
            delivery = unpack_jobs(data)
            jobs = delivery.jobs
            step = max(1, group_size() if group_size else len(jobs))
            executed = 0
            for start in range(0, len(jobs), step):
                executed += await execute_jobs(jobs[start : start + step])
            return delivery.reply(executed=executed)
        direct = parse(DirectCheck, data)
        return (await run_check(direct.as_job())).model_dump(by_alias=True)

    return handle
