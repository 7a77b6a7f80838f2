"""One bad stored row stalls nothing (issue 16, items 8 and 9): a monitor whose stored type, location config or
alert config no longer validates is set aside (status error, its reason on the monitor and in the audit log)
while the rest of its claim or finalize batch goes on; a job for an unknown location is dead-lettered; and a
maintenance window is judged at the run's slot. Each fault is injected in SQL, then driven through the stack."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from shared import streams
from shared.pipeline.set_aside import alert_config, location_config, timeout_budget
from tests.factories import LOCATIONS, insert_monitor, record_run, signed
from tests.servers import wait_until

ALERTING = {"enabled": True, "failureThreshold": 1}


@pytest.fixture
def gateway(stack, clean) -> str:
    return f"{stack.gateway_url}/function"


def corrupt(infra, monitor_id, column: str, value) -> None:
    """Writes a stored value the code no longer reads, as a hand edit or a downgrade would."""
    if column == "type":
        infra.sql("update monitors set type = %s where id = %s", (value, monitor_id))
    else:
        infra.sql(f"update monitors set {column} = %s::jsonb where id = %s", (json.dumps(value), monitor_id))


def monitor_row(infra, monitor_id) -> dict:
    status, reason, next_run_at = infra.sql(
        "select status, status_reason, next_run_at from monitors where id = %s", (monitor_id,)
    )[0]
    return {"status": status, "reason": reason, "next_run_at": next_run_at}


def set_aside_audit(infra, monitor_id) -> list[str]:
    rows = infra.sql(
        "select changes from audit_log where action = 'monitor.set_aside' and object_id = %s",
        (str(monitor_id),),
    )
    return [row[0]["statusReason"] for row in rows]


# --- what makes a stored row unrunnable: pure, a table ----------------------------------------------------


@pytest.mark.parametrize(
    ("check_type", "config", "problem"),
    [
        ("http_request", "{}", None),
        ("gopher", "{}", "type: unknown monitor type 'gopher'"),
        ("http_request", '{"timeoutSeconds": "soon"}', "config: its timeout cannot be read"),
        ("http_request", '["not", "an", "object"]', "config: must be an object"),
    ],
)
def test_a_stored_type_and_config_give_a_budget_or_the_reason_they_cannot(check_type, config, problem):
    budget = timeout_budget(check_type, config)
    if problem is None:
        assert budget == 30.0
    else:
        assert isinstance(budget, str) and budget.startswith(problem), budget


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ('{"locations": ["us-east"]}', None),
        ('{"strategy": "most"}', "locationConfig.strategy:"),
        ('{"locations": "us-east"}', "locationConfig.locations:"),
        ('{"threshold": 0}', "locationConfig.threshold:"),
    ],
)
def test_a_stored_location_config_parses_or_names_its_field(raw, problem):
    parsed = location_config(raw)
    assert (problem is None) == (not isinstance(parsed, str))
    if problem:
        assert parsed.startswith(problem), parsed


def test_a_stored_alert_config_parses_or_names_its_field():
    assert not isinstance(alert_config('{"enabled": true}'), str)
    assert alert_config('{"failureThreshold": 99}').startswith("alertConfig.failureThreshold:")


# --- schedule ------------------------------------------------------------------------------------------


def test_schedule_sets_aside_monitors_whose_stored_row_no_longer_validates_and_dispatches_the_rest(
    gateway, infra
):
    good = [insert_monitor(infra, f"good-{i}") for i in range(4)]
    bad_location = insert_monitor(infra, "bad-location")
    bad_type = insert_monitor(infra, "bad-type")
    corrupt(infra, bad_location, "location_config", {"strategy": "most"})
    corrupt(infra, bad_type, "type", "gopher")

    tick = httpx.post(f"{gateway}/schedule", timeout=60)
    assert tick.status_code == 200, tick.text
    assert tick.json()["runsCreated"] == 4
    runs = dict(infra.sql("select monitor_id, count(*) from runs group by monitor_id"))
    assert runs == {monitor_id: 1 for monitor_id in good}

    location_row, type_row = monitor_row(infra, bad_location), monitor_row(infra, bad_type)
    assert location_row["status"] == type_row["status"] == "error"
    assert location_row["reason"].startswith("locationConfig.strategy:")
    assert type_row["reason"].startswith("type: unknown monitor type 'gopher'")
    assert location_row["next_run_at"] is None and type_row["next_run_at"] is None  # out of the schedule
    assert set_aside_audit(infra, bad_location) == [location_row["reason"]]
    assert set_aside_audit(infra, bad_type) == [type_row["reason"]]
    shown = httpx.get(f"{gateway}/api/monitors/{bad_location}").json()
    assert (shown["status"], shown["statusReason"]) == ("error", location_row["reason"])
    assert shown["locationConfig"] == {"strategy": "most"}  # as stored
    wait_until(
        lambda: infra.sql("select count(*) from runs where finalized_at is not null")[0][0] == 4,
        timeout=60,
        message="the good monitors' runs checked and finalized",
    )

    # a second tick claims neither again, nor audits them twice; saving the monitor puts it back
    assert httpx.post(f"{gateway}/schedule", timeout=60).json()["runsCreated"] == 0
    assert set_aside_audit(infra, bad_location) == [location_row["reason"]]
    spec = {"name": "fixed", "type": "http", "target": shown["target"], "enabled": False}
    saved = httpx.put(f"{gateway}/api/monitors/{bad_location}", json=spec, timeout=30).json()
    assert (saved["status"], saved["statusReason"]) == ("pending", None)


def test_schedule_dead_letters_the_job_for_a_location_no_region_serves(gateway, infra):
    monitor_id = insert_monitor(infra, "mars", location_config={"locations": ["mars-1", "us-east"]})
    tick = httpx.post(f"{gateway}/schedule", timeout=60)
    assert tick.status_code == 200, tick.text
    assert infra.sql("select expected_locations from runs where monitor_id = %s", (monitor_id,)) == [
        (["mars-1", "us-east"],)
    ]
    dead = infra.redis().xrange(streams.dead_letter_stream(streams.job_stream("http_request", "mars-1")))
    assert len(dead) == 1
    fields = dead[0][1]
    assert fields["reason"].startswith("unknown location 'mars-1'")
    assert fields["stream"] == "sc:jobs:http_request:mars-1"
    assert json.loads(fields["data"])["monitor_id"] == str(monitor_id)
    # the known location still ran: its result arrives, the run waits for its deadline to record mars-1 missing
    wait_until(
        lambda: (
            infra.sql("select location from monitor_results where monitor_id = %s", (monitor_id,))
            == [("us-east",)]
        ),
        timeout=60,
        message="the us-east result",
    )


# --- aggregate -----------------------------------------------------------------------------------------


def result_batch(runs: dict) -> dict:
    """A connector delivery of one result envelope per (run, monitor, location)."""
    return {
        "messages": [
            {
                "id": f"{index}-0",
                "data": {
                    "v": 1,
                    "kind": "result",
                    "run_id": str(run_id),
                    "monitor_id": str(monitor_id),
                    "location": location,
                    "status": "down",
                },
            }
            for index, (run_id, monitor_id, location) in enumerate(runs)
        ]
    }


def test_aggregate_sets_aside_a_monitor_whose_location_or_alert_config_no_longer_validates_and_finalizes_the_rest(
    gateway, infra
):
    slot = datetime.now(UTC) - timedelta(minutes=2)
    good = [insert_monitor(infra, f"good-{i}", next_run_at=slot + timedelta(days=1)) for i in range(3)]
    bad_location = insert_monitor(infra, "bad-location", next_run_at=slot + timedelta(days=1))
    bad_alerts = insert_monitor(infra, "bad-alerts", next_run_at=slot + timedelta(days=1))
    runs = {
        m: record_run(infra, m, slot, dict.fromkeys(LOCATIONS, "down"))
        for m in [*good, bad_location, bad_alerts]
    }
    corrupt(infra, bad_location, "location_config", {"locations": "us-east"})
    corrupt(infra, bad_alerts, "alert_config", {"failureThreshold": 99})

    batch = result_batch([(runs[m], m, location) for m in runs for location in LOCATIONS])
    delivered = httpx.post(f"{gateway}/aggregate", timeout=60, **signed(batch))
    assert delivered.status_code == 200, delivered.text

    finalized = dict(infra.sql("select monitor_id, status from runs where finalized_at is not null"))
    assert finalized == {**dict.fromkeys(good, "down"), bad_location: "unknown", bad_alerts: "down"}
    statuses = dict(infra.sql("select id, status from monitors"))
    assert all(statuses[m] == "down" for m in good)
    assert statuses[bad_location] == statuses[bad_alerts] == "error"
    assert monitor_row(infra, bad_location)["reason"].startswith("locationConfig.locations:")
    assert monitor_row(infra, bad_alerts)["reason"].startswith("alertConfig.failureThreshold:")
    assert len(set_aside_audit(infra, bad_location)) == len(set_aside_audit(infra, bad_alerts)) == 1

    redelivered = httpx.post(f"{gateway}/aggregate", timeout=60, **signed(batch))
    assert redelivered.status_code == 200, redelivered.text
    assert len(set_aside_audit(infra, bad_location)) == 1  # compare-and-set on the reason: audited once


def test_a_run_scheduled_inside_a_maintenance_window_is_suppressed_though_finalized_after_it(gateway, infra):
    now = datetime.now(UTC)
    monitor_id = insert_monitor(
        infra, "maintained", next_run_at=now + timedelta(days=1), alert_config=ALERTING
    )
    project = infra.sql("select project_id from monitors where id = %s", (monitor_id,))[0][0]
    infra.sql(
        """insert into maintenance_windows (project_id, name, starts_at, ends_at) values (%s, 'deploy', %s, %s)""",
        (project, now - timedelta(minutes=10), now - timedelta(minutes=3)),
    )
    inside = record_run(infra, monitor_id, now - timedelta(minutes=5), dict.fromkeys(LOCATIONS, "down"))

    swept = httpx.post(f"{gateway}/aggregate", timeout=60)  # the cron sweep: the run is past its deadline
    assert swept.status_code == 200, swept.text
    assert infra.sql("select kind, suppressed_reason from alert_events where run_id = %s", (inside,)) == [
        ("failure", "maintenance window 'deploy'")
    ]


def test_a_run_scheduled_after_a_maintenance_window_alerts(gateway, infra):
    now = datetime.now(UTC)
    monitor_id = insert_monitor(infra, "after", next_run_at=now + timedelta(days=1), alert_config=ALERTING)
    project = infra.sql("select project_id from monitors where id = %s", (monitor_id,))[0][0]
    infra.sql(
        """insert into maintenance_windows (project_id, name, starts_at, ends_at) values (%s, 'deploy', %s, %s)""",
        (project, now - timedelta(minutes=10), now - timedelta(minutes=4)),
    )
    after = record_run(infra, monitor_id, now - timedelta(minutes=3), dict.fromkeys(LOCATIONS, "down"))
    assert httpx.post(f"{gateway}/aggregate", timeout=60).status_code == 200
    assert infra.sql("select kind, suppressed_reason from alert_events where run_id = %s", (after,)) == [
        ("failure", None)
    ]
