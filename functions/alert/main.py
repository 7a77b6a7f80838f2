"""alert: sends alert events to each monitor's notification providers (shared/pipeline/alert.py); signed
connector deliveries only."""

from starlette.requests import Request

from shared.handlers import identify_caller, json_endpoint, read_json
from shared.models import AlertEnvelope
from shared.pipeline.alert import send_alerts
from shared.pipeline.batch import parse_batch


@json_endpoint
async def handle(request: Request):
    await identify_caller(request, keys=False)
    batch = parse_batch(await read_json(request), AlertEnvelope)
    counts = await send_alerts([event for event in batch.items])
    return batch.reply(**counts)
