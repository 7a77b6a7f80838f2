"""The api function's live events endpoint (tag "events"): Server-Sent Events from shared.api.live."""

from __future__ import annotations

from shared.api.framework import Context, LazyModule, endpoint
from shared.api.requests import EventsQuery

events = LazyModule("shared.api.live")


@endpoint(
    "GET",
    "/events",
    summary="Server-Sent Events: results, status changes, alerts; resumes from Last-Event-ID",
    tag="events",
    query=EventsQuery,
    streaming=True,
)
async def live_events(ctx: Context):
    return await events.stream(ctx)
