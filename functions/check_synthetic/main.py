"""check-synthetic: runs a batch of synthetic_test jobs from the connector, or one check given directly."""

from starlette.requests import Request

from shared.checks import run_check
from shared.execution import execute_jobs
from shared.handlers import is_connector_batch, json_endpoint, parse, parse_batch, read_json
from shared.models import CheckJob, DirectCheck
from shared.settings import get_settings


@json_endpoint
async def handle(request: Request):
    data = await read_json(request)
    if is_connector_batch(data):
        batch = parse_batch(data, CheckJob)
        jobs = [job for _, job in batch.accepted]
        # A few at a time, each group stored and announced before the next starts: a browser journey takes
        # seconds to minutes, and a job's hard timeout must not be spent queueing behind the others.
        step = get_settings().synthetic_concurrency
        executed = 0
        for start in range(0, len(jobs), step):
            executed += await execute_jobs(jobs[start : start + step])
        return batch.reply(executed=executed)
    direct = parse(DirectCheck, data)
    outcome = await run_check(direct.as_job())
    return outcome.model_dump(by_alias=True)
