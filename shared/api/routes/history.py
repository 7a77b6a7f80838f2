"""The api function's history endpoints (tag "history"): alert deliveries, a monitor's incidents, and the
regional figures the dashboard shows."""

from __future__ import annotations

from shared.api.framework import Context, LazyModule, as_uuid, endpoint
from shared.api.requests import AlertHistoryQuery, IncidentsQuery, MonitorAlertsQuery, RegionsQuery
from shared.api.schemas import AlertPage, IncidentPage, RegionsReport

alerts = LazyModule("shared.api.services.alerts")
incidents = LazyModule("shared.api.services.incidents")
regions = LazyModule("shared.api.services.regions")


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
