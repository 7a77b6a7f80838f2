"""Cleanup on real Postgres with a controlled clock: a seeded year of results, what is kept, status changes,
dry runs, runs and alert history, late results, the safety limit, and two runs at once."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import psycopg
import pytest

from shared.pipeline import rollups
from shared.pipeline.cleanup import CleanupBusy, run_cleanup
from shared.rules.retention import RetentionConfig, floor_day
from tests.factories import CUTOFF, NOW, default_project, seed_year


def config(**overrides) -> RetentionConfig:
    return RetentionConfig(**overrides)


def ids(infra, table: str) -> set:
    return {row[0] for row in infra.sql(f"select id from {table}")}


def table_fingerprint(infra) -> dict:
    return {
        table: infra.sql(f"select count(*), md5(string_agg(id::text, ',' order by id)) from {table}")[0]
        for table in ("monitor_results", "runs", "alert_history", "alert_events", "status_changes")
    }


def add_alert_rows(infra, monitor_id, scheduled_at: datetime, age_days: int) -> object:
    """An alert event and its delivery row on the run scheduled at `scheduled_at` (or the latest before it whose
    results mark no status change, so that only the alert rows keep it), created `age_days` ago."""
    run_id = infra.sql(
        """select id from runs r where monitor_id = %s and scheduled_at <= %s
             and not exists (select 1 from monitor_results m where m.run_id = r.id and m.is_status_change)
           order by scheduled_at desc limit 1""",
        (monitor_id, scheduled_at),
    )[0][0]
    created = NOW - timedelta(days=age_days)
    event_id = infra.sql(
        """insert into alert_events (monitor_id, run_id, kind, payload, created_at, dispatched_at)
           values (%s, %s, 'failure', '{}', %s, %s) returning id""",
        (monitor_id, run_id, created, created),
    )[0][0]
    provider_id = infra.sql(
        """insert into notification_providers (project_id, name, type, config_encrypted)
           values (%s, 'hook', 'webhook', 'x') returning id""",
        (default_project(infra),),
    )[0][0]
    infra.sql(
        """insert into alert_history (alert_event_id, monitor_id, run_id, provider_id, kind, status, created_at)
           values (%s, %s, %s, %s, 'failure', 'sent', %s)""",
        (event_id, monitor_id, run_id, provider_id, created),
    )
    return run_id


def expected_survivors(infra, preserve: bool = True) -> tuple[set, set]:
    """Result and run ids a correct cleanup at NOW keeps, worked out from the rules before it runs."""
    results = {
        row[0]
        for row in infra.sql(
            "select id from monitor_results where checked_at >= %s or (%s and is_status_change)",
            (CUTOFF, preserve),
        )
    }
    alert_cutoff = NOW - timedelta(days=90)
    runs = {
        row[0]
        for row in infra.sql(
            """select r.id from runs r where r.scheduled_at >= %(cutoff)s
               or exists (select 1 from monitor_results x where x.run_id = r.id
                          and (x.checked_at >= %(cutoff)s or (%(preserve)s and x.is_status_change)))
               or exists (select 1 from status_changes s where s.run_id = r.id)
               or exists (select 1 from alert_events e where e.run_id = r.id and e.created_at >= %(alert)s)
               or exists (select 1 from alert_history h where h.run_id = r.id and h.created_at >= %(alert)s)
               or exists (select 1 from monitors m where m.last_run_id = r.id)""",
            {"cutoff": CUTOFF, "preserve": preserve, "alert": alert_cutoff},
        )
    }
    return results, runs


def counts(report) -> dict:
    return {
        "results": report.results_deleted,
        "kept": report.status_changes_kept,
        "runs": report.runs_deleted,
        "alert_history": report.alert_history_deleted,
        "alert_events": report.alert_events_deleted,
        "monitors": [
            (m.monitor_id, m.results_deleted, m.status_changes_kept, m.runs_deleted) for m in report.monitors
        ],
    }


def test_a_year_of_results_keeps_thirty_days_and_every_status_change(clean, aio):
    monitor_a, monitor_b = seed_year(clean)
    # Things that hold an old run: a status change 200 days back, alert rows at 80 days (kept) and 100 (not),
    # and a monitor whose latest run is, oddly, an old one.
    old_flip_run = clean.sql(
        "select id from runs where monitor_id = %s and scheduled_at < %s order by scheduled_at limit 1 offset 500",
        (monitor_a, NOW - timedelta(days=200)),
    )[0][0]
    clean.sql(
        "insert into status_changes (monitor_id, run_id, from_status, to_status) values (%s, %s, 'up', 'down')",
        (monitor_a, old_flip_run),
    )
    kept_alert_run = add_alert_rows(clean, monitor_a, NOW - timedelta(days=80), age_days=80)
    add_alert_rows(clean, monitor_b, NOW - timedelta(days=100), age_days=100)
    last_run = clean.sql(
        "select id from runs where monitor_id = %s order by scheduled_at limit 1", (monitor_b,)
    )[0][0]
    clean.sql("update monitors set last_run_id = %s where id = %s", (last_run, monitor_b))

    status_changes_before = clean.sql("select id from monitor_results where is_status_change order by id")
    keep_results, keep_runs = expected_survivors(clean)
    assert 0 < len(keep_results) < len(ids(clean, "monitor_results")) / 5

    total_before = len(ids(clean, "monitor_results"))
    before = table_fingerprint(clean)
    dry = aio.run(run_cleanup(dry_run=True, now=NOW, config=config()))
    assert table_fingerprint(clean) == before, "a dry run deletes nothing"
    assert clean.sql("select count(*) from rollup_hourly") == [(0,)], "and rolls nothing up"

    real = aio.run(run_cleanup(dry_run=False, now=NOW, config=config()))
    assert counts(dry) == counts(real), "the dry run reported exactly what the real run then did"
    assert real.results_cutoff == CUTOFF and not real.safety_limit_reached

    assert ids(clean, "monitor_results") == keep_results
    assert (
        clean.sql("select id from monitor_results where is_status_change order by id")
        == status_changes_before
    )
    assert ids(clean, "runs") == keep_runs
    assert {old_flip_run, kept_alert_run, last_run} <= keep_runs
    assert clean.sql("select count(*) from alert_history") == [(1,)]
    assert clean.sql("select count(*) from alert_events") == [(1,)]
    assert real.alert_history_deleted == 1 and real.alert_events_deleted == 1

    assert real.results_deleted == total_before - len(keep_results)
    per_monitor = {m.monitor_id: m for m in real.monitors}
    for monitor_id in (monitor_a, monitor_b):
        (old,) = clean.sql(
            "select count(*) from monitor_results where monitor_id = %s and checked_at < %s",
            (monitor_id, CUTOFF),
        )[0]
        assert per_monitor[monitor_id].status_changes_kept == old

    again = aio.run(run_cleanup(dry_run=False, now=NOW, config=config()))
    assert (again.results_deleted, again.runs_deleted, again.alert_history_deleted) == (0, 0, 0), "idempotent"


def test_rows_at_the_cutoff_stay_and_rows_just_before_it_go(clean, aio):
    (monitor_id,) = seed_year(clean, monitors=1, step="6 hours", days=60)
    run_id = clean.sql("select id from runs limit 1")[0][0]
    clean.sql("delete from monitor_results where run_id = %s", (run_id,))
    clean.sql(
        """insert into monitor_results (run_id, monitor_id, location, status, checked_at, response_time_ms)
           values (%s, %s, 'us-east', 'up', %s, 10), (%s, %s, 'eu-central', 'up', %s, 10)""",
        (run_id, monitor_id, CUTOFF, run_id, monitor_id, CUTOFF - timedelta(microseconds=1)),
    )
    aio.run(run_cleanup(dry_run=False, now=NOW, config=config(preserve_status_changes=False)))
    assert clean.sql("select location from monitor_results where run_id = %s", (run_id,)) == [("us-east",)]


def test_heartbeat_pings_are_kept_as_long_as_results_and_the_dry_run_counts_them(clean, aio):
    (monitor_id,) = seed_year(clean, monitors=1, step="6 hours", days=60)
    for at in (CUTOFF - timedelta(days=3), CUTOFF - timedelta(microseconds=1), CUTOFF, NOW):
        clean.sql(
            """insert into heartbeat_pings (monitor_id, kind, source, received_at, message)
               values (%s, 'success', 'healthchecks', %s, 'a job's output')""".replace("job's", "job''s"),
            (monitor_id, at),
        )
    dry = aio.run(run_cleanup(dry_run=True, now=NOW, config=config()))
    real = aio.run(run_cleanup(dry_run=False, now=NOW, config=config()))
    assert dry.heartbeat_pings_deleted == real.heartbeat_pings_deleted == 2
    assert clean.sql("select received_at from heartbeat_pings order by received_at") == [(CUTOFF,), (NOW,)]


def test_without_preservation_status_changes_go_too(clean, aio):
    seed_year(clean, monitors=1, step="6 hours", days=90)
    keep_results, keep_runs = expected_survivors(clean, preserve=False)
    report = aio.run(run_cleanup(dry_run=False, now=NOW, config=config(preserve_status_changes=False)))
    assert ids(clean, "monitor_results") == keep_results
    assert clean.sql("select count(*) from monitor_results where checked_at < %s", (CUTOFF,)) == [(0,)]
    assert ids(clean, "runs") == keep_runs
    assert report.status_changes_kept == 0


def test_the_safety_limit_caps_a_run_and_the_next_run_goes_on(clean, aio):
    seed_year(clean, monitors=2, step="6 hours", days=60)
    old = clean.sql(
        "select count(*) from monitor_results where checked_at < %s and not is_status_change", (CUTOFF,)
    )
    limited = config(batch_size=40, safety_limit=100)
    dry = aio.run(run_cleanup(dry_run=True, now=NOW, config=limited))
    first = aio.run(run_cleanup(dry_run=False, now=NOW, config=limited))
    assert counts(dry) == counts(first)
    assert first.results_deleted == 100 and first.safety_limit_reached
    assert first.runs_deleted == 0, "runs wait until their results are all gone"
    rest = aio.run(run_cleanup(dry_run=False, now=NOW, config=config()))
    assert first.results_deleted + rest.results_deleted == old[0][0]
    assert clean.sql(
        "select count(*) from monitor_results where checked_at < %s and not is_status_change", (CUTOFF,)
    ) == [(0,)]


def test_a_result_stored_after_its_hour_was_rolled_up_is_counted_before_it_is_deleted(clean, aio):
    (monitor_id,) = seed_year(clean, monitors=1, step="6 hours", days=60)
    aio.run(rollups.catch_up(NOW, config()))
    late_hour = floor_day(NOW - timedelta(days=45)) + timedelta(hours=6)
    hour_before, day_before = (
        clean.sql(
            f"select checks from rollup_{tier} where monitor_id = %s and location = 'us-east' and bucket = %s",
            (monitor_id, bucket),
        )[0][0]
        for tier, bucket in (("hourly", late_hour), ("daily", floor_day(late_hour)))
    )
    run_id = clean.sql(
        """insert into runs (monitor_id, scheduled_at, expected_locations, deadline)
           values (%s, %s, '{us-east}', %s) returning id""",
        (monitor_id, late_hour + timedelta(minutes=3), late_hour + timedelta(minutes=4)),
    )[0][0]
    clean.sql(
        """insert into monitor_results (run_id, monitor_id, location, status, checked_at, response_time_ms)
           values (%s, %s, 'us-east', 'up', %s, 12345)""",
        (run_id, monitor_id, late_hour + timedelta(minutes=3)),
    )
    report = aio.run(run_cleanup(dry_run=False, now=NOW, config=config()))
    assert report.rollups.hours_reconciled == 1
    row = clean.sql(
        """select checks, max_response_ms from rollup_hourly
           where monitor_id = %s and location = 'us-east' and bucket = %s""",
        (monitor_id, late_hour),
    )[0]
    assert row == (hour_before + 1, 12345)
    daily = clean.sql(
        "select checks, max_response_ms from rollup_daily where monitor_id = %s and location = 'us-east' and bucket = %s",
        (monitor_id, floor_day(late_hour)),
    )[0]
    assert daily == (day_before + 1, 12345)
    assert clean.sql("select count(*) from monitor_results where run_id = %s", (run_id,)) == [(0,)]


def test_deletion_waits_for_rollups_that_lag(clean, aio, monkeypatch):
    seed_year(clean, monitors=1, step="6 hours", days=60)
    lagging = floor_day(NOW - timedelta(days=50))
    aio.run(rollups.catch_up(lagging + timedelta(minutes=30), config()))  # rollups reach 50 days back only

    async def stalled(now, config):  # say every rollup step since has failed
        return rollups.RollupProgress(hourly_through=lagging, daily_through=lagging)

    monkeypatch.setattr(rollups, "catch_up", stalled)
    report = aio.run(run_cleanup(dry_run=False, now=NOW, config=config()))
    assert report.results_cutoff == lagging and any("rollups reach only" in note for note in report.notes)
    assert clean.sql(
        "select count(*) from monitor_results where checked_at < %s and not is_status_change", (lagging,)
    ) == [(0,)]
    assert (
        clean.sql(
            "select count(*) from monitor_results where checked_at >= %s and checked_at < %s",
            (lagging, CUTOFF),
        )[0][0]
        > 0
    )


def test_two_cleanup_runs_at_once_one_acts_and_the_other_is_refused(clean, aio):
    seed_year(clean, monitors=2, step="6 hours", days=60)
    keep_results, keep_runs = expected_survivors(clean)
    # Hold the rollup lock so the first run is caught mid-way (waiting in its catch-up, holding the cleanup lock).
    blocker = psycopg.connect(clean.database_url, autocommit=True)
    blocker.execute("select pg_advisory_lock(%s)", (rollups.ROLLUP_LOCK,))

    async def both():
        first = asyncio.ensure_future(run_cleanup(dry_run=False, now=NOW, config=config()))
        await asyncio.sleep(0.5)
        assert not first.done()
        with pytest.raises(CleanupBusy):
            await run_cleanup(dry_run=False, now=NOW, config=config())
        busy_step = await rollups.rollup_step(NOW, config=config())
        assert busy_step.busy, "the aggregate sweep's rollup step skips while another holds the lock"
        dry = await run_cleanup(dry_run=True, now=NOW, config=config())  # a dry run needs no lock
        await asyncio.to_thread(blocker.execute, "select pg_advisory_unlock(%s)", (rollups.ROLLUP_LOCK,))
        return dry, await first

    try:
        dry, report = aio.run(both())
    finally:
        blocker.close()
    assert report.results_deleted == dry.results_deleted > 0
    assert ids(clean, "monitor_results") == keep_results
    assert ids(clean, "runs") == keep_runs


def test_two_cleanup_runs_racing_freely_delete_each_row_once(clean, aio):
    seed_year(clean, monitors=3, step="6 hours", days=60)
    (old,) = clean.sql(
        "select count(*) from monitor_results where checked_at < %s and not is_status_change", (CUTOFF,)
    )[0]
    keep_results, _ = expected_survivors(clean)

    async def race():
        return await asyncio.gather(
            *(run_cleanup(dry_run=False, now=NOW, config=config(batch_size=25)) for _ in range(2)),
            return_exceptions=True,
        )

    outcomes = aio.run(race())
    reports = [outcome for outcome in outcomes if not isinstance(outcome, BaseException)]
    assert all(isinstance(outcome, CleanupBusy) for outcome in outcomes if outcome not in reports)
    assert sum(report.results_deleted for report in reports) == old
    assert ids(clean, "monitor_results") == keep_results


def test_status_changes_kept_earlier_go_once_preservation_is_switched_off(clean, aio):
    seed_year(clean, monitors=1, step="6 hours", days=90)
    first = aio.run(run_cleanup(dry_run=False, now=NOW, config=config()))
    assert first.status_changes_kept > 0
    later = aio.run(run_cleanup(dry_run=False, now=NOW, config=config(preserve_status_changes=False)))
    assert later.results_deleted == first.status_changes_kept
    assert clean.sql("select count(*) from monitor_results where checked_at < %s", (CUTOFF,)) == [(0,)]


def test_a_run_kept_by_an_alert_goes_once_the_alert_history_expires(clean, aio):
    (monitor_id,) = seed_year(clean, monitors=1, step="6 hours", days=120)
    run_id = add_alert_rows(clean, monitor_id, NOW - timedelta(days=80), age_days=80)
    aio.run(run_cleanup(dry_run=False, now=NOW, config=config()))
    assert clean.sql("select count(*) from runs where id = %s", (run_id,)) == [(1,)]
    later = NOW + timedelta(days=20)  # the alert rows are 100 days old now
    report = aio.run(run_cleanup(dry_run=False, now=later, config=config()))
    assert report.alert_history_deleted == 1
    assert clean.sql("select count(*) from runs where id = %s", (run_id,)) == [(0,)]
