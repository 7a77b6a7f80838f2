"""metrics: Prometheus / OpenMetrics exposition of monitors and the pipeline, for a project key or the operator token."""

from starlette.requests import Request
from starlette.responses import Response

from shared.metrics.app import handle as expose_metrics


async def handle(request: Request) -> Response:
    return await expose_metrics(request)
