"""Pure verdict on one region's pipeline health (GET /regions/health, shared/api/services/regional_health.py): from
whether its Redis answered, its connector's last heartbeat (shared/pipeline/heartbeats.py) and its job streams'
backlog, to ok, degraded or down with the reasons."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

RegionStatus = Literal["ok", "degraded", "down"]

# A heartbeat is stale once this many of its own intervals passed without a newer one: one late beat (a slow
# probe, a GC pause) is not an outage, three are. Its key expires after TTL_INTERVALS, so a connector gone for
# good leaves no heartbeat at all.
STALE_AFTER_INTERVALS = 3
TTL_INTERVALS = 10
# Entries (each a bundle of up to CONNECTOR_BATCH_SIZE jobs) waiting or in flight before a region is degraded:
# a healthy connector keeps a region's job streams within a few batches of empty.
BACKLOG_DEGRADED_ENTRIES = 1000


@dataclass(frozen=True)
class HeartbeatFacts:
    """What the region's last heartbeat said, and how long ago it was written."""

    age_seconds: float
    interval_seconds: float
    connector_status: str  # the connector's own /health verdict: ok | degraded | failing
    loops: Mapping[str, str] = field(default_factory=dict)  # loop name -> condition
    check_functions: Mapping[str, bool] = field(default_factory=dict)  # function -> answered its probe


@dataclass(frozen=True)
class Backlog:
    """Across the region's job streams: entries kept, delivered but not acknowledged, and not yet delivered
    (lag None: this Redis cannot say, before 7.0, and entries arrived after the last delivery)."""

    length: int = 0
    pending: int = 0
    lag: int | None = 0

    @property
    def waiting(self) -> int:
        return self.pending + (self.lag or 0)


@dataclass(frozen=True)
class RegionFacts:
    redis_reachable: bool
    heartbeat: HeartbeatFacts | None = None
    heartbeat_unreadable: bool = False  # a value under the key that is no heartbeat this reader knows
    backlog: Backlog | None = None  # None when Redis did not answer


@dataclass(frozen=True)
class Reason:
    code: str
    message: str
    severity: RegionStatus  # degraded or down


@dataclass(frozen=True)
class RegionVerdict:
    status: RegionStatus
    reasons: tuple[Reason, ...]

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def stale_after_seconds(interval_seconds: float) -> float:
    return STALE_AFTER_INTERVALS * interval_seconds


def heartbeat_ttl_seconds(interval_seconds: float) -> int:
    return max(1, round(TTL_INTERVALS * interval_seconds))


def is_stale(age_seconds: float, interval_seconds: float) -> bool:
    return age_seconds > stale_after_seconds(interval_seconds)


def _heartbeat_reasons(facts: RegionFacts) -> list[Reason]:
    beat = facts.heartbeat
    if beat is None:
        if facts.heartbeat_unreadable:
            return [Reason("heartbeat_unreadable", "connector heartbeat unreadable", "degraded")]
        return [Reason("heartbeat_missing", "no connector heartbeat", "down")]
    if is_stale(beat.age_seconds, beat.interval_seconds):
        return [Reason("heartbeat_stale", f"heartbeat stale, {round(beat.age_seconds)} s ago", "down")]
    reasons = []
    if beat.connector_status != "ok":
        troubled = sorted(name for name, condition in beat.loops.items() if condition != "running")
        named = f": {', '.join(troubled)}" if troubled else ""
        reasons.append(Reason("connector_degraded", f"connector {beat.connector_status}{named}", "degraded"))
    unreachable = sorted(name for name, answered in beat.check_functions.items() if not answered)
    if unreachable:
        # none answering means nothing is checked in this region; some means some check types are not
        everyone = len(unreachable) == len(beat.check_functions)
        reasons.append(
            Reason(
                "check_functions_unreachable",
                f"check functions unreachable: {', '.join(unreachable)}",
                "down" if everyone else "degraded",
            )
        )
    return reasons


def judge_region(facts: RegionFacts, backlog_limit: int = BACKLOG_DEGRADED_ENTRIES) -> RegionVerdict:
    """Down: its Redis does not answer, no fresh heartbeat (nobody delivers its jobs), or none of its check
    functions answers. Degraded: the connector reports a loop in trouble, some check function does not answer, the
    heartbeat cannot be read, or more than backlog_limit entries wait. Ok otherwise."""
    if not facts.redis_reachable:
        return RegionVerdict("down", (Reason("redis_unreachable", "Redis unreachable", "down"),))
    reasons = _heartbeat_reasons(facts)
    if facts.backlog is not None and facts.backlog.waiting > backlog_limit:
        reasons.append(Reason("backlog", f"backlog {facts.backlog.waiting}", "degraded"))
    severities = {reason.severity for reason in reasons}
    status: RegionStatus = "down" if "down" in severities else "degraded" if reasons else "ok"
    return RegionVerdict(status, tuple(reasons))


def stream_lag(
    group_lag: int | None, last_generated_id: str | None, last_delivered_id: str | None
) -> int | None:
    """Entries not yet delivered to the group: Redis 7's own figure; before it, 0 when the group has delivered the
    newest entry, else unknown."""
    if group_lag is not None:
        return group_lag
    if last_generated_id is None or last_generated_id == last_delivered_id:
        return 0
    return None
