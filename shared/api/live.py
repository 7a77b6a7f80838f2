"""Live events over Server-Sent Events, read from the sc:events Redis stream; Last-Event-ID resumes."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator

from starlette.responses import StreamingResponse

from shared import db, streams
from shared.api.framework import Context
from shared.errors import ApiError
from shared.redis import get_redis
from shared.settings import get_settings

_STREAM_ID = re.compile(r"^\d+-\d+$")
RECONNECT_MILLISECONDS = 2000
log = logging.getLogger("supercheck.api.live")


def keepalive_seconds() -> float:
    return get_settings().sse_keepalive_seconds


async def _monitor_project(cache: dict[str, uuid.UUID | None], monitor_id: str) -> uuid.UUID | None:
    if monitor_id not in cache:
        async with db.transaction() as conn:
            row = await (
                await conn.execute("select project_id from monitors where id = %s", (monitor_id,))
            ).fetchone()
        cache[monitor_id] = row["project_id"] if row else None
    return cache[monitor_id]


async def stream(ctx: Context) -> StreamingResponse:
    monitor_id = ctx.query.monitor_id
    if monitor_id is not None:
        async with db.transaction() as conn:
            found = await (
                await conn.execute(
                    "select 1 from monitors where id = %s and project_id = %s", (monitor_id, ctx.project_id)
                )
            ).fetchone()
        if not found:
            raise ApiError(404, "not_found", "monitor not found")
    resume_from = ctx.request.headers.get("last-event-id")
    if resume_from is not None and not _STREAM_ID.match(resume_from):
        raise ApiError(
            400, "validation_error", "Last-Event-ID: must be an event id this stream sent", "Last-Event-ID"
        )
    redis = get_redis()
    if resume_from is None:
        newest = await redis.xrevrange(streams.LIVE_EVENTS_STREAM, count=1)
        resume_from = newest[0][0] if newest else "0-0"
    return StreamingResponse(
        _events(ctx.project_id, str(monitor_id) if monitor_id else None, resume_from, ctx.query.wanted_types),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _parsed(fields: dict) -> dict | None:
    """A live event as its publisher wrote it, or None for an entry no publisher of ours wrote (skipped, so one
    bad entry never ends every reader's stream, nor every reconnect after it)."""
    try:
        event = json.loads(fields[streams.PAYLOAD_FIELD])
    except (KeyError, ValueError):
        return None
    return event if isinstance(event, dict) and isinstance(event.get("type"), str) else None


async def _events(
    project_id: uuid.UUID, monitor_id: str | None, cursor: str, types: frozenset[str] | None = None
) -> AsyncIterator[str]:
    redis = get_redis()
    owners: dict[str, uuid.UUID | None] = {}
    # retry: how soon the browser's EventSource comes back (with Last-Event-ID) after the stream ends
    yield f": connected\nretry: {RECONNECT_MILLISECONDS}\n\n"
    last_sent = time.monotonic()
    try:
        while True:
            reply = await redis.xread(
                {streams.LIVE_EVENTS_STREAM: cursor}, count=200, block=int(keepalive_seconds() * 1000)
            )
            for event_id, fields in reply[0][1] if reply else ():
                cursor = event_id
                event = _parsed(fields)
                if event is None or (types is not None and event["type"] not in types):
                    continue
                event_monitor = str(event.get("monitorId"))
                if monitor_id is not None and event_monitor != monitor_id:
                    continue
                if await _monitor_project(owners, event_monitor) != project_id:
                    continue
                last_sent = time.monotonic()
                yield f"id: {event_id}\nevent: {event['type']}\ndata: {json.dumps(event)}\n\n"
            # also while other projects' (or filtered) events keep the stream busy: proxies drop a silent one
            if time.monotonic() - last_sent >= keepalive_seconds():
                last_sent = time.monotonic()
                yield ": keep-alive\n\n"
    except Exception as error:  # noqa: BLE001 (any failure: the reader resumes from its last id)
        # Ending the response cleanly, rather than cutting it mid-chunk, lets the client reconnect from the last
        # event it got; a Redis or database hiccup under load then costs a reconnect, not a broken stream.
        log.warning("live events stream ended early, the client will resume: %s", error)
