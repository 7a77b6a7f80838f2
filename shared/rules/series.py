"""Which stored data answers a response-time chart (pure): each range's span and bucket, and the tiers it reads,
split at the rollup watermarks so every result is counted in exactly one tier. Used by shared/api/services/series.py.

Reads take a tier up to its watermark (`rollup_daily_through`, `rollup_hourly_through`) and the next finer tier
from there: the daily tier holds every complete day before its mark, the hourly tier every settled hour before its
own, and raw results are deleted only behind the daily mark (shared.rules.retention.deletion_cutoff), so the
finer tier always holds what the coarser one does not yet."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from shared.rules.retention import DAY, HOUR, UTC_ORIGIN

Source = Literal["daily", "hourly", "raw"]
TIER_BUCKET: dict[Source, timedelta] = {"daily": DAY, "hourly": HOUR}
_FINER: dict[Source, list[Source]] = {
    "daily": ["daily", "hourly", "raw"],
    "hourly": ["hourly", "raw"],
    "raw": ["raw"],
}


@dataclass(frozen=True)
class RangePlan:
    span: timedelta
    bucket: timedelta | None  # None: one point per raw result
    tier: Source  # the coarsest tier read; the finer ones fill in after its watermark


# 24h reads raw results in 15-minute buckets rather than hourly rollups: raw results always cover the last day
# (retention keeps at least one whole day), a day of them per location is a short index range, and 24 hourly
# points would be too coarse to show an incident of a few minutes.
# keyed by shared.api.requests.SeriesRange
PLANS: dict[str, RangePlan] = {
    "1h": RangePlan(timedelta(hours=1), None, "raw"),
    "24h": RangePlan(timedelta(hours=24), timedelta(minutes=15), "raw"),
    "7d": RangePlan(timedelta(days=7), HOUR, "hourly"),
    "30d": RangePlan(timedelta(days=30), DAY, "daily"),
    "90d": RangePlan(timedelta(days=90), DAY, "daily"),
}

# The monitor list's 24-hour summary: the 24 clock hours up to now (the current one partial), one point each.
SUMMARY_PLAN = RangePlan(timedelta(hours=23), HOUR, "hourly")


@dataclass(frozen=True)
class Segment:
    """[start, end) read from `source`; `whole_buckets` when each of its rows is one bucket of the chart, so its
    stored figures (p95 included) stand as they are; otherwise its rows are merged into the chart's buckets."""

    source: Source
    start: datetime
    end: datetime
    whole_buckets: bool


def floor_to(moment: datetime, bucket: timedelta) -> datetime:
    return UTC_ORIGIN + bucket * ((moment - UTC_ORIGIN) // bucket)


def range_start(plan: RangePlan, now: datetime) -> datetime:
    """Bucketed ranges start on a bucket boundary, so the first bucket is whole (and a rollup row is never split)."""
    since = now - plan.span
    return floor_to(since, plan.bucket) if plan.bucket else since


def plan_segments(
    plan: RangePlan, now: datetime, hourly_through: datetime | None, daily_through: datetime | None
) -> list[Segment]:
    """The range cut into consecutive, non-overlapping segments, coarsest tier first; empty ones left out. A tier
    with no watermark yet (nothing rolled up) contributes nothing, and the next finer one starts where it would."""
    marks: dict[Source, datetime | None] = {"daily": daily_through, "hourly": hourly_through, "raw": now}
    cursor = range_start(plan, now)
    segments = []
    for source in _FINER[plan.tier]:
        mark = marks[source]
        end = now if source == "raw" else min(max(mark or cursor, cursor), now)
        if end > cursor:
            whole = source != "raw" and TIER_BUCKET[source] == plan.bucket
            segments.append(Segment(source, cursor, end, whole))
        cursor = end
    return segments


def phases_start(since: datetime, raw_complete_from: datetime | None) -> datetime:
    """Timing phases exist only in raw results (rollups keep response times alone): from where raw data starts."""
    return since if raw_complete_from is None else max(since, raw_complete_from)
