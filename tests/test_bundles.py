"""Job bundles: schedule publishes many jobs per stream entry; check functions and the connector take them apart."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from functions_framework.aio import create_asgi_app

from openfaas.connector.connector import Connector, ConnectorConfig, _dead_letters
from shared import streams
from shared.models import CheckJob
from shared.pipeline import routing
from shared.pipeline.batch import parse_job_batch
from shared.pipeline.schedule import redispatch_stale_runs, run_now, schedule_tick
from shared.rules.batch_deadline import time_to_give
from shared.settings import reset_settings_cache
from tests.factories import (
    LOCATIONS,
    a_job,
    bundle,
    default_project,
    insert_monitor,
    seed_due_monitors,
    signed,
)
from tests.servers import LoopbackHttpServer, wait_until

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def entries_of(infra, check_type: str, location: str) -> list[dict]:
    return [
        streams.decode(fields) for _, fields in infra.redis().xrange(streams.job_stream(check_type, location))
    ]


def jobs_of(entry: dict) -> list[dict]:
    """The CheckJob envelopes an entry carries: a bundle's jobs completed with its type and location."""
    if entry["kind"] != "check_jobs":
        return [entry]
    return [{"type": entry["type"], "location": entry["location"], **job} for job in entry["jobs"]]


# --- schedule --------------------------------------------------------------------------------------


def test_a_tick_publishes_bundles_of_at_most_one_post_of_jobs_each(clean, aio):
    seed_due_monitors(clean, 130, datetime.now(UTC) - timedelta(seconds=5))
    report = aio.run(schedule_tick())
    assert report.runs_created == 130 and report.jobs_published == 390
    seen = set()
    for location in LOCATIONS:
        entries = entries_of(clean, "http_request", location)
        assert len(entries) < 130 / 10, "jobs travel in bundles, not one entry each"
        for entry in entries:
            jobs = jobs_of(entry)
            assert 1 <= len(jobs) <= routing.jobs_per_entry("http_request")
            for job in map(CheckJob.model_validate, jobs):
                assert (job.type, job.location) == ("http_request", location)
                seen.add((job.run_id, job.location))
    assert len(seen) == 390
    run_ids = [uuid.UUID(run_id) for run_id in report.run_ids]
    assert {run_id.version for run_id in run_ids} == {7}, "time-ordered run ids"
    assert {str(run_id) for run_id, _ in seen} == set(report.run_ids)


def test_slow_check_types_get_one_plain_job_per_entry(clean, aio):
    clean.sql(
        """insert into monitors (project_id, name, type, target, frequency_minutes, next_run_at)
           select %s, 'journey ' || g, 'synthetic_test', 'test-' || g, 5, now() - interval '1 second'
           from generate_series(1, 3) g""",
        (default_project(clean),),
    )
    aio.run(schedule_tick())
    for location in LOCATIONS:
        entries = entries_of(clean, "synthetic_test", location)
        assert [entry["kind"] for entry in entries] == ["check_job"] * 3


def test_run_now_and_the_outbox_sweep_publish_bundles_too(clean, aio):
    seed_due_monitors(clean, 3, datetime.now(UTC) + timedelta(hours=1))
    monitor_ids = [row[0] for row in clean.sql("select id from monitors")]
    report = aio.run(run_now(monitor_ids))
    assert report.runs_created == 3 and report.jobs_published == 9
    for location in LOCATIONS:
        (entry,) = entries_of(clean, "http_request", location)
        assert entry["kind"] == "check_jobs" and (entry["type"], entry["location"]) == (
            "http_request",
            location,
        )
        assert len(entry["jobs"]) == 3 and "location" not in entry["jobs"][0], "said once per bundle"

    clean.redis().flushall()
    clean.sql(
        "insert into dispatch_batches (id, run_ids, created_at) values (%s, %s, now() - interval '1 hour')",
        (uuid.uuid4(), [uuid.UUID(run_id) for run_id in report.run_ids]),
    )
    assert aio.run(redispatch_stale_runs(datetime.now(UTC))) == 3
    for location in LOCATIONS:
        (entry,) = entries_of(clean, "http_request", location)
        assert {job["run_id"] for job in entry["jobs"]} == set(report.run_ids)


def test_a_slot_that_already_has_a_run_is_skipped_without_failing_the_batch(clean, aio):
    now = datetime.now(UTC)
    due_at = now - timedelta(seconds=5)
    seed_due_monitors(clean, 5, due_at)
    taken = clean.sql("select id from monitors order by id limit 1")[0][0]
    existing = uuid.uuid4()
    clean.sql(
        """insert into runs (id, monitor_id, scheduled_at, expected_locations, deadline)
           values (%s, %s, %s, %s, %s)""",
        (existing, taken, due_at, LOCATIONS, now + timedelta(minutes=1)),
    )
    report = aio.run(schedule_tick(now))
    assert report.runs_created == 4 and report.jobs_published == 12
    assert clean.sql("select count(*) from runs where monitor_id = %s", (taken,)) == [(1,)]
    assert clean.sql("select count(*) from monitors where next_run_at <= %s", (now,)) == [(0,)], (
        "the taken slot is passed, like every other claimed one"
    )
    assert clean.sql("select count(*) from dispatch_batches") == [(0,)]


def test_deleting_a_monitor_still_deletes_its_runs_and_their_results(clean, aio):
    seed_due_monitors(clean, 2, datetime.now(UTC) - timedelta(seconds=1))
    aio.run(schedule_tick())
    gone, kept = [row[0] for row in clean.sql("select id from monitors order by id")]
    run_of_gone = clean.sql("select id from runs where monitor_id = %s", (gone,))[0][0]
    clean.sql(
        """insert into monitor_results (run_id, monitor_id, location, status, checked_at)
           values (%s, %s, 'us-east', 'up', now())""",
        (run_of_gone, gone),
    )
    clean.sql("delete from monitors where id = %s", (gone,))
    assert clean.sql("select monitor_id from runs") == [(kept,)]
    assert clean.sql("select count(*) from monitor_results") == [(0,)]


# --- check functions ------------------------------------------------------------------------------


def test_reading_a_job_batch_keeps_good_jobs_and_names_each_bad_one():
    good, other = a_job(), a_job(location="eu-central")
    bad = a_job()
    del bad["run_id"]
    batch = parse_job_batch(
        {
            "messages": [
                {"id": "1-0", "data": good},
                {"id": "2-0", "data": bundle(other, bad, good)},
                {"id": "3-0", "data": bundle()},
                {"id": "4-0", "data": {"v": 1}},
                {"id": "5-0", "data": bundle({k: v for k, v in other.items() if k != "type"}, "not a job")},
                {"id": "6-0", "data": bundle(other)},
            ]
        }
    )
    assert [str(job.run_id) for job in batch.items] == [
        good["run_id"],
        other["run_id"],
        good["run_id"],
        other["run_id"],
        other["run_id"],
    ]
    assert batch.processed == ["1-0", "6-0"]
    rejected = {item["id"]: item for item in batch.rejected}
    assert set(rejected) == {"2-0", "3-0", "4-0", "5-0"}
    assert [job["index"] for job in rejected["5-0"]["jobs"]] == [1], "a job missing type takes the bundle's"
    (invalid,) = rejected["2-0"]["jobs"]
    assert invalid["index"] == 1 and invalid["job"] == bad
    assert invalid["error"] == "jobs.1.run_id: is required"
    assert rejected["2-0"]["error"].startswith("1 of 3 jobs in the bundle are invalid")
    assert rejected["3-0"]["error"].startswith("jobs:")
    assert "run_id" in rejected["4-0"]["error"]


def insert_run(infra, target: str) -> tuple[uuid.UUID, uuid.UUID]:
    monitor_id = insert_monitor(
        infra, "bundled", target=target, next_run_at=datetime.now(UTC) + timedelta(hours=1)
    )
    run_id = uuid.uuid4()
    infra.sql(
        """insert into runs (id, monitor_id, scheduled_at, expected_locations, deadline)
           values (%s, %s, now(), %s, now() + interval '1 minute')""",
        (run_id, monitor_id, LOCATIONS),
    )
    return monitor_id, run_id


def test_a_bundle_with_a_bad_job_stores_the_good_ones_once_and_reports_the_bad_one(
    clean, aio, http_target, internal_targets
):
    monitor_id, run_id = insert_run(clean, http_target.url)
    good = [
        a_job(run_id=str(run_id), monitor_id=str(monitor_id), location=loc, target=http_target.url)
        for loc in LOCATIONS[:2]
    ]
    bad = a_job(type="telnet")
    batch = {"messages": [{"id": "7-0", "data": bundle(*good, bad)}]}
    app = create_asgi_app(target="handle", source=str(PROJECT_ROOT / "functions/check_http/main.py"))

    async def deliver() -> dict:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client:
            response = await client.post("/", **signed(batch))  # as the connector delivers it
            assert response.status_code == 200, response.text
            return response.json()

    first = aio.run(deliver())
    assert first["executed"] == 2 and first["processed"] == []
    (rejected,) = first["rejected"]
    assert rejected["id"] == "7-0" and [job["index"] for job in rejected["jobs"]] == [2]
    assert clean.sql("select location from monitor_results order by location") == [
        ("eu-central",),
        ("us-east",),
    ]
    checks = len(http_target.requests)
    second = aio.run(deliver())  # redelivered: the stored jobs do not run again
    assert second["executed"] == 0 and len(http_target.requests) == checks
    assert clean.sql("select count(*) from monitor_results") == [(2,)]


@pytest.mark.parametrize(
    ("needed", "time_left", "window", "given"),
    [
        (35.0, 115.0, 115.0, 35.0),  # fits: all it needs
        (35.0, 35.0, 115.0, 35.0),
        (35.0, 20.0, 115.0, None),  # would be cut short: left for the next delivery
        (35.0, 0.0, 115.0, None),
        (305.0, 115.0, 115.0, 115.0),  # could never fit (stored before the limits): what is left, not never
        (305.0, 10.0, 115.0, 10.0),
        (305.0, 0.0, 115.0, None),
    ],
)
def test_a_job_starts_only_with_the_time_it_needs_before_its_batch_must_answer(
    needed, time_left, window, given
):
    assert time_to_give(needed, time_left, window) == given


def check_http_app():
    return create_asgi_app(target="handle", source=str(PROJECT_ROOT / "functions/check_http/main.py"))


async def deliver_to(app, batch: dict) -> dict:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client:
        response = await client.post("/", **signed(batch))
        assert response.status_code == 200, response.text
        return response.json()


def test_a_batch_cut_short_keeps_the_checks_that_finished_and_its_redelivery_runs_only_the_rest(
    clean, aio, internal_targets
):
    """The watchdog's kill at exec_timeout, or a crash: whatever finished is stored already."""
    fast, held = LoopbackHttpServer().start(), LoopbackHttpServer(hold=threading.Event()).start()
    try:
        runs = [insert_run(clean, server.url) for server in (fast, held)]
        jobs = [
            a_job(run_id=str(run_id), monitor_id=str(monitor_id), target=server.url)
            for (monitor_id, run_id), server in zip(runs, (fast, held), strict=True)
        ]
        batch = {"messages": [{"id": "1-0", "data": bundle(*jobs)}]}
        app = check_http_app()
        cut_short = asyncio.run_coroutine_threadsafe(deliver_to(app, batch), aio.loop)
        held.wait_for_requests(1)
        wait_until(
            lambda: clean.sql("select run_id from monitor_results") == [(runs[0][1],)],
            message="the finished check stored while its bundle-mate still runs",
        )
        cut_short.cancel()
        held.hold.set()
        reply = aio.run(deliver_to(app, batch))
        assert reply["executed"] == 1 and reply["processed"] == ["1-0"]
        assert [len(fast.requests), len(held.requests)] == [1, 2]
        assert sorted(clean.sql("select run_id from monitor_results")) == sorted(
            (run_id,) for _, run_id in runs
        )
    finally:
        held.hold.set()
        fast.stop()
        held.stop()


def test_a_job_that_cannot_finish_before_the_batch_must_answer_is_left_for_the_next_delivery(
    clean, aio, internal_targets, monkeypatch
):
    fast, later = LoopbackHttpServer().start(), LoopbackHttpServer().start()
    try:
        runs = [insert_run(clean, server.url) for server in (fast, later)]
        now = datetime.now(UTC)
        jobs = [
            a_job(
                run_id=str(runs[0][1]),
                monitor_id=str(runs[0][0]),
                target=fast.url,
                config={"timeoutSeconds": 1},
            ),
            # dispatched ahead: its wait for the slot and its check (1 s and the slack) outlast the batch's time
            a_job(
                run_id=str(runs[1][1]),
                monitor_id=str(runs[1][0]),
                target=later.url,
                config={"timeoutSeconds": 1},
                scheduled_at=(now + timedelta(seconds=4)).isoformat(),
            ),
        ]
        batch = {"messages": [{"id": "1-0", "data": bundle(*jobs)}]}
        app = check_http_app()
        monkeypatch.setenv("exec_timeout", "12s")  # 7 s for the batch once the reply's margin is kept
        reset_settings_cache()
        first = aio.run(deliver_to(app, batch))
        assert (first["executed"], first["left"], first["processed"], first["rejected"]) == (1, 1, [], [])
        assert [len(fast.requests), len(later.requests)] == [1, 0]
        assert clean.sql("select run_id from monitor_results") == [(runs[0][1],)]
        monkeypatch.delenv("exec_timeout")
        reset_settings_cache()
        second = aio.run(deliver_to(app, batch))  # as the connector redelivers what was not answered
        assert (second["executed"], second["left"], second["processed"]) == (1, 0, ["1-0"])
        assert [len(fast.requests), len(later.requests)] == [1, 1]
    finally:
        fast.stop()
        later.stop()


# --- connector ------------------------------------------------------------------------------------


def test_the_connector_counts_jobs_not_entries_when_it_fills_a_post():
    connector = Connector(
        ConnectorConfig(redis_url="redis://127.0.0.1:1/0", gateway_url="http://127.0.0.1:1", streams=[])
    )
    stream = streams.job_stream("http_request", "us-east")
    sizes = [30, 20, 1, 50, 70, 1, 1]
    messages = [
        {"id": f"{n}-0", "data": {"kind": "check_jobs", "jobs": [{}] * size} if size > 1 else a_job()}
        for n, size in enumerate(sizes)
    ]
    posts = connector._posts(stream, messages)
    assert [[sizes[int(m["id"].split("-")[0])] for m in post] for post in posts] == [
        [30, 20],
        [1],
        [50],
        [70],  # a bundle is never split, even past the cap
        [1, 1],
    ]
    synthetic = streams.job_stream("synthetic_test", "us-east")
    assert [len(post) for post in connector._posts(synthetic, [{"data": a_job()}] * 5)] == [2, 2, 1]


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        (
            {"id": "1-0", "error": "run_id: is required"},
            [("1-0", "whole", "rejected by f: run_id: is required")],
        ),
        (
            {
                "id": "1-0",
                "error": "1 of 2",
                "jobs": [{"index": 1, "error": "jobs.1.type: bad", "job": {"a": 1}}],
            },
            [("1-0", '{"a": 1}', "rejected by f: jobs.1.type: bad")],
        ),
        ({"id": "1-0", "error": "odd", "jobs": ["not a job"]}, [("1-0", "whole", "rejected by f: odd")]),
    ],
)
def test_a_rejected_bundle_dead_letters_only_its_invalid_jobs(item, expected):
    dead = _dead_letters("f", item["id"], item, {"data": "whole"})
    assert [(mid, fields["data"], reason) for mid, fields, reason in dead] == expected


def test_through_the_connector_a_bad_job_is_dead_lettered_alone_and_the_bundle_acknowledged(
    stack, clean, http_target
):
    monitor_id, run_id = insert_run(clean, http_target.url)
    good = a_job(run_id=str(run_id), monitor_id=str(monitor_id), target=http_target.url)
    bad = a_job(deadline="not a time")
    stream = streams.job_stream("http_request", "us-east")
    r = clean.redis()
    r.xadd(stream, {"data": json.dumps(bundle(good, bad))})
    dead = wait_until(
        lambda: r.xrange(streams.dead_letter_stream(stream)), message="the bad job dead-lettered"
    )
    wait_until(lambda: r.xpending(stream, streams.CONSUMER_GROUP)["pending"] == 0, message="bundle acked")
    ((_, fields),) = dead
    assert fields["job_index"] == "1" and json.loads(fields["data"]) == bad
    assert "jobs.1.deadline" in fields["reason"]
    assert clean.sql("select run_id, location from monitor_results") == [(run_id, "us-east")]


def test_deleting_a_monitor_mid_check_drops_its_result_and_stores_its_bundle_mates_once(stack, clean):
    """The deleted monitor's result would fail the foreign key of the bundle's one insert: a 500, then every
    bundle-mate's target hit again on each redelivery, and the jobs dead-lettered in the end."""
    held = LoopbackHttpServer(hold=threading.Event()).start()
    mates = [LoopbackHttpServer().start() for _ in range(2)]
    try:
        runs = [insert_run(clean, server.url) for server in [held, *mates]]
        jobs = [
            a_job(run_id=str(run_id), monitor_id=str(monitor_id), target=server.url)
            for (monitor_id, run_id), server in zip(runs, [held, *mates], strict=True)
        ]
        stream = streams.job_stream("http_request", "us-east")
        r = clean.redis()
        r.xadd(stream, {"data": json.dumps(bundle(*jobs))})
        held.wait_for_requests(1)  # the bundle's checks are running, one of them held by its target
        clean.sql("delete from monitors where id = %s", (runs[0][0],))
        held.hold.set()
        wait_until(lambda: r.xpending(stream, streams.CONSUMER_GROUP)["pending"] == 0, message="bundle acked")
        assert r.xrange(streams.dead_letter_stream(stream)) == []
        assert [len(server.requests) for server in [held, *mates]] == [1, 1, 1]
        assert sorted(clean.sql("select run_id, count(*) from monitor_results group by run_id")) == sorted(
            (run_id, 1) for _, run_id in runs[1:]
        )
    finally:
        held.hold.set()
        for server in [held, *mates]:
            server.stop()


def test_the_connector_does_not_reclaim_messages_it_still_holds(clean, aio):
    """A read can bring many bundles that wait for a free POST slot; reclaiming them as idle would POST twice."""
    # A stream of its own, for a location no connector reads: the module's `stack` (started by the test above
    # and kept for the module) still runs its connector, which, after `clean` flushed Redis, re-creates its
    # consumer groups on the us-east job streams. On a shared stream that raced the group created here
    # (BUSYGROUP) and could take the message before this test's own read.
    stream = streams.job_stream("http_request", f"nowhere-{uuid.uuid4().hex}")
    connector = Connector(
        ConnectorConfig(
            redis_url=clean.redis_url, gateway_url="http://127.0.0.1:1", streams=[stream], idle_reclaim_ms=0
        )
    )
    dispatched: list[str] = []

    async def record(_stream, entries):
        dispatched.extend(message_id for message_id, _ in entries)

    connector._dispatch = record
    r = clean.redis()
    r.xgroup_create(stream, streams.CONSUMER_GROUP, id="0", mkstream=True)
    message_id = r.xadd(stream, {"data": json.dumps(a_job())})
    r.xreadgroup(streams.CONSUMER_GROUP, connector.config.consumer, {stream: ">"})

    async def reclaim() -> int:
        try:
            return await connector.reclaim_idle()
        finally:
            await connector.close()

    connector.held.add((stream, message_id))
    assert aio.run(connector.reclaim_idle()) == 0 and dispatched == []
    connector.held.clear()
    assert aio.run(reclaim()) == 1 and dispatched == [message_id]
