"""cleanup: the daily retention run (empty body, from cron), a manual run ({}), or {"dryRun": true} to only report;
with an API key the manual and dry runs act in the key's project only."""

from starlette.requests import Request
from starlette.responses import JSONResponse

from shared.errors import ApiError
from shared.handlers import identify_caller, json_endpoint, parse, read_json
from shared.pipeline.cleanup import CleanupBusy, run_cleanup
from shared.rules.retention import CleanupRequest, RetentionConfig
from shared.settings import get_settings


def _config() -> RetentionConfig:
    try:
        return RetentionConfig.from_variables(get_settings().monitor_variables)
    except ValueError as error:
        raise ApiError(500, "invalid_configuration", str(error)) from None


@json_endpoint
async def handle(request: Request):
    caller = await identify_caller(request, cron=True)
    from_cron = caller.kind == "cron"
    body = parse(CleanupRequest, await read_json(request, allow_empty=True))
    config = _config()
    if not body.dry_run and not config.enabled:
        if from_cron:
            return {"skipped": "cleanup is disabled (MONITOR_CLEANUP_ENABLED=false)"}
        raise ApiError(
            409, "cleanup_disabled", "cleanup is disabled (MONITOR_CLEANUP_ENABLED=false); dryRun still works"
        )
    try:
        report = await run_cleanup(dry_run=body.dry_run, config=config, project_id=caller.project_id)
    except CleanupBusy as busy:
        if from_cron:
            return JSONResponse({"skipped": str(busy)})
        raise ApiError(409, "cleanup_running", f"{busy}; try again when it has finished") from None
    return report.as_json()
