"""The API as one Starlette router built from the endpoint table; functions/api hands each request to it."""

from __future__ import annotations

from functools import lru_cache

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, Router

from shared.api import routes  # noqa: F401  (registers the endpoints)
from shared.api.framework import ENDPOINTS, Endpoint, invoke
from shared.errors import ApiError
from shared.handlers import error_response

PUBLIC_PREFIX = "/function/api"


def _route(spec: Endpoint) -> Route:
    async def run(request: Request) -> Response:
        return await invoke(spec, request)

    return Route(spec.path, run, methods=[spec.method], name=spec.operation_id)


@lru_cache(maxsize=1)
def router() -> Router:
    async def not_found(scope, receive, send):
        message = f"no route for {scope['method']} {scope['path']}"
        await error_response(ApiError(404, "not_found", message))(scope, receive, send)

    built = Router(routes=[_route(spec) for spec in ENDPOINTS], default=not_found)
    return built


class RoutedResponse(Response):
    """Hands the untouched ASGI request to the router, so routing, bodies and streaming behave as in any app."""

    def __init__(self, request: Request):
        self.scope = {**request.scope, "path_params": {}}  # drop functions-framework's catch-all {path}
        path = self.scope["path"]
        if path.startswith(
            PUBLIC_PREFIX
        ):  # called directly rather than through a gateway that strips the prefix
            self.scope["path"] = path.removeprefix(PUBLIC_PREFIX) or "/"
        self.receive = request.receive

    async def __call__(self, scope, receive, send) -> None:
        await serve(self.scope, self.receive, send)


async def serve(scope, receive, send) -> None:
    """One ASGI request through the API: the api function's, and the dashboard's in-process calls."""
    await _method_aware(router(), scope, receive, send)


async def _method_aware(app: Router, scope, receive, send) -> None:
    """Starlette answers a wrong method with plain text; keep the one JSON error shape instead."""
    if scope["type"] == "http":
        from starlette.routing import Match

        partial = [route for route in app.routes if route.matches(scope)[0] == Match.PARTIAL]
        full = [route for route in app.routes if route.matches(scope)[0] == Match.FULL]
        if partial and not full:
            allowed = sorted({m for route in partial for m in (route.methods or []) if m != "HEAD"})
            error = ApiError(
                405, "method_not_allowed", f"{scope['method']} is not allowed here; use {', '.join(allowed)}"
            )
            await error_response(error)(scope, receive, send)
            return
    await app(scope, receive, send)
