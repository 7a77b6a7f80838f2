"""The metrics function's HTTP side: who is scraping (a project's API key, or the operator's `metrics-token`),
which format (Prometheus text, or OpenMetrics when Accept asks), and renders kept per scope and format.

A render at 10,000 monitors is a few hundred thousand samples, and prometheus_client formats about one per 10 µs:
seconds of CPU. A render that took longer than METRICS_RENDER_BUDGET_SECONDS is served to the next scrape while a
fresh one is made in the background, so a scrape answers at once with figures one scrape interval old; a small
install (renders under the budget) always gets a fresh render. Nothing older than METRICS_MAX_STALE_SECONDS is
ever served: such a scrape waits for its render."""

from __future__ import annotations

import asyncio
import gzip
import hmac
import logging
import time
import uuid
from dataclasses import dataclass

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from shared.errors import ApiError
from shared.settings import get_settings

log = logging.getLogger("supercheck.metrics")

OPERATOR = "operator"
# Gzip level 1: a few percent larger than level 6 at a fraction of the CPU, and the body is re-made each render.
GZIP_LEVEL = 1


@dataclass(frozen=True)
class Scope:
    """What a scrape may see: one project's monitors, or (operator) every project's and the pipeline's."""

    project_id: uuid.UUID | None

    @property
    def key(self) -> str:
        return OPERATOR if self.project_id is None else str(self.project_id)


async def identify_scraper(request: Request) -> Scope:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if not header or scheme.lower() != "bearer" or not token.strip():
        # no anonymous mode here, not even locally: the exposition names every monitor of a project
        raise ApiError(401, "unauthorized", "metrics need 'Authorization: Bearer <API key or metrics token>'")
    operator_token = get_settings().metrics_token
    if operator_token and hmac.compare_digest(token.strip().encode(), operator_token.encode()):
        return Scope(None)
    from shared import auth  # the database driver loads with the first keyed scrape

    return Scope((await auth.authenticate(header)).project_id)


class _Families:
    """A registry's collector for families already built (no describe: the registry never collects twice)."""

    def __init__(self, families: list[Metric]):
        self.families = families

    def collect(self):
        return iter(self.families)


def expose(families: list[Metric], accept: str) -> tuple[bytes, str]:
    """The families in the format Accept asks for, by prometheus_client's own encoders."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(families))
    encoder, content_type = choose_encoder(accept)
    return encoder(registry), content_type


async def scope_families(scope: Scope) -> list[Metric]:
    from shared.metrics.monitors import monitor_families, read_fleet

    families = monitor_families(await read_fleet(scope.project_id))
    if scope.project_id is None:
        families.extend(await _operator_families())
    return families


async def _operator_families() -> list[Metric]:
    from shared.metrics.heartbeats import heartbeat_families
    from shared.metrics.pipeline import pipeline_families

    pipeline, heartbeats = await asyncio.gather(pipeline_families(), heartbeat_families())
    return [*pipeline, *heartbeats]


@dataclass
class Rendered:
    body: bytes
    gzipped: bytes
    content_type: str
    made_at: float  # monotonic
    render_seconds: float


def _render_blocking(families: list[Metric], accept: str) -> tuple[bytes, bytes, str]:
    body, content_type = expose(families, accept)
    return body, gzip.compress(body, compresslevel=GZIP_LEVEL), content_type


class Renders:
    """The last render per (scope, format), and the one being made, shared by the scrapes of this process."""

    def __init__(self) -> None:
        self.kept: dict[tuple[str, str], Rendered] = {}
        self.making: dict[tuple[str, str], asyncio.Task] = {}
        self.last_render_seconds: dict[tuple[str, str], float] = {}

    async def get(self, scope: Scope, accept: str) -> Rendered:
        _, content_type = choose_encoder(accept)
        key = (scope.key, content_type)
        settings = get_settings()
        kept = self.kept.get(key)
        if kept is not None and kept.render_seconds > settings.metrics_render_budget_seconds:
            if time.monotonic() - kept.made_at <= settings.metrics_max_stale_seconds:
                self._start(key, scope, accept)
                return kept
        return await asyncio.shield(self._start(key, scope, accept))

    def _start(self, key: tuple[str, str], scope: Scope, accept: str) -> asyncio.Task:
        task = self.making.get(key)
        if task is None or task.done():
            task = asyncio.create_task(self._render(key, scope, accept))
            self.making[key] = task
        return task

    async def _render(self, key: tuple[str, str], scope: Scope, accept: str) -> Rendered:
        started = time.monotonic()
        families = await scope_families(scope)
        families.append(self._self_family(key))
        # formatting is CPU-bound Python: off the event loop, so health checks and other scrapes still answer
        body, gzipped, content_type = await asyncio.to_thread(_render_blocking, families, accept)
        rendered = Rendered(body, gzipped, content_type, time.monotonic(), time.monotonic() - started)
        self.kept[key] = rendered
        self.last_render_seconds[key] = rendered.render_seconds
        return rendered

    def _self_family(self, key: tuple[str, str]) -> Metric:
        family = GaugeMetricFamily(
            "supercheck_metrics_render_seconds",
            "How long the previous render of this exposition took (reads and formatting).",
        )
        family.add_metric([], self.last_render_seconds.get(key, 0.0))
        return family


renders = Renders()


async def handle(request: Request) -> Response:
    if request.method not in ("GET", "HEAD"):
        return JSONResponse(
            ApiError(405, "method_not_allowed", "metrics are read with GET").body(), status_code=405
        )
    try:
        scope = await identify_scraper(request)
    except ApiError as error:
        return JSONResponse(error.body(), status_code=error.status, headers={"WWW-Authenticate": "Bearer"})
    try:
        rendered = await renders.get(scope, request.headers.get("accept", ""))
    except Exception:
        log.exception("metrics render failed")
        error = ApiError(503, "unavailable", "metrics could not be read; see the function's log")
        return JSONResponse(error.body(), status_code=503)
    headers = {
        "Cache-Control": "no-store",
        "Vary": "Accept, Accept-Encoding, Authorization",
        "Age": str(int(time.monotonic() - rendered.made_at)),  # how old the figures are (a kept render)
    }
    if "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        body = rendered.gzipped
    else:
        body = rendered.body
    return Response(
        body if request.method == "GET" else b"", media_type=rendered.content_type, headers=headers
    )
