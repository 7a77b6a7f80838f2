"""Every API endpoint: parse (declared models), call the shared module that does the work, reply."""

from __future__ import annotations

from starlette.responses import JSONResponse

from shared.api.framework import Context, LazyModule, as_uuid, endpoint
from shared.api.requests import (
    ApiKeyCreate,
    EventsQuery,
    MaintenanceWindowCreate,
    MonitorCreate,
    MonitorListQuery,
    NotificationProviderCreate,
    PageQuery,
    ProjectCreate,
    ProjectVariableCreate,
    ProjectVariableUpdate,
    ProviderPatch,
    ResultsQuery,
    RunNowRequest,
    StatsQuery,
    SyntheticTestCreate,
    SyntheticTestUpdate,
    UptimeQuery,
)
from shared.api.schemas import (
    ApiKeyCreated,
    ApiKeyOut,
    AuditPage,
    Health,
    LocationStats,
    MonitorOut,
    MonitorPage,
    NotificationSettings,
    ProjectCreated,
    ProjectOut,
    ProjectVariableOut,
    ProviderOut,
    ProviderTestResult,
    ResultPage,
    RunOut,
    RunsStarted,
    SyntheticTestOut,
)
from shared.checks.spec import CheckTrial
from shared.errors import ApiError
from shared.handlers import read_json
from shared.models import CheckOutcome

# The modules that do the work load on the first request that calls them: a cold api function then pays only
# for what its first requests use (GET /health no database driver, GET /monitors no Apprise, Redis, HTTP client
# or browser runner). The table, with its light request and response models, is still built at import.
events = LazyModule("shared.api.live")
maintenance = LazyModule("shared.api.services.maintenance")
monitors = LazyModule("shared.api.services.monitors")
projects = LazyModule("shared.api.services.projects")
providers = LazyModule("shared.api.services.providers")
rollups = LazyModule("shared.pipeline.rollups")
scheduling = LazyModule("shared.pipeline.schedule")
synthetic_store = LazyModule("shared.synthetic.store")

# --- service -----------------------------------------------------------------------------------------


@endpoint(
    "GET", "/health", summary="Liveness; needs no key", tag="service", response=Health, authenticated=False
)
async def health(ctx: Context):
    return Health(status="ok")


@endpoint(
    "GET", "/openapi.json", summary="This API's OpenAPI 3.1 document", tag="service", authenticated=False
)
async def openapi(ctx: Context):
    from shared.api.openapi import openapi_document

    return JSONResponse(openapi_document())


# --- projects and keys -------------------------------------------------------------------------------


@endpoint("GET", "/project", summary="The project of the calling key", tag="projects", response=ProjectOut)
async def current_project(ctx: Context):
    return await projects.get_project(ctx.project_id)


@endpoint(
    "POST",
    "/projects",
    summary="Create a project; its first API key is shown once",
    tag="projects",
    body=ProjectCreate,
    response=ProjectCreated,
    status=201,
)
async def create_project(ctx: Context):
    return await projects.create_project(ctx.body.name, ctx.api_key_id)


@endpoint(
    "GET",
    "/api-keys",
    summary="List the project's API keys by prefix",
    tag="projects",
    response=list[ApiKeyOut],
)
async def list_keys(ctx: Context):
    return await projects.list_keys(ctx.project_id)


@endpoint(
    "POST",
    "/api-keys",
    summary="Create an API key; the key is shown once",
    tag="projects",
    body=ApiKeyCreate,
    response=ApiKeyCreated,
    status=201,
)
async def create_key(ctx: Context):
    return await projects.create_key(ctx.project_id, ctx.api_key_id, ctx.body.name)


@endpoint("DELETE", "/api-keys/{key_id}", summary="Revoke an API key", tag="projects", response=ApiKeyOut)
async def revoke_key(ctx: Context, key_id: str):
    return await projects.revoke_key(ctx.project_id, ctx.api_key_id, as_uuid(key_id, "API key"))


@endpoint(
    "GET",
    "/audit-log",
    summary="Every change in the project, newest first",
    tag="projects",
    query=PageQuery,
    response=AuditPage,
)
async def audit_log(ctx: Context):
    return await projects.audit_page(ctx.project_id, ctx.query.page, ctx.query.limit)


# --- monitors ----------------------------------------------------------------------------------------


@endpoint(
    "GET",
    "/monitors",
    summary="List monitors (filter by status, type, tag)",
    tag="monitors",
    query=MonitorListQuery,
    response=MonitorPage,
)
async def list_monitors(ctx: Context):
    return await monitors.list_monitors(ctx.project_id, ctx.query)


@endpoint(
    "POST",
    "/monitors",
    summary="Create a monitor; its first run starts at once",
    tag="monitors",
    body=MonitorCreate,
    response=MonitorOut,
    status=201,
)
async def create_monitor(ctx: Context):
    row = await monitors.create_monitor(ctx.project_id, ctx.api_key_id, ctx.body)
    if ctx.body.enabled:
        await scheduling.schedule_tick(
            only_ids=[row["id"]]
        )  # through the normal outbox, so the schedule stays aligned
    return monitors.monitor_out(await monitors.get_monitor(ctx.project_id, row["id"]))


@endpoint(
    "POST",
    "/monitors/test",
    summary="Try a check config once from the check function; stores nothing",
    tag="monitors",
    body=CheckTrial,
    response=CheckOutcome,
)
async def test_monitor(ctx: Context):
    from shared.api.services.trial import run_trial

    return await run_trial(ctx.body)


@endpoint(
    "GET",
    "/monitors/{monitor_id}",
    summary="A monitor and its current status",
    tag="monitors",
    response=MonitorOut,
)
async def get_monitor(ctx: Context, monitor_id: str):
    return monitors.monitor_out(await monitors.get_monitor(ctx.project_id, as_uuid(monitor_id, "monitor")))


@endpoint(
    "PUT",
    "/monitors/{monitor_id}",
    summary="Replace a monitor's definition",
    tag="monitors",
    body=MonitorCreate,
    response=MonitorOut,
)
async def replace_monitor(ctx: Context, monitor_id: str):
    return await _save(ctx, as_uuid(monitor_id, "monitor"), ctx.body)


@endpoint(
    "PATCH",
    "/monitors/{monitor_id}",
    summary="Change some of a monitor's fields",
    tag="monitors",
    response=MonitorOut,
)
async def patch_monitor(ctx: Context, monitor_id: str):
    from shared.handlers import parse

    current = await monitors.get_monitor(ctx.project_id, as_uuid(monitor_id, "monitor"))
    patch = await read_json(ctx.request)
    if not isinstance(patch, dict):
        raise ApiError(400, "validation_error", "request body must be a JSON object")
    merged = monitors.spec_of(current)
    if "config" in patch and "type" not in patch:
        patch = {**patch, "config": {**merged["config"], **(patch["config"] or {})}}
    spec = parse(MonitorCreate, {**merged, **patch})
    return await _save(ctx, current["id"], spec)


async def _save(ctx: Context, monitor_id, spec: MonitorCreate):
    row, redefined = await monitors.update_monitor(ctx.project_id, ctx.api_key_id, monitor_id, spec)
    if redefined:
        await scheduling.run_now([monitor_id])
    return monitors.monitor_out(row)


@endpoint(
    "DELETE", "/monitors/{monitor_id}", summary="Delete a monitor and its history", tag="monitors", status=204
)
async def delete_monitor(ctx: Context, monitor_id: str):
    await monitors.delete_monitor(ctx.project_id, ctx.api_key_id, as_uuid(monitor_id, "monitor"))


@endpoint(
    "POST",
    "/monitors/{monitor_id}/pause",
    summary="Stop scheduling a monitor",
    tag="monitors",
    response=MonitorOut,
)
async def pause_monitor(ctx: Context, monitor_id: str):
    return monitors.monitor_out(
        await monitors.set_enabled(ctx.project_id, ctx.api_key_id, as_uuid(monitor_id, "monitor"), False)
    )


@endpoint(
    "POST",
    "/monitors/{monitor_id}/resume",
    summary="Schedule a paused monitor again",
    tag="monitors",
    response=MonitorOut,
)
async def resume_monitor(ctx: Context, monitor_id: str):
    return monitors.monitor_out(
        await monitors.set_enabled(ctx.project_id, ctx.api_key_id, as_uuid(monitor_id, "monitor"), True)
    )


@endpoint(
    "POST",
    "/monitors/{monitor_id}/run",
    summary="Run one monitor now",
    tag="monitors",
    response=RunsStarted,
    status=202,
)
async def run_monitor_now(ctx: Context, monitor_id: str):
    monitor = await monitors.get_monitor(ctx.project_id, as_uuid(monitor_id, "monitor"))
    report = await scheduling.run_now([monitor["id"]])
    return RunsStarted(run_ids=report.run_ids, monitor_ids=[monitor["id"]])


@endpoint(
    "POST",
    "/monitors/run",
    summary="Run monitors now, by id and/or tag (CI after a deploy)",
    tag="monitors",
    body=RunNowRequest,
    response=RunsStarted,
    status=202,
)
async def run_monitors_now(ctx: Context):
    if not ctx.body.monitor_ids and not ctx.body.tag:
        raise ApiError(400, "validation_error", "monitorIds: give monitorIds, a tag, or both", "monitorIds")
    ids = await monitors.monitor_ids_for(ctx.project_id, ctx.body.monitor_ids, ctx.body.tag)
    report = await scheduling.run_now(ids) if ids else None
    return RunsStarted(run_ids=report.run_ids if report else [], monitor_ids=ids)


@endpoint(
    "GET",
    "/monitors/{monitor_id}/results",
    summary="A monitor's results, newest first",
    tag="results",
    query=ResultsQuery,
    response=ResultPage,
)
async def monitor_results(ctx: Context, monitor_id: str):
    return await monitors.results_page(ctx.project_id, as_uuid(monitor_id, "monitor"), ctx.query)


@endpoint(
    "GET",
    "/monitors/{monitor_id}/location-stats",
    summary="Uptime and response times per location",
    tag="results",
    query=StatsQuery,
    response=LocationStats,
)
async def location_stats(ctx: Context, monitor_id: str):
    return await monitors.location_stats(ctx.project_id, as_uuid(monitor_id, "monitor"), ctx.query.days)


@endpoint(
    "GET",
    "/monitors/{monitor_id}/uptime",
    summary="Uptime over up to a year, per UTC day (rollups beyond the raw window)",
    tag="results",
    query=UptimeQuery,
    response=lambda: rollups.UptimeReport,
)
async def monitor_uptime(ctx: Context, monitor_id: str):
    return await monitors.uptime(ctx.project_id, as_uuid(monitor_id, "monitor"), ctx.query.days)


@endpoint(
    "GET",
    "/runs/{run_id}",
    summary="One run: each location's result, missing locations, aggregated status",
    tag="results",
    response=RunOut,
)
async def get_run(ctx: Context, run_id: str):
    return await monitors.get_run(ctx.project_id, as_uuid(run_id, "run"))


@endpoint(
    "GET",
    "/monitors/{monitor_id}/notification-settings",
    summary="Providers this monitor notifies",
    tag="notifications",
    response=NotificationSettings,
)
async def get_notification_settings(ctx: Context, monitor_id: str):
    return await providers.get_settings_for(ctx.project_id, as_uuid(monitor_id, "monitor"))


@endpoint(
    "PUT",
    "/monitors/{monitor_id}/notification-settings",
    summary="Set the providers this monitor notifies",
    tag="notifications",
    body=NotificationSettings,
    response=NotificationSettings,
)
async def put_notification_settings(ctx: Context, monitor_id: str):
    return await providers.put_settings_for(
        ctx.project_id, ctx.api_key_id, as_uuid(monitor_id, "monitor"), ctx.body
    )


# --- notification providers --------------------------------------------------------------------------


@endpoint(
    "GET",
    "/notification-providers",
    summary="List notification providers (configs masked)",
    tag="notifications",
    response=list[ProviderOut],
)
async def list_providers(ctx: Context):
    return [providers.provider_out(row) for row in await providers.list_providers(ctx.project_id)]


@endpoint(
    "POST",
    "/notification-providers",
    summary="Create a notification provider",
    tag="notifications",
    body=NotificationProviderCreate,
    response=ProviderOut,
    status=201,
)
async def create_provider(ctx: Context):
    return providers.provider_out(await providers.create_provider(ctx.project_id, ctx.api_key_id, ctx.body))


@endpoint(
    "GET",
    "/notification-providers/{provider_id}",
    summary="A notification provider (config masked)",
    tag="notifications",
    response=ProviderOut,
)
async def get_provider(ctx: Context, provider_id: str):
    return providers.provider_out(
        await providers.get_provider(ctx.project_id, as_uuid(provider_id, "provider"))
    )


@endpoint(
    "PATCH",
    "/notification-providers/{provider_id}",
    summary="Change a provider's name, config or enabled",
    tag="notifications",
    body=ProviderPatch,
    response=ProviderOut,
)
async def patch_provider(ctx: Context, provider_id: str):
    row = await providers.update_provider(
        ctx.project_id, ctx.api_key_id, as_uuid(provider_id, "provider"), ctx.body
    )
    return providers.provider_out(row)


@endpoint(
    "DELETE",
    "/notification-providers/{provider_id}",
    summary="Delete a notification provider",
    tag="notifications",
    status=204,
)
async def delete_provider(ctx: Context, provider_id: str):
    await providers.delete_provider(ctx.project_id, ctx.api_key_id, as_uuid(provider_id, "provider"))


# --- live events -------------------------------------------------------------------------------------


@endpoint(
    "GET",
    "/events",
    summary="Server-Sent Events: results, status changes, alerts; resumes from Last-Event-ID",
    tag="events",
    query=EventsQuery,
    streaming=True,
)
async def live_events(ctx: Context):
    return await events.stream(ctx)


@endpoint(
    "POST",
    "/notification-providers/{provider_id}/test",
    summary="Send a sample alert through a provider now",
    tag="notifications",
    response=ProviderTestResult,
)
async def test_provider(ctx: Context, provider_id: str):
    return ProviderTestResult.model_validate(
        await providers.send_test_notification(ctx.project_id, as_uuid(provider_id, "notification provider"))
    )


# --- maintenance windows -----------------------------------------------------------------------------


@endpoint(
    "GET",
    "/maintenance-windows",
    summary="List maintenance windows",
    tag="maintenance",
    response=lambda: list[maintenance.MaintenanceWindowOut],
)
async def list_maintenance_windows(ctx: Context):
    return await maintenance.list_windows(ctx.project_id)


@endpoint(
    "POST",
    "/maintenance-windows",
    summary="Create a maintenance window (one-off or cron)",
    tag="maintenance",
    body=MaintenanceWindowCreate,
    response=lambda: maintenance.MaintenanceWindowOut,
    status=201,
)
async def create_maintenance_window(ctx: Context):
    return await maintenance.create_window(ctx.project_id, ctx.api_key_id, ctx.body)


@endpoint(
    "GET",
    "/maintenance-windows/{window_id}",
    summary="A maintenance window",
    tag="maintenance",
    response=lambda: maintenance.MaintenanceWindowOut,
)
async def get_maintenance_window(ctx: Context, window_id: str):
    return await maintenance.get_window(ctx.project_id, as_uuid(window_id, "maintenance window"))


@endpoint(
    "PUT",
    "/maintenance-windows/{window_id}",
    summary="Replace a maintenance window",
    tag="maintenance",
    body=MaintenanceWindowCreate,
    response=lambda: maintenance.MaintenanceWindowOut,
)
async def replace_maintenance_window(ctx: Context, window_id: str):
    return await maintenance.replace_window(
        ctx.project_id, ctx.api_key_id, as_uuid(window_id, "maintenance window"), ctx.body
    )


@endpoint(
    "DELETE",
    "/maintenance-windows/{window_id}",
    summary="Delete a maintenance window",
    tag="maintenance",
    status=204,
)
async def delete_maintenance_window(ctx: Context, window_id: str):
    await maintenance.delete_window(ctx.project_id, ctx.api_key_id, as_uuid(window_id, "maintenance window"))


# --- synthetic tests and project variables -------------------------------------------------------------


@endpoint(
    "GET",
    "/synthetic-tests",
    summary="List synthetic test scripts",
    tag="synthetic",
    response=list[SyntheticTestOut],
)
async def list_synthetic_tests(ctx: Context):
    return await synthetic_store.list_tests(ctx.project_id)


@endpoint(
    "POST",
    "/synthetic-tests",
    summary="Create a Playwright script (plain or scriptBase64)",
    tag="synthetic",
    body=SyntheticTestCreate,
    response=SyntheticTestOut,
    status=201,
)
async def create_synthetic_test(ctx: Context):
    return await synthetic_store.create_test(ctx.project_id, ctx.body, ctx.api_key_id)


@endpoint(
    "GET",
    "/synthetic-tests/{test_id}",
    summary="A synthetic test script",
    tag="synthetic",
    response=SyntheticTestOut,
)
async def get_synthetic_test(ctx: Context, test_id: str):
    return await synthetic_store.get_test(ctx.project_id, as_uuid(test_id, "synthetic test"))


@endpoint(
    "PATCH",
    "/synthetic-tests/{test_id}",
    summary="Change a script's title or code",
    tag="synthetic",
    body=SyntheticTestUpdate,
    response=SyntheticTestOut,
)
async def update_synthetic_test(ctx: Context, test_id: str):
    return await synthetic_store.update_test(
        ctx.project_id, as_uuid(test_id, "synthetic test"), ctx.body, ctx.api_key_id
    )


@endpoint(
    "DELETE",
    "/synthetic-tests/{test_id}",
    summary="Delete a script no monitor uses",
    tag="synthetic",
    status=204,
)
async def delete_synthetic_test(ctx: Context, test_id: str):
    await synthetic_store.delete_test(ctx.project_id, as_uuid(test_id, "synthetic test"), ctx.api_key_id)


@endpoint(
    "GET",
    "/variables",
    summary="List project variables (secrets masked)",
    tag="synthetic",
    response=list[ProjectVariableOut],
)
async def list_variables(ctx: Context):
    return await synthetic_store.list_variables(ctx.project_id)


@endpoint(
    "POST",
    "/variables",
    summary="Create a project variable, plain or secret",
    tag="synthetic",
    body=ProjectVariableCreate,
    response=ProjectVariableOut,
    status=201,
)
async def create_variable(ctx: Context):
    return await synthetic_store.create_variable(ctx.project_id, ctx.body, ctx.api_key_id)


@endpoint(
    "GET",
    "/variables/{name}",
    summary="A project variable (secret masked)",
    tag="synthetic",
    response=ProjectVariableOut,
)
async def get_variable(ctx: Context, name: str):
    return await synthetic_store.get_variable(ctx.project_id, name)


@endpoint(
    "PATCH",
    "/variables/{name}",
    summary="Change a variable's value or secrecy",
    tag="synthetic",
    body=ProjectVariableUpdate,
    response=ProjectVariableOut,
)
async def update_variable(ctx: Context, name: str):
    return await synthetic_store.update_variable(ctx.project_id, name, ctx.body, ctx.api_key_id)


@endpoint("DELETE", "/variables/{name}", summary="Delete a project variable", tag="synthetic", status=204)
async def delete_variable(ctx: Context, name: str):
    await synthetic_store.delete_variable(ctx.project_id, name, ctx.api_key_id)
