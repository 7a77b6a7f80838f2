"""aggregate: finalizes runs as their results arrive, and writes heartbeat pings as they are accepted (signed
connector deliveries only, of sc:results or sc:pings); a cron call (empty body, unsigned) sweeps deadlines,
overdue heartbeats and the outbox."""

from starlette.requests import Request

from shared.handlers import identify_caller, json_endpoint, read_json
from shared.models import ResultEnvelope
from shared.pipeline.aggregate import finalize_runs, publish_pending_alerts, sweep_deadlines
from shared.pipeline.batch import batch_stream, is_connector_batch, parse_batch
from shared.pipeline.rollups import rollup_step
from shared.streams import PINGS_STREAM


@json_endpoint
async def handle(request: Request):
    await identify_caller(request, cron=True, keys=False)
    data = await read_json(request, allow_empty=True)
    if is_connector_batch(data) and batch_stream(data) == PINGS_STREAM:
        # ping batches only: result batches never load it
        from shared.heartbeats.record import record_ping_batch

        return await record_ping_batch(data)
    if is_connector_batch(data):
        batch = parse_batch(data, ResultEnvelope)
        finalized = await finalize_runs(event.run_id for event in batch.items)
        return batch.reply(finalized=finalized)
    from shared.heartbeats.sweep import sweep_overdue_heartbeats  # cron calls only: batches never load it

    overdue = await sweep_overdue_heartbeats()  # their down runs go out on sc:results, finalized as they come
    finalized = await sweep_deadlines()
    republished = await publish_pending_alerts()
    rolled = await rollup_step()  # a small step of the hourly/daily rollups; skipped while another runs
    return {
        "finalizedAtDeadline": finalized,
        "heartbeatsOverdue": overdue,
        "alertsRepublished": republished,
        "hoursRolledUp": rolled.hours_rolled,
        "daysRolledUp": rolled.days_rolled,
    }
