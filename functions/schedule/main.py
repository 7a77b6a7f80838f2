"""schedule: a cron call dispatches due monitors (ticking through a window); {"monitorIds": [...]} runs them now."""

from starlette.requests import Request

from shared.api.requests import RunRequest
from shared.handlers import json_endpoint, parse, read_json
from shared.pipeline.schedule import run_now, schedule_tick, schedule_window
from shared.settings import get_settings


@json_endpoint
async def handle(request: Request) -> dict:
    body = parse(RunRequest, await read_json(request, allow_empty=True))
    if body.monitor_ids:
        return (await run_now(body.monitor_ids)).as_json()
    window = (
        body.window_seconds if body.window_seconds is not None else get_settings().schedule_window_seconds
    )
    if window > 0:
        return (await schedule_window(window, body.tick_seconds)).as_json()
    return (await schedule_tick()).as_json()
