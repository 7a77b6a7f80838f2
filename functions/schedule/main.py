"""schedule: a cron tick (empty body) dispatches due monitors; {"monitorIds": [...]} runs monitors now."""

from starlette.requests import Request

from shared.handlers import json_endpoint, parse, read_json
from shared.models import RunRequest
from shared.scheduling import run_now, schedule_tick


@json_endpoint
async def handle(request: Request) -> dict:
    body = parse(RunRequest, await read_json(request, allow_empty=True))
    report = await (run_now(body.monitor_ids) if body.monitor_ids else schedule_tick())
    return report.as_json()
