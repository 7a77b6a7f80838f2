"""Cleanup's Redis part (shared.pipeline.cleanup): every stream of ours trimmed by age, never past an entry a
consumer group still needs."""

from __future__ import annotations

import logging
from datetime import datetime

from shared import streams
from shared.redis import get_redis
from shared.rules.retention import (
    CleanupReport,
    GroupState,
    RetentionConfig,
    StreamTrim,
    stream_cutoff,
    stream_trim_floor,
)
from shared.settings import Settings

log = logging.getLogger("supercheck.cleanup")


def _redis_urls(settings: Settings) -> list[str]:
    urls = [settings.require_redis_url()]
    urls += [url for url in settings.region_redis_urls.values() if url not in urls]
    return urls


async def _group_states(client, stream: str) -> list[GroupState]:
    states = []
    for group in await client.xinfo_groups(stream):
        pending = int(group["pending"])
        oldest = None
        if pending:
            summary = await client.xpending(stream, group["name"])
            oldest = summary["min"]
        states.append(GroupState(group["name"], group["last-delivered-id"], pending, oldest))
    return states


async def trim_streams(
    report: CleanupReport, config: RetentionConfig, settings: Settings, now: datetime
) -> None:
    """Every stream of ours in every Redis, trimmed by age with XTRIM MINID, never past a pending or
    undelivered entry of any consumer group."""
    try:
        for url in _redis_urls(settings):
            client = get_redis(url)
            async for stream in client.scan_iter(match=f"{streams.PREFIX}:*", _type="stream"):
                floor = stream_trim_floor(
                    stream_cutoff(stream, now, config), await _group_states(client, stream)
                )
                trim = StreamTrim(stream=stream, min_id=floor)
                if not report.dry_run:
                    trim.trimmed = await client.xtrim(stream, minid=floor, approximate=False)
                report.streams.append(trim)
    except Exception as error:  # a Redis outage must not hide what the database part did
        log.exception("stream trimming failed")
        report.notes.append(f"stream trimming failed: {type(error).__name__}")
    report.streams.sort(key=lambda trim: trim.stream)
