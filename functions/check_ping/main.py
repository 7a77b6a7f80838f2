"""check-ping: runs a batch of ping (ICMP) check jobs from the connector, or one check given directly."""

from starlette.requests import Request

from shared.checks import run_check
from shared.execution import execute_jobs
from shared.handlers import is_connector_batch, json_endpoint, parse, parse_batch, read_json
from shared.models import CheckJob, DirectCheck


@json_endpoint
async def handle(request: Request):
    data = await read_json(request)
    if is_connector_batch(data):
        batch = parse_batch(data, CheckJob)
        executed = await execute_jobs([job for _, job in batch.accepted])
        return batch.reply(executed=executed)
    direct = parse(DirectCheck, data)
    outcome = await run_check(direct.as_job())
    return outcome.model_dump(by_alias=True)
