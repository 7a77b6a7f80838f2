"""Aggregation strategies as a table, ties included."""

from __future__ import annotations

import pytest

from shared.models import LocationConfig
from shared.rules.locations import aggregate_run, monitor_status_after

ALL3 = ["us-east", "eu-central", "asia-pacific"]


def statuses(*values: str) -> dict[str, str]:
    return dict(zip(ALL3, values, strict=False))


@pytest.mark.parametrize(
    ("strategy", "threshold", "reported", "expected_status", "partial"),
    [
        ("majority", 50, statuses("up", "up", "up"), "up", False),
        ("majority", 50, statuses("up", "up", "down"), "up", True),
        ("majority", 50, statuses("up", "down", "down"), "down", True),
        ("majority", 50, statuses("up", "down"), "down", True),  # tie: more than half is required
        ("majority", 50, statuses("up", "timeout", "error"), "down", True),
        ("all", 50, statuses("up", "up", "up"), "up", False),
        ("all", 50, statuses("up", "up", "down"), "down", True),
        ("any", 50, statuses("down", "down", "up"), "up", True),
        ("any", 50, statuses("down", "down", "down"), "down", False),
        ("custom", 66, statuses("up", "up", "down"), "up", True),  # 66.7% >= 66
        ("custom", 67, statuses("up", "up", "down"), "down", True),  # 66.7% < 67
        ("custom", 50, statuses("up", "down"), "up", True),  # tie: exactly the threshold passes
        ("majority", 50, statuses("degraded", "up", "up"), "degraded", False),
        ("majority", 50, statuses("degraded", "down", "down"), "down", True),
    ],
)
def test_strategy_table(strategy, threshold, reported, expected_status, partial):
    verdict = aggregate_run(reported, ALL3, LocationConfig(strategy=strategy, threshold=threshold))
    assert (verdict.status, verdict.is_partial) == (expected_status, partial)


def test_missing_locations_are_listed_and_the_run_is_judged_on_those_that_reported():
    verdict = aggregate_run({"us-east": "up"}, ALL3, LocationConfig(strategy="all"))
    assert verdict.status == "up"
    assert verdict.missing_locations == ("eu-central", "asia-pacific")
    assert verdict.locations_reported == 1


def test_a_run_where_no_location_reported_is_unknown():
    verdict = aggregate_run({}, ALL3, LocationConfig())
    assert verdict.status == "unknown" and verdict.missing_locations == tuple(ALL3)


@pytest.mark.parametrize(
    ("current", "verdict", "expected"),
    [
        ("up", "unknown", "up"),  # nobody reported: the target's state is not known to have changed
        ("down", "unknown", "down"),
        ("degraded", "unknown", "degraded"),
        ("pending", "unknown", "unknown"),  # a first run with no reports is shown as such
        ("up", "down", "down"),
        ("down", "up", "up"),
        ("pending", "up", "up"),
        ("up", "degraded", "degraded"),
    ],
)
def test_a_run_moves_its_monitor_status_unless_nobody_reported(current, verdict, expected):
    assert monitor_status_after(current, verdict) == expected
