"""Multi-location runs: regional connectors, deadlines, ordered state, and the results filters."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from openfaas.local.runtime import LocalStack
from openfaas.local.services import free_port
from shared import streams
from shared.models import CheckJob
from shared.pipeline.aggregate import finalize_runs, sweep_deadlines
from shared.pipeline.check import execute_jobs
from shared.pipeline.schedule import schedule_tick
from tests.factories import LOCATIONS, insert_monitor, make_project, record_run
from tests.servers import wait_until


def across(locations: list[str], strategy: str = "majority") -> dict:
    """A monitor's location_config: checked from `locations`, its status decided by `strategy`."""
    return {"enabled": True, "locations": locations, "strategy": strategy, "threshold": 50}


@pytest.fixture
def regional_stacks(infra, clean, tmp_path_factory):
    """A primary (aggregate/alert, no checks) and two regional installs sharing one Redis."""
    started = []
    primary = LocalStack(
        env={"ALLOW_INTERNAL_TARGETS": "true"},
        log_dir=tmp_path_factory.mktemp("primary"),
        gateway_port=free_port(),
        with_cron=False,
        connector_env={"CONNECTOR_READ_JOBS": "false"},
        only_functions=["aggregate", "alert", "schedule", "api"],
    )
    started.append(primary.start())
    for location in ("us-east", "eu-central"):
        region = LocalStack(
            env={"ALLOW_INTERNAL_TARGETS": "true"},
            log_dir=tmp_path_factory.mktemp(location),
            gateway_port=free_port(),
            with_cron=False,
            only_functions=["check-http"],
            connector_env={"WORKER_LOCATION": location, "CONNECTOR_PRIMARY": "false"},
        )
        started.append(region.start())
    yield started
    for stack in started:
        stack.stop()


def test_a_regional_connector_reads_only_its_own_locations_streams(regional_stacks, clean, http_target):
    primary = regional_stacks[0]
    monitor_id = insert_monitor(
        clean, "loc", target=http_target.url, location_config=across(["us-east", "eu-central"])
    )
    httpx.post(f"{primary.gateway_url}/function/schedule", content=b"").raise_for_status()
    wait_until(
        lambda: clean.sql("select status from monitors where id = %s", (monitor_id,))[0][0] == "up",
        message="run finalized by the primary's aggregate",
    )
    assert sorted(r[0] for r in clean.sql("select location from monitor_results")) == [
        "eu-central",
        "us-east",
    ]
    r = clean.redis()
    job_streams = {
        location: streams.job_stream("http_request", location) for location in ("us-east", "eu-central")
    }
    # The run can finalize before the check function's answer reaches its connector, which acks only then.
    wait_until(
        lambda: all(
            r.xpending(stream, streams.CONSUMER_GROUP)["pending"] == 0 for stream in job_streams.values()
        ),
        message="both regions' jobs acknowledged",
    )
    readers = {
        location: {c["name"] for c in r.xinfo_consumers(stream, streams.CONSUMER_GROUP)}
        for location, stream in job_streams.items()
    }
    assert readers["us-east"] and readers["eu-central"]
    assert not readers["us-east"] & readers["eu-central"], (
        "each location's jobs were read by its own connector only"
    )
    assert not r.exists(streams.job_stream("http_request", "asia-pacific")) or not r.xinfo_groups(
        streams.job_stream("http_request", "asia-pacific")
    )


def test_a_location_that_never_answers_is_recorded_missing_at_the_deadline(
    clean, aio, http_target, internal_targets
):
    monitor_id = insert_monitor(
        clean, "loc", target=http_target.url, location_config=across(LOCATIONS, strategy="all")
    )
    report = aio.run(schedule_tick())
    run_id = uuid.UUID(report.run_ids[0])
    jobs = [
        CheckJob.model_validate(streams.decode(f))
        for _, f in clean.redis().xrange(streams.job_stream("http_request", "us-east"))
    ]
    aio.run(execute_jobs(jobs))
    assert aio.run(finalize_runs([run_id])) == 0, "two locations have not reported yet"
    ((deadline,),) = clean.sql("select deadline from runs where id = %s", (run_id,))
    assert aio.run(sweep_deadlines(now=deadline - timedelta(seconds=1))) == 0
    assert aio.run(sweep_deadlines(now=deadline + timedelta(seconds=1))) == 1
    ((status, missing, partial),) = clean.sql(
        "select status, missing_locations, is_partial from runs where id = %s", (run_id,)
    )
    assert (status, sorted(missing), partial) == ("up", ["asia-pacific", "eu-central"], False)
    assert clean.sql("select status from monitors where id = %s", (monitor_id,)) == [("up",)]
    assert aio.run(sweep_deadlines(now=deadline + timedelta(seconds=2))) == 0, "finalized exactly once"


def test_a_run_where_nobody_reported_is_unknown_and_leaves_the_monitor_as_it_was(clean, aio):
    monitor_id = insert_monitor(clean, "loc", location_config=across(["us-east"]))
    run_id = uuid.UUID(aio.run(schedule_tick()).run_ids[0])
    ((deadline,),) = clean.sql("select deadline from runs where id = %s", (run_id,))
    aio.run(sweep_deadlines(now=deadline + timedelta(seconds=1)))
    assert clean.sql("select status, missing_locations from runs where id = %s", (run_id,)) == [
        ("unknown", ["us-east"])
    ]
    ((status, alert_state),) = clean.sql(
        "select status, alert_state from monitors where id = %s", (monitor_id,)
    )
    assert status == "unknown"
    assert alert_state.get("consecutive_failures", 0) == 0 and alert_state.get("failure_alerts_sent", 0) == 0


def test_runs_finalized_out_of_order_never_move_the_monitor_backwards(clean, aio):
    monitor_id = insert_monitor(clean, "loc", location_config=across(["us-east"]))
    t0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    older = record_run(clean, monitor_id, t0, {"us-east": "down"})
    newer = record_run(clean, monitor_id, t0 + timedelta(minutes=5), {"us-east": "up"})
    assert aio.run(finalize_runs([newer])) == 1
    assert aio.run(finalize_runs([older])) == 1, "the late run is still stored and finalized"
    assert clean.sql(
        "select status, last_applied_run_at, last_run_id from monitors where id = %s", (monitor_id,)
    ) == [("up", t0 + timedelta(minutes=5), newer)]
    assert clean.sql("select status from runs where id = %s", (older,)) == [("down",)]
    assert clean.sql("select count(*) from status_changes") == [(1,)], "only pending -> up was applied"


def test_a_partial_outage_shows_beside_the_aggregated_status(clean, aio):
    monitor_id = insert_monitor(clean, "loc", location_config=across(LOCATIONS))
    run_id = record_run(
        clean, monitor_id, datetime.now(UTC), {"us-east": "up", "eu-central": "down", "asia-pacific": "up"}
    )
    aio.run(finalize_runs([run_id]))
    assert clean.sql("select status, is_partial from runs where id = %s", (run_id,)) == [("up", True)]


def test_results_filter_by_location_and_local_day(clean, aio):
    from tests.api_client import ApiClient

    key = make_project(aio, "filters")
    client = ApiClient(aio, key)
    monitor = client.post(
        "/monitors",
        json={"name": "f", "type": "http", "target": "https://filters.example.net/", "enabled": False},
    ).json()
    monitor_id = monitor["id"]
    # day D 23:30 UTC is day D+1 01:30 in UTC+2 (JavaScript offset -120)
    d = (datetime.now(UTC) - timedelta(days=3)).date()
    at = lambda day, hour, minute=0: datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)  # noqa: E731
    next_day = d + timedelta(days=1)
    for when, location, status in [
        (at(d, 23, 30), "us-east", "up"),
        (at(d, 12), "eu-central", "down"),
        (at(next_day, 12), "us-east", "up"),
    ]:
        record_run(clean, monitor_id, when, {location: status})
    page = client.get(f"/monitors/{monitor_id}/results", params={"location": "us-east"}).json()
    assert [r["location"] for r in page["data"]] == ["us-east", "us-east"]
    utc_day = client.get(f"/monitors/{monitor_id}/results", params={"date": d.isoformat()}).json()
    assert utc_day["pagination"]["total"] == 2
    local_day = client.get(
        f"/monitors/{monitor_id}/results", params={"date": next_day.isoformat(), "timezoneOffset": -120}
    ).json()
    assert [r["checkedAt"][11:16] for r in local_day["data"]] == ["12:00", "23:30"]
    stats = client.get(f"/monitors/{monitor_id}/location-stats", params={"days": 7}).json()
    by_location = {s["location"]: s for s in stats["data"]}
    assert by_location["us-east"]["totalChecks"] == 2 and by_location["us-east"]["uptimePercentage"] == 100.0
    assert by_location["eu-central"]["upChecks"] == 0 and by_location["eu-central"]["uptimePercentage"] == 0.0
    assert by_location["us-east"]["latest"]["checkedAt"][11:16] == "12:00"
    assert client.get(f"/monitors/{monitor_id}/location-stats", params={"days": 1}).json()["data"] == []
    uptime = client.get(f"/monitors/{monitor_id}/uptime", params={"days": 7}).json()
    assert (uptime["checks"], uptime["upChecks"]) == (3, 2)
    assert [day["checks"] for day in uptime["days"]] == [2, 1]
    assert (
        client.get(f"/monitors/{monitor_id}/uptime", params={"days": 367}).json()["error"]["field"] == "days"
    )


REGION_SOURCES = {"us-east": "127.0.0.2", "eu-central": "127.0.0.3", "asia-pacific": "127.0.0.4"}


@pytest.fixture
def three_regions(infra, clean, tmp_path_factory):
    """A primary without checks, and one regional install per location, each sending from its own address."""
    started = []
    primary = LocalStack(
        env={"ALLOW_INTERNAL_TARGETS": "true", "SC_ALLOW_ANONYMOUS_LOCAL": "true"},
        log_dir=tmp_path_factory.mktemp("primary"),
        gateway_port=free_port(),
        with_cron=False,
        connector_env={"CONNECTOR_READ_JOBS": "false"},
        only_functions=["aggregate", "alert", "schedule", "api"],
    )
    started.append(primary.start())
    for location, source in REGION_SOURCES.items():
        region = LocalStack(
            env={"ALLOW_INTERNAL_TARGETS": "true"},
            log_dir=tmp_path_factory.mktemp(location),
            gateway_port=free_port(),
            with_cron=False,
            only_functions=["check-http"],
            function_env={"SC_SOURCE_ADDRESS": source},
            connector_env={"WORKER_LOCATION": location, "CONNECTOR_PRIMARY": "false"},
        )
        started.append(region.start())
    yield started
    for stack in started:
        stack.stop()


def test_three_regions_as_three_workers_show_a_partial_outage_that_majority_calls_up(
    three_regions, clean, http_target
):
    http_target.status_for_client = lambda client: 500 if client == REGION_SOURCES["eu-central"] else 200
    api = f"{three_regions[0].gateway_url}/function/api"
    monitor = httpx.post(
        f"{api}/monitors",
        json={
            "name": "regional",
            "type": "http",
            "target": http_target.url,
            "locationConfig": {"strategy": "majority"},
        },
    ).json()
    run_id = wait_until(
        lambda: (httpx.get(f"{api}/monitors/{monitor['id']}").json().get("lastRun") or {}).get("id"),
        message="the first run finalized",
    )
    run = httpx.get(f"{api}/runs/{run_id}").json()
    by_location = {result["location"]: result for result in run["results"]}
    assert {loc: r["status"] for loc, r in by_location.items()} == {
        "us-east": "up",
        "eu-central": "down",
        "asia-pacific": "up",
    }
    assert run["status"] == "up" and run["isPartial"] is True and run["missingLocations"] == []
    assert httpx.get(f"{api}/monitors/{monitor['id']}").json()["status"] == "up"
    assert sorted(r.client for r in http_target.requests) == sorted(REGION_SOURCES.values())
