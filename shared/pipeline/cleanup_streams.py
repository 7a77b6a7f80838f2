"""Cleanup's Redis part (shared.pipeline.cleanup): every stream of ours trimmed by age, never past an entry a
consumer group still needs; the per-monitor counters of monitors that no longer exist dropped."""

from __future__ import annotations

import logging
from datetime import datetime

from shared import db, streams
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
from shared.telemetry import FIELD_SEPARATOR, METRICS

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


async def prune_monitor_counters(report: CleanupReport, settings: Settings) -> None:
    """The per-monitor counters (checks and alerts by monitor, kept in Redis for the metrics function) of
    monitors deleted since: without this each hash grows with every monitor ever made. Fields are read before the
    monitors, so a monitor made meanwhile is among those kept; one deleted meanwhile goes at the next run."""
    scoped = [spec for spec in METRICS.values() if spec.scope == "monitor"]
    try:
        fields = {
            url: {
                spec.key: [field async for field, _ in get_redis(url).hscan_iter(spec.key)] for spec in scoped
            }
            for url in _redis_urls(settings)
        }
        async with db.transaction() as conn:
            rows = await (await conn.execute("select id from monitors")).fetchall()
        existing = {str(row["id"]) for row in rows}
        for url, by_key in fields.items():
            for key, names in by_key.items():
                gone = [name for name in names if name.split(FIELD_SEPARATOR, 1)[0] not in existing]
                report.monitor_counters_pruned += len(gone)
                if not report.dry_run:
                    for start in range(0, len(gone), 1000):
                        await get_redis(url).hdel(key, *gone[start : start + 1000])
    except Exception as error:  # a Redis outage must not hide what the database part did
        log.exception("pruning monitor counters failed")
        report.notes.append(f"pruning monitor counters failed: {type(error).__name__}")
