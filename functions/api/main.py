"""api: the management surface (monitors, results, notification providers) under /function/api."""

import re
import uuid
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse

from shared import monitors
from shared.handlers import json_endpoint, parse, read_json
from shared.models import ApiError, MonitorCreate, NotificationProviderCreate, ResultsQuery
from shared.scheduling import schedule_tick

Route = tuple[str, re.Pattern, Callable[..., Awaitable]]
ROUTES: list[Route] = []


def route(method: str, pattern: str):
    compiled = re.compile("^" + re.sub(r"{(\w+)}", r"(?P<\1>[^/]+)", pattern) + "/?$")

    def register(fn):
        ROUTES.append((method, compiled, fn))
        return fn

    return register


def _uuid(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ApiError(404, "not_found", f"{what} not found") from None


@route("GET", "/health")
async def health(request: Request):
    return {"status": "ok"}


@route("POST", "/monitors")
async def create_monitor(request: Request):
    spec = parse(MonitorCreate, await read_json(request))
    project_id = await monitors.default_project_id()
    row = await monitors.create_monitor(project_id, spec)
    if spec.enabled:
        await schedule_tick(only_ids=[row["id"]])  # the first run starts now, through the normal outbox
    return JSONResponse(monitors.monitor_json(row), status_code=201)


@route("GET", "/monitors/{monitor_id}")
async def get_monitor(request: Request, monitor_id: str):
    project_id = await monitors.default_project_id()
    return monitors.monitor_json(await monitors.get_monitor(project_id, _uuid(monitor_id, "monitor")))


@route("GET", "/monitors/{monitor_id}/results")
async def monitor_results(request: Request, monitor_id: str):
    query = parse(ResultsQuery, dict(request.query_params))
    project_id = await monitors.default_project_id()
    return await monitors.results_page(project_id, _uuid(monitor_id, "monitor"), query)


@route("POST", "/notification-providers")
async def create_provider(request: Request):
    spec = parse(NotificationProviderCreate, await read_json(request))
    project_id = await monitors.default_project_id()
    return JSONResponse(
        monitors.provider_json(await monitors.create_provider(project_id, spec)), status_code=201
    )


@json_endpoint
async def handle(request: Request):
    path = request.url.path.removeprefix("/function/api") or "/"
    allowed = []
    for method, pattern, endpoint in ROUTES:
        match = pattern.match(path)
        if match:
            if method == request.method:
                return await endpoint(request, **match.groupdict())
            allowed.append(method)
    if allowed:
        raise ApiError(
            405, "method_not_allowed", f"{request.method} is not allowed here; use {', '.join(allowed)}"
        )
    raise ApiError(404, "not_found", f"no route for {request.method} {path}")
