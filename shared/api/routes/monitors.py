"""The api function's monitor endpoints (tag "monitors"): create, trial, read, change, pause, run, delete."""

from __future__ import annotations

from shared.api.framework import Context, LazyModule, as_uuid, endpoint
from shared.api.requests import (
    AlertPolicyBacktest,
    MonitorCreate,
    MonitorFilterQuery,
    MonitorListQuery,
    PageQuery,
    RunNowRequest,
)
from shared.api.schemas import (
    BacktestReply,
    HeartbeatPingPage,
    MonitorCounts,
    MonitorListPage,
    MonitorOut,
    RunsStarted,
)
from shared.checks import HEARTBEAT_TYPE
from shared.checks.spec import CheckTrial
from shared.errors import ApiError
from shared.handlers import read_json
from shared.models import CheckOutcome

monitors = LazyModule("shared.api.services.monitors")
scheduling = LazyModule("shared.pipeline.schedule")
series = LazyModule("shared.api.services.series")
backtests = LazyModule("shared.api.services.backtest")


@endpoint(
    "GET",
    "/monitors",
    summary="List monitors (filter by status, type, tag; search; sort; include=summary for 24-hour figures)",
    tag="monitors",
    query=MonitorListQuery,
    response=MonitorListPage,
)
async def list_monitors(ctx: Context):
    page = await monitors.list_monitors(ctx.project_id, ctx.query)
    if ctx.query.include == "summary" and page.data:
        found = await series.summaries([item.id for item in page.data])  # one query for the page's monitors
        for item in page.data:
            item.summary = found[item.id]
    return page


# A batch's monitors are created together or not at all; one request holds at most this many.
MONITORS_PER_BATCH = 20_000


@endpoint(
    "POST",
    "/monitors",
    summary=(
        "Create a monitor; its first run starts at once. An array creates up to 20,000 in one transaction (an"
        " invalid item refuses them all, its error naming its index: `[12].config.timeoutSeconds`), their first"
        " runs spread over their frequency, at most 100 a second, so a batch joins the schedule without a burst"
    ),
    tag="monitors",
    body=MonitorCreate,
    response=MonitorOut,
    status=201,
    batch_limit=MONITORS_PER_BATCH,
)
async def create_monitor(ctx: Context):
    if isinstance(ctx.body, list):
        return await _create_batch(ctx)
    row = await monitors.create_monitor(ctx.project_id, ctx.api_key_id, ctx.body)
    if ctx.body.enabled:
        await scheduling.schedule_tick(
            only_ids=[row["id"]]
        )  # through the normal outbox, so the schedule stays aligned
    return monitors.monitor_out(await monitors.get_monitor(ctx.project_id, row["id"]))


async def _create_batch(ctx: Context) -> list[MonitorOut]:
    rows = await monitors.create_monitors(ctx.project_id, ctx.api_key_id, ctx.body)
    enabled = [row["id"] for row in rows if row["enabled"]]
    if enabled:
        # the first runs due now go out at once, through the normal outbox; the tick claims only those due
        # within its lookahead, and cron's ticks take the others on their slots
        await scheduling.schedule_tick(only_ids=enabled)
    return [monitors.monitor_out(row) for row in rows]


@endpoint(
    "POST",
    "/monitors/test",
    summary="Try a check config once from the check function; stores nothing",
    tag="monitors",
    body=CheckTrial,
    response=CheckOutcome,
    operation_id="test_monitor",  # the published operationId, kept from before the handler was named for the trial
)
async def trial_check(ctx: Context):
    from shared.api.services.trial import run_trial

    return await run_trial(ctx.body, ctx.project_id)


# Registered before GET /monitors/{monitor_id}: the router takes the first route whose path matches.
@endpoint(
    "GET",
    "/monitors/summary",
    summary="How many monitors are in each status (paused: not enabled), with the list's type, tag and search",
    tag="monitors",
    query=MonitorFilterQuery,
    response=MonitorCounts,
)
async def monitor_status_counts(ctx: Context):
    return await monitors.status_counts(ctx.project_id, ctx.query)


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
    from shared.checks.credentials import Sealing
    from shared.handlers import parse

    current = await monitors.get_monitor(ctx.project_id, as_uuid(monitor_id, "monitor"))
    patch = await read_json(ctx.request)
    if not isinstance(patch, dict):
        raise ApiError(400, "validation_error", "request body must be a JSON object")
    merged = monitors.spec_of(current)
    # a config that is not an object is left whole for validation to refuse, naming the field
    if "config" in patch and "type" not in patch and isinstance(patch["config"], dict | None):
        patch = {**patch, "config": {**merged["config"], **(patch["config"] or {})}}
    # the stored config's own ciphertexts may stay; any other ciphertext in the body is refused
    spec = parse(
        MonitorCreate, {**merged, **patch}, Sealing.keeping(ctx.project_id, merged["config"]).context()
    )
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
    "GET",
    "/monitors/{monitor_id}/pings",
    summary="A heartbeat's pings, newest first, with their messages (request bodies up to 100 KB)",
    tag="monitors",
    query=PageQuery,
    response=HeartbeatPingPage,
)
async def list_pings(ctx: Context, monitor_id: str):
    return await monitors.list_pings(ctx.project_id, as_uuid(monitor_id, "monitor"), ctx.query)


@endpoint(
    "POST",
    "/monitors/{monitor_id}/ping-token/rotate",
    summary="Give a heartbeat a new ping token (its old ping URL answers 404 from now on)",
    tag="monitors",
    response=MonitorOut,
)
async def rotate_ping_token(ctx: Context, monitor_id: str):
    return monitors.monitor_out(
        await monitors.rotate_ping_token(ctx.project_id, ctx.api_key_id, as_uuid(monitor_id, "monitor"))
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
    if monitor["type"] == HEARTBEAT_TYPE:
        raise ApiError(400, "validation_error", "type: a heartbeat is not run: its job pings in", "type")
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
    "POST",
    "/monitors/{monitor_id}/alert-policy/backtest",
    summary="Replay the monitor's stored runs of the last `days` through a candidate alertConfig, by the rules "
    "live alerting uses; returns what it would have sent beside what was sent. Writes nothing",
    tag="monitors",
    body=AlertPolicyBacktest,
    response=BacktestReply,
)
async def backtest_alert_policy(ctx: Context, monitor_id: str):
    return await backtests.backtest(ctx.project_id, as_uuid(monitor_id, "monitor"), ctx.body)
