"""The api function's history endpoints (tag "history"): alert deliveries, a monitor's incidents, and the
regional figures and pipeline health the dashboard shows."""

from __future__ import annotations

from shared.api.framework import Context, LazyModule, as_uuid, endpoint
from shared.api.requests import AlertHistoryQuery, IncidentsQuery, MonitorAlertsQuery, RegionsQuery
from shared.api.schemas import AlertPage, IncidentPage, RegionsHealthReport, RegionsReport

alerts = LazyModule("shared.api.services.alerts")
incidents = LazyModule("shared.api.services.incidents")
regions = LazyModule("shared.api.services.regions")
regional_health = LazyModule("shared.api.services.regional_health")


@endpoint(
    "GET",
    "/alerts",
    summary="Alert history: every delivery to every provider, newest first (filter by monitor, status, kind, time)",
    tag="history",
    query=AlertHistoryQuery,
    response=AlertPage,
)
async def list_alerts(ctx: Context):
    return await alerts.alert_page(ctx.project_id, ctx.query)


@endpoint(
    "GET",
    "/monitors/{monitor_id}/alerts",
    summary="A monitor's alert history, newest first (filter by status, kind, time)",
    tag="history",
    query=MonitorAlertsQuery,
    response=AlertPage,
)
async def monitor_alerts(ctx: Context, monitor_id: str):
    return await alerts.monitor_alert_page(ctx.project_id, as_uuid(monitor_id, "monitor"), ctx.query)


@endpoint(
    "GET",
    "/monitors/{monitor_id}/incidents",
    summary="A monitor's incidents (down or degraded periods) touching the last `days`, newest first",
    tag="history",
    query=IncidentsQuery,
    response=IncidentPage,
)
async def monitor_incidents(ctx: Context, monitor_id: str):
    return await incidents.incident_page(ctx.project_id, as_uuid(monitor_id, "monitor"), ctx.query)


@endpoint(
    "GET",
    "/regions",
    summary="Per location over the last `hours`: checks, uptime, mean and p95 response time, failing monitors",
    tag="history",
    query=RegionsQuery,
    response=RegionsReport,
)
async def list_regions(ctx: Context):
    return await regions.regions_report(ctx.project_id, ctx.query.hours)


@endpoint(
    "GET",
    "/regions/health",
    summary="Per configured region: its Redis reachable, its connector's heartbeat age, its check functions "
    "reachable, its job streams' backlog, and an overall ok (regions probed concurrently, each within 2 s)",
    tag="history",
    response=RegionsHealthReport,
)
async def regions_health(ctx: Context):
    # the pipeline is every project's: any key may see it, and it names no address or secret
    return await regional_health.regions_health()
