"""api: the project-scoped management API under /function/api (see /function/api/openapi.json)."""

from starlette.requests import Request

from shared.api.app import RoutedResponse


async def handle(request: Request) -> RoutedResponse:
    return RoutedResponse(request)
