"""schedule's outbox: due monitors claimed once, even by overlapping ticks; undispatched runs re-published."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from shared import streams
from shared.models import CheckJob
from shared.pipeline.schedule import redispatch_stale_runs, schedule_tick
from shared.rules.locations import expected_locations
from tests.factories import LOCATIONS, default_project, seed_due_monitors


def jobs_in_streams(infra) -> list[dict]:
    """Every job queued for http_request, bundles opened: each one a CheckJob envelope."""
    r = infra.redis()
    jobs = []
    for location in LOCATIONS:
        for _, fields in r.xrange(streams.job_stream("http_request", location)):
            entry = streams.decode(fields)
            if entry["kind"] == "check_jobs":
                jobs += [
                    {"type": entry["type"], "location": entry["location"], **job} for job in entry["jobs"]
                ]
            else:
                jobs.append(entry)
    for job in jobs:
        CheckJob.model_validate(job)
    return jobs


def test_two_overlapping_ticks_dispatch_each_due_run_exactly_once(clean, aio):
    now = datetime.now(UTC)
    seed_due_monitors(clean, 300, now - timedelta(seconds=5))

    async def both():
        return await asyncio.gather(schedule_tick(now), schedule_tick(now))

    first, second = aio.run(both())
    assert first.runs_created + second.runs_created == 300
    assert clean.sql("select count(*), count(distinct monitor_id) from runs") == [(300, 300)]
    jobs = jobs_in_streams(clean)
    assert len(jobs) == 900
    assert len({(job["run_id"], job["location"]) for job in jobs}) == 900
    assert clean.sql("select count(*) from dispatch_batches") == [(0,)], "every batch was published"
    # the next slot is one frequency later, so an immediate third tick finds nothing due
    assert aio.run(schedule_tick(now)).runs_created == 0


def test_a_tick_after_downtime_runs_the_latest_slot_once_instead_of_replaying(clean, aio):
    now = datetime(2026, 1, 1, 12, 0, 30, tzinfo=UTC)
    seed_due_monitors(clean, 1, now - timedelta(minutes=10, seconds=30))
    aio.run(schedule_tick(now))
    ((scheduled_at, next_run_at),) = clean.sql(
        "select r.scheduled_at, m.next_run_at from runs r join monitors m on m.id = r.monitor_id"
    )
    assert scheduled_at == datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert next_run_at == datetime(2026, 1, 1, 12, 1, 0, tzinfo=UTC)


def test_runs_committed_but_never_published_are_redispatched_by_the_sweep(clean, aio):
    now = datetime.now(UTC)
    seed_due_monitors(clean, 2, now - timedelta(seconds=1))
    monitor_ids = [row[0] for row in clean.sql("select id from monitors")]
    # what a crash between commit and XADD leaves behind: runs and their batch recorded, nothing published
    run_ids = [uuid.uuid4() for _ in monitor_ids]
    for run_id, monitor_id in zip(run_ids, monitor_ids, strict=True):
        clean.sql(
            """insert into runs (id, monitor_id, scheduled_at, expected_locations, deadline)
               values (%s, %s, %s, %s, %s)""",
            (run_id, monitor_id, now - timedelta(minutes=1), LOCATIONS, now + timedelta(minutes=1)),
        )
    clean.sql(
        "insert into dispatch_batches (id, run_ids, created_at) values (%s, %s, %s)",
        (uuid.uuid4(), run_ids, now - timedelta(minutes=1)),
    )
    assert aio.run(redispatch_stale_runs(now)) == 2
    assert len(jobs_in_streams(clean)) == 6
    assert aio.run(redispatch_stale_runs(now)) == 0


def test_expected_locations_follow_the_location_config():
    active = LOCATIONS
    assert expected_locations({}, active) == LOCATIONS
    assert expected_locations({"locations": ["eu-central"]}, active) == ["eu-central"]
    assert expected_locations({"enabled": False, "locations": ["eu-central"]}, active) == ["us-east"]
    # kept as named: schedule dead-letters the job for mars-1 rather than quietly running it elsewhere
    assert expected_locations({"locations": ["mars-1", "asia-pacific"]}, active) == ["mars-1", "asia-pacific"]
    assert expected_locations({"locations": ["mars-1"]}, active) == ["mars-1"]


def test_a_cron_window_keeps_ticking_so_monitors_due_mid_minute_run_in_the_same_call(clean, aio):
    from shared.pipeline.schedule import schedule_window

    clean.sql(
        """insert into monitors (project_id, name, type, target, frequency_minutes, next_run_at)
           values (%s, 'later', 'http_request', 'http://127.0.0.1:9/', 1, now() + interval '1 second')""",
        (default_project(clean),),
    )
    report = aio.run(schedule_window(window_seconds=2.5, tick_seconds=0.5))
    assert report.runs_created == 1
    assert report.jobs_published == 3


def test_a_tick_claims_monitors_that_a_result_insert_holds_key_share_locked(clean, aio):
    """A check function storing a result takes a key-share lock on its monitor (the foreign key check); the
    tick must not skip that monitor, while a tick holding the claim still makes another tick skip it."""
    import psycopg

    now = datetime.now(UTC)
    seed_due_monitors(clean, 2, now - timedelta(seconds=5))
    monitor_id = clean.sql("select id from monitors order by id limit 1")[0][0]
    with psycopg.connect(clean.database_url) as storing:
        storing.execute("select 1 from monitors where id = %s for key share", (monitor_id,))
        assert aio.run(schedule_tick(now)).runs_created == 2
    clean.sql("update monitors set next_run_at = %s", (now - timedelta(seconds=30),))  # a new slot
    with psycopg.connect(clean.database_url) as claiming:  # another tick, mid-claim
        claiming.execute("select 1 from monitors for no key update")
        assert aio.run(schedule_tick(now)).runs_created == 0, "rows another tick claims are skipped"
    assert aio.run(schedule_tick(now)).runs_created == 2


def test_runs_due_within_the_lookahead_are_dispatched_ahead_for_their_own_slot(clean, aio):
    now = datetime.now(UTC).replace(microsecond=0)
    seed_due_monitors(clean, 2, now + timedelta(seconds=0.8))  # inside the default 1 s lookahead
    seed_due_monitors(clean, 3, now + timedelta(seconds=5))  # beyond it
    assert aio.run(schedule_tick(now)).runs_created == 2
    rows = clean.sql(
        "select r.scheduled_at, r.deadline, m.next_run_at from runs r join monitors m on m.id = r.monitor_id"
    )
    for scheduled_at, deadline, next_run_at in rows:
        assert scheduled_at == now + timedelta(seconds=0.8), "the run keeps its own slot, not the tick's time"
        assert deadline > scheduled_at + timedelta(seconds=30), "the deadline counts from the slot"
        assert next_run_at == scheduled_at + timedelta(minutes=1)
    jobs = jobs_in_streams(clean)
    assert {datetime.fromisoformat(job["scheduled_at"]) for job in jobs} == {now + timedelta(seconds=0.8)}
    assert aio.run(schedule_tick(now + timedelta(seconds=1))).runs_created == 0, "claimed once"


def test_a_job_dispatched_ahead_starts_on_its_slot(clean, aio, http_target, internal_targets):
    from shared.pipeline.check import execute_jobs

    seed_due_monitors(clean, 1, datetime.now(UTC) + timedelta(seconds=0.7))
    clean.sql("update monitors set target = %s", (http_target.url,))
    report = aio.run(schedule_tick())
    assert report.runs_created == 1
    job = next(j for j in jobs_in_streams(clean) if j["location"] == LOCATIONS[0])
    assert aio.run(execute_jobs([CheckJob.model_validate(job)])) == (1, [])
    ((checked_at, scheduled_at),) = clean.sql(
        "select m.checked_at, r.scheduled_at from monitor_results m join runs r on r.id = m.run_id"
    )
    assert checked_at >= scheduled_at, "not started before its slot"
    assert len(http_target.requests) == 1


def test_a_job_whose_times_have_no_zone_is_refused_with_the_field_named():
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="scheduled_at"):
        CheckJob.model_validate(
            {
                "run_id": str(uuid.uuid4()),
                "monitor_id": str(uuid.uuid4()),
                "location": "us-east",
                "type": "http_request",
                "target": "http://127.0.0.1:9/",
                "scheduled_at": "2026-11-25T10:00:00",
                "deadline": "2026-11-25T10:01:00+00:00",
            }
        )
