"""Cleanup beyond the database: Redis streams trimmed by age without cutting pending or undelivered entries, and
synthetic artifacts expired from S3 (moto in server mode)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from openfaas.local.services import free_port
from shared.pipeline.cleanup import run_cleanup
from shared.rules.retention import RetentionConfig
from shared.settings import get_settings
from shared.streams import CONSUMER_GROUP
from tests.factories import default_project, insert_monitor

NOW = datetime(2025, 6, 15, 2, 0, 7, tzinfo=UTC)
OLD = NOW - timedelta(hours=48)
RECENT = NOW - timedelta(hours=1)


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def add_entries(r, stream: str, at: datetime, count: int) -> list[str]:
    return [r.xadd(stream, {"data": "{}"}, id=f"{ms(at) + i}-0") for i in range(count)]


def test_streams_are_trimmed_by_age_but_never_past_a_pending_or_undelivered_entry(clean, aio):
    r = clean.redis()
    jobs = "sc:jobs:http_request:us-east"
    old_jobs = add_entries(r, jobs, OLD, 10)
    recent_jobs = add_entries(r, jobs, RECENT, 3)
    r.xgroup_create(jobs, CONSUMER_GROUP, id="0")
    delivered = [entry_id for entry_id, _ in r.xreadgroup(CONSUMER_GROUP, "c1", {jobs: ">"}, count=6)[0][1]]
    r.xack(jobs, CONSUMER_GROUP, *delivered[:3])  # 4th-6th stay pending; 7th on were never delivered

    results = "sc:results"
    add_entries(r, results, OLD, 5)
    recent_results = add_entries(r, results, RECENT, 2)
    r.xgroup_create(results, CONSUMER_GROUP, id="0")
    everything = [entry_id for entry_id, _ in r.xreadgroup(CONSUMER_GROUP, "c1", {results: ">"})[0][1]]
    r.xack(results, CONSUMER_GROUP, *everything)

    dead = jobs + ":dead"
    add_entries(r, dead, NOW - timedelta(days=40), 1)
    old_dead = add_entries(r, dead, OLD, 1)  # dead letters stay as long as raw results (30 days)

    events = "sc:events"  # no consumer group: age alone decides
    add_entries(r, events, OLD, 4)
    recent_events = add_entries(r, events, RECENT, 1)
    r.set("sc:not-a-stream", "x")
    lengths = {stream: r.xlen(stream) for stream in (jobs, results, dead, events)}

    dry = aio.run(run_cleanup(dry_run=True, now=NOW, config=RetentionConfig()))
    assert {stream: r.xlen(stream) for stream in lengths} == lengths, "a dry run trims nothing"
    assert {trim.stream: trim.min_id for trim in dry.streams} == {
        jobs: old_jobs[3],
        results: f"{ms(NOW - timedelta(hours=24))}-0",
        dead: f"{ms(NOW - timedelta(days=30))}-0",
        events: f"{ms(NOW - timedelta(hours=24))}-0",
    }
    assert all(trim.trimmed is None for trim in dry.streams)

    real = aio.run(run_cleanup(dry_run=False, now=NOW, config=RetentionConfig()))
    assert {trim.stream: trim.trimmed for trim in real.streams} == {jobs: 3, results: 5, dead: 1, events: 4}
    assert [entry_id for entry_id, _ in r.xrange(jobs)] == old_jobs[3:] + recent_jobs
    assert [entry_id for entry_id, _ in r.xrange(results)] == recent_results
    assert [entry_id for entry_id, _ in r.xrange(dead)] == old_dead
    assert [entry_id for entry_id, _ in r.xrange(events)] == recent_events
    pending = r.xpending_range(jobs, CONSUMER_GROUP, "-", "+", 10)
    assert [p["message_id"] for p in pending] == delivered[3:6], "pending entries are still there to reclaim"
    assert r.xreadgroup(CONSUMER_GROUP, "c1", {jobs: ">"})[0][1][0][0] == old_jobs[6]
    assert real.artifacts.skipped == "no artifacts bucket configured (S3_BUCKET)"


@pytest.fixture
def s3_endpoint():
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def test_counters_of_deleted_monitors_are_dropped_and_those_of_existing_ones_kept(clean, aio):
    from shared.telemetry import METRICS, Tally

    kept = insert_monitor(clean)
    deleted = uuid.uuid4()  # counted by a check, then its monitor was deleted
    tally = Tally()
    for monitor_id in (kept, deleted):
        tally.count("supercheck_monitor_checks", 3, monitor_id=monitor_id, location="us-east", result="up")
        tally.count(
            "supercheck_monitor_checks", 1, monitor_id=monitor_id, location="eu-central", result="down"
        )
        tally.count("supercheck_monitor_alerts", 1, monitor_id=monitor_id, kind="failure", outcome="sent")
    assert aio.run(tally.flush())
    r = clean.redis()
    checks, alerts = (
        METRICS[name].key for name in ("supercheck_monitor_checks", "supercheck_monitor_alerts")
    )
    before = {key: r.hgetall(key) for key in (checks, alerts)}

    dry = aio.run(run_cleanup(dry_run=True, now=NOW, config=RetentionConfig()))
    assert dry.monitor_counters_pruned == 3
    assert {key: r.hgetall(key) for key in (checks, alerts)} == before, "a dry run deletes nothing"

    real = aio.run(run_cleanup(dry_run=False, now=NOW, config=RetentionConfig()))
    assert real.monitor_counters_pruned == 3
    left = [field for key in (checks, alerts) for field in r.hkeys(key)]
    assert len(left) == 3 and all(field.startswith(str(kept)) for field in left)


def test_old_synthetic_artifacts_are_deleted_but_not_those_of_a_kept_status_change(clean, aio, s3_endpoint):
    settings = get_settings().model_copy(
        update={
            "s3_endpoint_url": s3_endpoint,
            "s3_bucket": "monitor-artifacts",
            "s3_access_key_id": "test-key",
            "s3_secret_access_key": "test-secret",
        }
    )
    s3 = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id="test-key",
        aws_secret_access_key="test-secret",
    )
    s3.create_bucket(Bucket="monitor-artifacts")
    monitor_id = clean.sql(
        """insert into monitors (project_id, name, type, target, frequency_minutes)
           values (%s, 'Journey', 'synthetic_test', 'x', 5) returning id""",
        (default_project(clean),),
    )[0][0]
    flip_run = clean.sql(
        """insert into runs (monitor_id, scheduled_at, expected_locations, deadline)
           values (%s, now(), '{us-east}', now()) returning id""",
        (monitor_id,),
    )[0][0]
    clean.sql(
        """insert into monitor_results (run_id, monitor_id, location, status, checked_at, is_status_change)
           values (%s, %s, 'us-east', 'down', now(), true)""",
        (flip_run, monitor_id),
    )
    kept = [f"synthetic/{monitor_id}/{flip_run}/us-east/{name}" for name in ("trace.zip", "final.png")]
    doomed = [f"synthetic/{monitor_id}/{uuid.uuid4()}/eu-central/trace.zip" for _ in range(1100)]
    doomed.append(f"synthetic/{monitor_id}/{flip_run}/eu-central/trace.zip")  # that location did not flip
    elsewhere = ["reports/2020/summary.html"]
    for key in kept + doomed + elsewhere:
        s3.put_object(Bucket="monitor-artifacts", Key=key, Body=b"artifact")

    def stored() -> set[str]:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket="monitor-artifacts")
        return {item["Key"] for page in pages for item in page.get("Contents", [])}

    today = aio.run(run_cleanup(dry_run=False, config=RetentionConfig(), settings=settings))
    assert today.artifacts.deleted == 0 and len(stored()) == 1104, "nothing is older than 30 days yet"

    later = datetime.now(UTC) + timedelta(days=31)
    dry = aio.run(run_cleanup(dry_run=True, now=later, config=RetentionConfig(), settings=settings))
    assert dry.artifacts.deleted == len(doomed) and len(stored()) == 1104

    real = aio.run(run_cleanup(dry_run=False, now=later, config=RetentionConfig(), settings=settings))
    assert real.artifacts.deleted == len(doomed) and real.artifacts.bucket == "monitor-artifacts"
    assert stored() == set(kept + elsewhere)
    assert not real.notes
