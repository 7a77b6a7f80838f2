"""The api function's service endpoints (tag "service"): liveness and the OpenAPI document."""

from __future__ import annotations

from starlette.responses import JSONResponse

from shared.api.framework import Context, endpoint
from shared.api.schemas import Health


@endpoint(
    "GET", "/health", summary="Liveness; needs no key", tag="service", response=Health, authenticated=False
)
async def health(ctx: Context):
    return Health(status="ok")


@endpoint(
    "GET", "/openapi.json", summary="This API's OpenAPI 3.1 document", tag="service", authenticated=False
)
async def openapi(ctx: Context):
    from shared.api.openapi import openapi_document

    return JSONResponse(openapi_document())
