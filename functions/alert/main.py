"""alert: delivers alert events to each monitor's notification providers through Apprise."""

from starlette.requests import Request

from shared.handlers import json_endpoint, parse_batch, read_json
from shared.models import AlertEvent
from shared.notify import deliver


@json_endpoint
async def handle(request: Request):
    batch = parse_batch(await read_json(request), AlertEvent)
    counts = await deliver([event for _, event in batch.accepted])
    return batch.reply(**counts)
