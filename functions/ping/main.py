"""ping: heartbeat pings in (Healthchecks' and Uptime Kuma's URL shapes), public: the token in the URL is the
credential."""

from starlette.requests import Request
from starlette.responses import Response

from shared.heartbeats.app import handle_ping


async def handle(request: Request) -> Response:
    return await handle_ping(request)
