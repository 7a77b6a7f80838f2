"""schedule: a cron call (empty body) dispatches due monitors, ticking through a window; a caller with an API key
runs its project's monitors now ({"monitorIds": [...]} and/or {"tag": ...}); a signed internal call may do both."""

from starlette.requests import Request

from shared.api.requests import RunNowRequest, RunRequest
from shared.errors import ApiError
from shared.handlers import Caller, identify_caller, json_endpoint, parse, read_json
from shared.pipeline.schedule import TickReport, run_now, schedule_tick, schedule_window
from shared.settings import get_settings


async def _run_in_project(caller: Caller, body: RunNowRequest) -> dict:
    """The API's run-now, by id and/or tag: another project's ids are 404, as if absent."""
    from shared.api.services.monitors import monitor_ids_for

    if not body.monitor_ids and not body.tag:
        raise ApiError(400, "validation_error", "monitorIds: give monitorIds, a tag, or both", "monitorIds")
    ids = await monitor_ids_for(caller.project_id, body.monitor_ids, body.tag)
    report = await run_now(ids) if ids else TickReport()
    return {**report.as_json(), "monitorIds": [str(monitor_id) for monitor_id in ids]}


@json_endpoint
async def handle(request: Request) -> dict:
    caller = await identify_caller(request, cron=True)
    if caller.kind == "key":
        return await _run_in_project(caller, parse(RunNowRequest, await read_json(request, allow_empty=True)))
    body = parse(RunRequest, await read_json(request, allow_empty=True))
    if body.monitor_ids:  # signed internal calls only: the system's own run-now, any project
        return (await run_now(body.monitor_ids)).as_json()
    window = (
        body.window_seconds if body.window_seconds is not None else get_settings().schedule_window_seconds
    )
    if window > 0:
        return (await schedule_window(window, body.tick_seconds)).as_json()
    return (await schedule_tick()).as_json()
