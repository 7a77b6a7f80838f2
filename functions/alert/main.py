"""alert: sends alert events to each monitor's notification providers (shared/pipeline/alert.py); signed
connector deliveries only."""

from starlette.requests import Request

from shared.handlers import identify_caller, json_endpoint, read_json
from shared.models import AlertEnvelope
from shared.pipeline.alert import send_alert_batch
from shared.pipeline.batch import parse_batch


@json_endpoint
async def handle(request: Request):
    await identify_caller(request, keys=False)
    batch = parse_batch(await read_json(request), AlertEnvelope)
    counts, in_flight = await send_alert_batch([event for event in batch.items])
    # parse_batch lists an entry's id in processed in the order of its envelope in items
    batch.processed = [
        message_id
        for message_id, event in zip(batch.processed, batch.items, strict=True)
        if event.alert_event_id not in in_flight
    ]
    return batch.reply(**counts)
