"""status: the public status pages, their feeds and badges under /function/status, without a key."""

from starlette.requests import Request

from shared.status.app import StatusResponse


async def handle(request: Request) -> StatusResponse:
    return StatusResponse(request)
