"""Turning each location's result into one run status (pure), and finalizing runs in the database."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

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
