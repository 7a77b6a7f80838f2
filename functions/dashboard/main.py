"""dashboard: the operator's web pages under /function/dashboard, signed in with an API key."""

from starlette.requests import Request

from shared.dashboard.app import DashboardResponse


async def handle(request: Request) -> DashboardResponse:
    return DashboardResponse(request)
