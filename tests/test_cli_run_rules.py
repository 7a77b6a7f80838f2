"""The pure decisions of `supercheck test` and `trigger`: which monitors at which locations, how an answer
becomes a case, and when --wait is done with which exit code."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.cli.exits import ApiRefused
from shared.cli.testing import Trial, case_of, selected_monitors, trials_of
from shared.cli.trigger import describe_run, wait_outcome

NOW = datetime(2026, 12, 3, 14, 0, tzinfo=UTC)
A = {
    "key": "a",
    "name": "A",
    "type": "http_request",
    "target": "https://a.example/",
    "tags": ["smoke", "web"],
}
B = {
    "key": "b",
    "name": "B",
    "type": "port_check",
    "target": "db.example",
    "tags": ["db"],
    "locationConfig": {"locations": ["eu-central"]},
}
C = {"key": "c", "name": "C", "type": "http_request", "target": "https://c.example/"}


@pytest.mark.parametrize(
    "tags, keys",
    [((), ["a", "b", "c"]), (("smoke",), ["a"]), (("db", "web"), ["a", "b"]), (("none",), [])],
)
def test_tags_select_monitors_carrying_any_of_them(tags, keys):
    assert [m["key"] for m in selected_monitors([A, B, C], tags)] == keys


@pytest.mark.parametrize(
    "locations, planned",
    [
        ((), [("a", "direct"), ("b", "eu-central"), ("c", "direct")]),
        (("us-east", "asia-pacific"), [(k, loc) for k in "abc" for loc in ("us-east", "asia-pacific")]),
    ],
)
def test_each_monitor_runs_where_asked_else_where_it_says_else_direct(locations, planned):
    assert [(t.monitor["key"], t.location) for t in trials_of([A, B, C], locations)] == planned


def test_a_trial_sends_the_check_and_the_location_only():
    monitor = {**A, "frequencyMinutes": 5, "config": {"method": "HEAD"}}
    assert Trial(monitor, "us-east").body() == {
        "type": "http_request",
        "target": "https://a.example/",
        "config": {"method": "HEAD"},
        "location": "us-east",
    }


def test_an_answer_becomes_a_case_with_its_target_masked():
    monitor = {**A, "target": "https://a.example/x?token=abcdefghijkl"}
    case = case_of(Trial(monitor, "us-east"), {"status": "down", "message": "boom", "responseTimeMs": 12})
    assert (case.status, case.message, case.response_time_ms, case.failed) == ("down", "boom", 12, True)
    assert "abcdefghijkl" not in case.target


@pytest.mark.parametrize(
    "field, message, shown",
    [
        ("location", "location: 'mars' is not a location here", "location: 'mars' is not a location here"),
        ("target", "internal targets are blocked", "target: internal targets are blocked"),
        (None, "synthetic test not found", "synthetic test not found"),
    ],
)
def test_a_refusal_becomes_an_invalid_case_naming_its_field_once(field, message, shown):
    case = case_of(Trial(A, "direct"), None, ApiRefused(400, "validation_error", message, field))
    assert case.invalid and not case.failed and case.message == shown


def run(status=None, finalized=True, deadline_ago=0, **extra):
    return {
        "id": extra.pop("id", "r1"),
        "monitorId": extra.pop("monitor", "m1"),
        "status": status,
        "finalizedAt": NOW.isoformat() if finalized else None,
        "deadline": (NOW - timedelta(seconds=deadline_ago)).isoformat(),
        "results": extra.pop("results", []),
        "missingLocations": extra.pop("missing", []),
    }


NAMES = {"m1": "Shop", "m2": "Pay"}


@pytest.mark.parametrize(
    "runs, timed_out, code, text",
    [
        ([run("up"), run("degraded", monitor="m2")], False, 0, "2 runs ended up"),
        ([run("up"), run(finalized=False, monitor="m2")], False, None, None),
        ([run("down"), run(finalized=False, monitor="m2")], False, None, None),
        ([run("up"), run("down", monitor="m2")], False, 1, "1 of 2 runs ended down"),
        ([run("unknown", missing=["us-east"])], False, 1, "Shop: unknown (us-east missing)"),
        ([run(finalized=False, deadline_ago=-30)], True, 1, "timed out waiting for: Shop (run r1)"),
        ([run(finalized=False, deadline_ago=60)], True, 1, "timed out waiting for"),
        ([run(finalized=False, deadline_ago=120)], True, 3, "not finalizing them: Shop (run r1)"),
        ([run("down", monitor="m2"), run(finalized=False)], True, 1, "Pay: down"),
    ],
)
def test_wait_ends_when_every_run_is_final_or_time_is_up(runs, timed_out, code, text):
    outcome = wait_outcome(runs, NOW, NAMES, timed_out)
    if code is None:
        assert outcome is None
    else:
        assert outcome.exit_code == code and text in outcome.message


def test_a_run_is_described_by_the_locations_that_did_not_come_back_up():
    results = [
        {"location": "us-east", "status": "up", "message": "ok"},
        {"location": "eu-central", "status": "down", "message": "Received status code: 502"},
        {"location": "asia-pacific", "status": "timeout", "message": ""},
    ]
    assert describe_run(run("down", results=results), NAMES) == (
        "Shop: down (eu-central down: Received status code: 502; asia-pacific timeout)"
    )
    assert describe_run(run(finalized=False, monitor="m9"), NAMES) == "m9: open"
