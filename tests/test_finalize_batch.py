"""Set-based finalization: many runs per batch, several runs of one monitor per batch, concurrent invocations."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from shared.pipeline.aggregate import finalize_runs, sweep_deadlines
from tests.factories import insert_monitor, record_run

ALERTING = {"enabled": True, "failureThreshold": 1, "recoveryThreshold": 1}


def idle_monitor(infra, name: str, alert_config: dict | None = None) -> uuid.UUID:
    """A monitor schedule leaves alone (due tomorrow) whose runs here are recorded by hand, all locations counting."""
    return insert_monitor(
        infra,
        name,
        frequency_minutes=1,
        next_run_at=datetime.now(UTC) + timedelta(days=1),
        location_config={"strategy": "all"},
        alert_config=alert_config,
    )


def test_one_batch_applies_several_runs_of_a_monitor_in_scheduled_order(clean, aio):
    monitor_id = idle_monitor(clean, "ordered", ALERTING)
    t0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
    plan = [("down", 0), ("down", 1), ("up", 2), ("up", 3)]
    runs = [record_run(clean, monitor_id, t0 + timedelta(minutes=m), {"us-east": s}) for s, m in plan]
    assert aio.run(finalize_runs(reversed(runs))) == 4, "handed over newest first, applied oldest first"
    assert clean.sql("select from_status, to_status, run_id from status_changes order by changed_at, id") == [
        ("pending", "down", runs[0]),
        ("down", "up", runs[2]),
    ]
    assert clean.sql("select status, last_run_id from monitors where id = %s", (monitor_id,)) == [
        ("up", runs[3])
    ]
    assert clean.sql("select kind, run_id from alert_events order by kind") == [
        ("failure", runs[0]),
        ("recovery", runs[2]),
    ]
    ((payload,),) = clean.sql("select payload from alert_events where kind = 'failure'")
    assert payload["monitorName"] == "ordered" and payload["locationsDown"] == 1
    # why it fired (the results carry no error message here, so no "last error" part)
    assert payload["reason"] == "1 consecutive run failed; 1 of 1 locations down: us-east"


def test_incomplete_runs_wait_and_deadlines_finalize_them_with_the_missing_locations(clean, aio):
    monitor_id = idle_monitor(clean, "partial")
    t0 = datetime.now(UTC) - timedelta(minutes=5)
    run_id = record_run(clean, monitor_id, t0, {"us-east": "up"})
    clean.sql("update runs set expected_locations = '{us-east,eu-central}' where id = %s", (run_id,))
    assert aio.run(finalize_runs([run_id])) == 0
    assert aio.run(sweep_deadlines()) == 1
    assert clean.sql("select status, is_partial, missing_locations from runs where id = %s", (run_id,)) == [
        ("up", False, ["eu-central"])
    ]


def test_concurrent_batches_finalize_each_run_once_and_end_on_the_newest_run(clean, aio):
    t0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
    monitors = [idle_monitor(clean, f"m{i}", ALERTING) for i in range(40)]
    runs: dict[uuid.UUID, list[uuid.UUID]] = {}
    for index, monitor_id in enumerate(monitors):
        statuses = ["down", "up", "down", "up"] if index % 2 else ["up", "up", "up", "up"]
        runs[monitor_id] = [
            record_run(clean, monitor_id, t0 + timedelta(minutes=m), {"us-east": s, "eu-central": s})
            for m, s in enumerate(statuses)
        ]
    every_run = [run for monitor_runs in runs.values() for run in monitor_runs]

    async def race() -> list[int]:
        halves = [every_run[: len(every_run) * 2 // 3], every_run[len(every_run) // 3 :]]
        return await asyncio.gather(
            finalize_runs(every_run), finalize_runs(list(reversed(every_run))), *map(finalize_runs, halves)
        )

    assert sum(aio.run(race())) == len(every_run), "every run finalized by exactly one invocation"
    assert clean.sql("select count(*) from runs where finalized_at is null") == [(0,)]
    for monitor_id, monitor_runs in runs.items():
        ((status, last_run),) = clean.sql(
            "select status, last_run_id from monitors where id = %s", (monitor_id,)
        )
        assert status == "up"
        # A run applied out of order would leave an older run here (or skip the newest as "late").
        assert last_run == monitor_runs[-1]
    # Runs of one monitor split across invocations may finalize out of order (a late run is never applied),
    # so the exact flips vary; each monitor's history must still be one unbroken chain ending where it is.
    for monitor_id in monitors:
        chain = clean.sql(
            "select from_status, to_status from status_changes where monitor_id = %s order by id",
            (monitor_id,),
        )
        assert chain[0][0] == "pending" and chain[-1][1] == "up"
        assert all(prev[1] == step[0] for prev, step in zip(chain, chain[1:], strict=False))
