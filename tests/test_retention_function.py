"""POST /function/cleanup through the local gateway: dry run, manual run, cron call, bad bodies, a busy lock."""

from __future__ import annotations

import httpx
import psycopg
import pytest

from shared.pipeline.cleanup import CLEANUP_LOCK
from tests.factories import default_project

# Each monitor: a result 40 days old, one 40 days old that flipped the status, and one from yesterday.
_SEED = """
with m as (
    insert into monitors (project_id, name, type, target, frequency_minutes)
    values (%s, 'Old', 'http_request', 'http://127.0.0.1:9/', 5)
    returning id
),
r as (
    insert into runs (monitor_id, scheduled_at, expected_locations, deadline, finalized_at, status)
    select m.id, now() - make_interval(days => d), '{us-east}', now(), now(), 'up'
    from m, unnest(array[40, 41, 1]) d
    returning id, monitor_id, scheduled_at
)
insert into monitor_results (run_id, monitor_id, location, status, checked_at, response_time_ms, is_status_change)
select r.id, r.monitor_id, 'us-east', 'up', r.scheduled_at, 50, r.scheduled_at < now() - interval '40 days 12 hours'
from r
returning monitor_id
"""


@pytest.fixture
def gateway(stack, clean):
    with httpx.Client(base_url=f"{stack.gateway_url}/function", timeout=120) as client:
        yield client


def test_a_dry_run_reports_per_monitor_and_deletes_nothing_then_a_manual_run_acts(gateway, clean):
    monitor_id = str(clean.sql(_SEED, (default_project(clean),))[0][0])
    dry = gateway.post("/cleanup", json={"dryRun": True})
    assert dry.status_code == 200, dry.text
    assert dry.json()["dryRun"] is True
    assert dry.json()["monitors"] == [
        {"monitorId": monitor_id, "resultsDeleted": 1, "statusChangesKept": 1, "runsDeleted": 1}
    ]
    assert clean.sql("select count(*) from monitor_results") == [(3,)]

    manual = gateway.post("/cleanup", json={})
    assert manual.status_code == 200, manual.text
    body = manual.json()
    assert body["dryRun"] is False and body["monitors"] == dry.json()["monitors"]
    assert body["rollups"]["daysRolled"] > 0 and body["artifacts"]["skipped"]
    assert clean.sql(
        "select count(*), bool_and(is_status_change or checked_at > now() - interval '2 days') from monitor_results"
    ) == [(2, True)]

    cron = gateway.post("/cleanup", content=b"")
    assert cron.status_code == 200 and cron.json()["resultsDeleted"] == 0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"dryRun": "perhaps"}, "dryRun"),
        ({"dryRun": True, "everything": True}, "everything"),
        ([True], "JSON object"),
    ],
)
def test_a_bad_body_is_refused_naming_the_field(gateway, body, message):
    response = gateway.post("/cleanup", json=body)
    assert response.status_code == 400
    assert message in response.json()["error"]["message"]


def test_while_another_run_holds_the_lock_a_manual_run_is_refused_and_a_cron_call_skips(gateway, clean):
    with psycopg.connect(clean.database_url, autocommit=True) as holder:
        holder.execute("select pg_advisory_lock(%s)", (CLEANUP_LOCK,))
        manual = gateway.post("/cleanup", json={})
        cron = gateway.post("/cleanup", content=b"")
        dry = gateway.post("/cleanup", json={"dryRun": True})
    assert manual.status_code == 409 and manual.json()["error"]["code"] == "cleanup_running"
    assert cron.status_code == 200 and cron.json() == {"skipped": "another cleanup run is in progress"}
    assert dry.status_code == 200, "a dry run needs no lock"
