"""The connector's batch protocol, both ends of a function's POST: the batch it sends ({"messages": [{"id",
"data"}]}) read entry by entry, and the answer it acts on ({"processed": ids, "rejected": [{"id", "error",
"jobs"?}]}): processed entries are acknowledged, rejected ones dead-lettered with their reason. Used by every
function the connector feeds (check functions, aggregate, alert)."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.responses import JSONResponse

from shared import streams
from shared.checks import CHECK_TYPES
from shared.errors import ApiError, validation_error_to_api_error
from shared.models import CheckJob, CheckJobBundle

M = TypeVar("M", bound=BaseModel)


@dataclass
class Batch:
    """A connector batch read: what validated (envelopes, or jobs taken out of their bundles), the ids of the
    entries wholly handled, and the entries rejected with their reason (to dead-letter)."""

    items: list[Any] = field(default_factory=list)
    processed: list[str] = field(default_factory=list)
    rejected: list[dict] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)  # the entry each item came from

    def add(self, item: Any, message_id: str) -> None:
        self.items.append(item)
        self.sources.append(message_id)

    def refuse(self, index: int, reason: str) -> None:
        """Item `index` failed where it was handled: its entry is rejected (dead-lettered) with the reason."""
        message_id = self.sources[index]
        self.processed = [mid for mid in self.processed if mid != message_id]
        self.rejected.append({"id": message_id, "error": reason})

    def reply(self, unfinished: Collection[str] = (), **extra: Any) -> JSONResponse:
        """The answer; entries `unfinished` are in neither list, so the connector delivers them again."""
        return JSONResponse(
            {
                "processed": [message_id for message_id in self.processed if message_id not in unfinished],
                "rejected": [item for item in self.rejected if item["id"] not in unfinished],
                **extra,
            }
        )


def is_connector_batch(data: Any) -> bool:
    return isinstance(data, dict) and isinstance(data.get("messages"), list)


def batch_stream(data: Any) -> str | None:
    """The stream a connector batch comes from (the connector posts each stream's entries apart)."""
    first = data["messages"][0] if data["messages"] else None
    return first.get("stream") if isinstance(first, dict) else None


def _entries(data: Any) -> Iterator[tuple[str, Any]]:
    """Each entry's (id, data); a batch that is not one, or an entry without its id, is refused whole (400)."""
    if not is_connector_batch(data):
        raise ApiError(
            400, "validation_error", "messages: is required (a list of connector messages)", "messages"
        )
    for index, message in enumerate(data["messages"]):
        message_id = message.get("id") if isinstance(message, dict) else None
        if not isinstance(message_id, str):
            raise ApiError(400, "validation_error", f"messages.{index}.id: is required")
        yield message_id, message.get("data")


def _reason(error: ValidationError, prefix: str = "") -> str:
    """The first error's message naming its field, the field prefixed (a job's place in its bundle)."""
    described = validation_error_to_api_error(error)
    if not prefix:
        return described.message
    return f"{prefix}.{described.message}" if described.field else f"{prefix}: {described.message}"


def parse_batch(data: Any, model: type[M]) -> Batch:
    """A batch of one envelope per entry (results for aggregate, alerts for alert)."""
    batch = Batch()
    for message_id, payload in _entries(data):
        try:
            batch.add(model.model_validate(payload), message_id)
        except ValidationError as error:
            batch.rejected.append({"id": message_id, "error": _reason(error)})
        else:
            batch.processed.append(message_id)
    return batch


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


def parse_job_batch(data: Any) -> Batch:
    """A check function's batch: single jobs and bundles, each job validated on its own.

    An entry that is not a job or a bundle at all is rejected whole. A bundle with invalid jobs is answered as
    rejected too, but only after its valid jobs are stored, and with every invalid job listed (index, reason,
    the job as sent): the connector dead-letters each of those jobs by itself and acknowledges the entry, so a
    bad job neither blocks nor silently drops the good ones, and replaying the entry re-runs nothing stored.
    """
    batch = Batch()
    for message_id, payload in _entries(data):
        if not (isinstance(payload, dict) and payload.get("kind") == streams.BUNDLE_KIND):
            job = _validate_job(payload)
            if isinstance(job, str):
                batch.rejected.append({"id": message_id, "error": job})
            else:
                batch.add(job, message_id)
                batch.processed.append(message_id)
            continue
        try:
            bundle = CheckJobBundle.model_validate(payload)
        except ValidationError as error:
            batch.rejected.append({"id": message_id, "error": _reason(error)})
            continue
        invalid = []
        for position, raw in enumerate(bundle.job_envelopes()):
            job = _validate_job(raw, f"jobs.{position}")
            if isinstance(job, str):
                invalid.append({"index": position, "error": job, "job": raw})
            else:
                batch.add(job, message_id)
        if invalid:
            batch.rejected.append(
                {
                    "id": message_id,
                    "error": f"{len(invalid)} of {len(bundle.jobs)} jobs in the bundle are invalid "
                    f"(the others ran and were stored); first: {invalid[0]['error']}",
                    "jobs": invalid,
                }
            )
        else:
            batch.processed.append(message_id)
    return batch
