"""Pure location decisions: where a run goes, how its locations' results make one status, and what a run
changes about its monitor. Used by the schedule function (shared/pipeline/schedule.py) and the aggregate
function (shared/pipeline/aggregate.py)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from shared.models import FAILED_STATUSES, LocationConfig


@dataclass(frozen=True)
class RunVerdict:
    status: str  # up | degraded | down | unknown
    is_partial: bool
    missing_locations: tuple[str, ...]
    locations_down: int
    locations_reported: int


def strategy_passes(up: int, reported: int, strategy: str, threshold: int) -> bool:
    """Ties: 'majority' needs strictly more than half, so 1 of 2 up is down; 'custom' passes at exactly threshold%."""
    if strategy == "all":
        return up == reported
    if strategy == "any":
        return up >= 1
    if strategy == "majority":
        return up * 2 > reported
    if strategy == "custom":
        return up * 100 >= threshold * reported
    raise ValueError(f"unknown strategy {strategy!r}")


def aggregate_run(
    statuses: Mapping[str, str], expected_locations: Sequence[str], location_config: LocationConfig
) -> RunVerdict:
    missing = tuple(loc for loc in expected_locations if loc not in statuses)
    reported = len(statuses)
    down = sum(1 for status in statuses.values() if status in FAILED_STATUSES)
    up = reported - down
    if reported == 0:
        return RunVerdict("unknown", False, missing, 0, 0)
    if not strategy_passes(up, reported, location_config.strategy, location_config.threshold):
        status = "down"
    elif any(status == "degraded" for status in statuses.values()):
        status = "degraded"
    else:
        status = "up"
    return RunVerdict(status, 0 < down < reported, missing, down, reported)


@lru_cache(maxsize=4096)
def _location_config(raw: str) -> LocationConfig:
    return LocationConfig.model_validate_json(raw)


def expected_locations(location_config: LocationConfig | dict | str, active_regions: list[str]) -> list[str]:
    """Where a run goes; location_config as stored (JSON text is parsed once per distinct value).

    Named locations are kept as named, known or not: a job for a location no region serves is dead-lettered by
    schedule and its run records the location missing, never quietly sent to another region instead.
    """
    if isinstance(location_config, LocationConfig):
        config = location_config
    else:
        raw = (
            location_config
            if isinstance(location_config, str)
            else json.dumps(location_config or {}, sort_keys=True)
        )
        config = _location_config(raw)
    if not config.enabled:
        return active_regions[:1]
    if not config.locations:
        return list(active_regions)
    return list(config.locations)


def monitor_status_after(current: str, verdict_status: str) -> str:
    """A run nobody reported on (unknown) says nothing about the target, so it keeps the monitor's status;
    only a monitor that has never had a verdict (pending) takes it."""
    if verdict_status == "unknown" and current != "pending":
        return current
    return verdict_status
