"""alert: delivers alert events to each monitor's notification providers through Apprise."""

from starlette.requests import Request

from shared.handlers import json_endpoint, read_json
from shared.models import AlertEnvelope
from shared.notify import deliver
from shared.pipeline.batch import parse_batch


@json_endpoint
async def handle(request: Request):
    batch = parse_batch(await read_json(request), AlertEnvelope)
    counts = await deliver([event for event in batch.items])
    return batch.reply(**counts)
