"""The api function's result endpoints (tag "results"): a monitor's results, location stats, uptime, response-time
series, certificate, runs."""

from __future__ import annotations

from starlette.responses import RedirectResponse

from shared.api.framework import Context, LazyModule, as_uuid, endpoint
from shared.api.requests import ResultsQuery, RunsQuery, SeriesQuery, StatsQuery, UptimeQuery
from shared.api.schemas import (
    CertificateReport,
    LocationStats,
    ResponseTimeSeries,
    ResultPage,
    RunList,
    RunOut,
)
from shared.errors import ApiError

results = LazyModule("shared.api.services.results")
long_range = LazyModule("shared.pipeline.long_range")
series = LazyModule("shared.api.services.series")


@endpoint(
    "GET",
    "/monitors/{monitor_id}/results",
    summary="A monitor's results, newest first",
    tag="results",
    query=ResultsQuery,
    response=ResultPage,
)
async def monitor_results(ctx: Context, monitor_id: str):
    return await results.results_page(ctx.project_id, as_uuid(monitor_id, "monitor"), ctx.query)


@endpoint(
    "GET",
    "/monitors/{monitor_id}/location-stats",
    summary="Uptime and response times per location",
    tag="results",
    query=StatsQuery,
    response=LocationStats,
)
async def location_stats(ctx: Context, monitor_id: str):
    return await results.location_stats(ctx.project_id, as_uuid(monitor_id, "monitor"), ctx.query.days)


@endpoint(
    "GET",
    "/monitors/{monitor_id}/uptime",
    summary="Uptime over up to a year, per UTC day (rollups beyond the raw window)",
    tag="results",
    query=UptimeQuery,
    response=lambda: long_range.UptimeReport,
)
async def monitor_uptime(ctx: Context, monitor_id: str):
    return await results.uptime(ctx.project_id, as_uuid(monitor_id, "monitor"), ctx.query.days)


@endpoint(
    "GET",
    "/monitors/{monitor_id}/response-times",
    summary="Response times per location: 1h raw points, 24h raw 15-minute buckets, 7d hourly, 30d/90d daily "
    "(rollups up to their watermark, finer data after it); timing phases from the same tiers",
    tag="results",
    query=SeriesQuery,
    response=ResponseTimeSeries,
)
async def monitor_response_times(ctx: Context, monitor_id: str):
    return await series.response_times(ctx.project_id, as_uuid(monitor_id, "monitor"), ctx.query.range)


@endpoint(
    "GET",
    "/monitors/{monitor_id}/certificate",
    summary="The latest TLS certificate the HTTP check read, per location (null without TLS)",
    tag="results",
    response=CertificateReport,
)
async def monitor_certificate(ctx: Context, monitor_id: str):
    return await series.certificate(ctx.project_id, as_uuid(monitor_id, "monitor"))


@endpoint(
    "GET",
    "/runs",
    summary="Several runs at once, by id (CI waiting for the runs it started to finalize)",
    tag="results",
    query=RunsQuery,
    response=RunList,
)
async def list_runs(ctx: Context):
    return RunList(data=await results.get_runs(ctx.project_id, ctx.query.run_ids))


@endpoint(
    "GET",
    "/runs/{run_id}",
    summary="One run: each location's result, missing locations, aggregated status",
    tag="results",
    response=RunOut,
)
async def get_run(ctx: Context, run_id: str):
    return await results.get_run(ctx.project_id, as_uuid(run_id, "run"))


@endpoint(
    "GET",
    "/monitors/{monitor_id}/results/{result_id}/artifacts/{name}",
    summary="A synthetic run's artifact (report.html, screenshot.png, trace.zip, ...): a redirect to a link "
    "valid for 15 minutes, so a private bucket stays private",
    tag="results",
    status=307,
)
async def result_artifact(ctx: Context, monitor_id: str, result_id: str, name: str):
    if not (result_id.isdigit() and len(result_id) <= 18):  # a bigint id
        raise ApiError(404, "not_found", "result not found")
    link = await results.artifact_link(ctx.project_id, as_uuid(monitor_id, "monitor"), int(result_id), name)
    return RedirectResponse(link, status_code=307, headers={"Cache-Control": "no-store"})
