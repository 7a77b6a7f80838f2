"""The pipeline counts its own work: real check batches, schedule ticks, finalizations, alert sends, cleanup runs
and connector deliveries move their telemetry by exactly what happened (a redelivery by nothing), and
pipeline_families() exposes them with the streams' backlogs and the database's connections, in a text
prometheus_client renders and parses back."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from openfaas.connector.connector import Connector, ConnectorConfig
from shared import streams
from shared.metrics.pipeline import pipeline_families
from shared.models import CheckJob, ResultEnvelope
from shared.notify import base as notify_base
from shared.pipeline.aggregate import finalize_runs, sweep_deadlines
from shared.pipeline.alert import send_alerts
from shared.pipeline.batch import parse_job_batch
from shared.pipeline.check import execute_jobs
from shared.pipeline.cleanup import run_cleanup
from shared.pipeline.schedule import schedule_tick
from shared.redis import publish, publish_payloads
from shared.rules.retention import RetentionConfig
from shared.settings import reset_settings_cache
from shared.telemetry import METRICS, read_counter, read_histogram
from tests.factories import (
    LOCATIONS,
    NOW,
    UNREACHABLE_TARGET,
    a_job,
    add_alert,
    add_provider,
    insert_monitor,
    record_run,
    seed_due_monitors,
    seed_year,
)


def counter(infra, metric: str) -> dict[tuple[str, ...], float]:
    spec = METRICS[metric]
    return read_counter(spec, infra.redis().hgetall(spec.key))


def observations(infra, metric: str) -> dict[tuple[str, ...], float]:
    """A histogram's observation count per series."""
    spec = METRICS[metric]
    return {
        labels: value.buckets[-1][1]
        for labels, value in read_histogram(spec, infra.redis().hgetall(spec.key)).items()
    }


def jobs_of(infra, location: str = "us-east") -> list[CheckJob]:
    """The jobs schedule published for a location, bundles opened as a check function opens them."""
    entries = infra.redis().xrange(streams.job_stream("http_request", location))
    batch = parse_job_batch(
        {"messages": [{"id": mid, "data": streams.decode(fields)} for mid, fields in entries]}
    )
    return list(batch.items)


def everywhere() -> dict:
    return {"enabled": True, "locations": LOCATIONS, "strategy": "all", "threshold": 50}


# --- check functions ------------------------------------------------------------------------------------------


def test_a_check_batch_counts_each_stored_result_once_and_its_redelivery_counts_nothing(
    clean, aio, http_target, internal_targets
):
    up = insert_monitor(clean, "up", target=http_target.url, location_config=everywhere())
    down = insert_monitor(clean, "down", target=UNREACHABLE_TARGET, location_config=everywhere())
    aio.run(schedule_tick())
    jobs = [job for location in LOCATIONS for job in jobs_of(clean, location)]
    assert len(jobs) == 6

    assert aio.run(execute_jobs(jobs)) == (6, [])
    expected = {(str(up), location, "up"): 1.0 for location in LOCATIONS} | {
        (str(down), location, "down"): 1.0 for location in LOCATIONS
    }
    assert counter(clean, "supercheck_monitor_checks") == expected
    per_location = {("http_request", location): 2.0 for location in LOCATIONS}
    assert observations(clean, "supercheck_check_duration_seconds") == per_location
    assert observations(clean, "supercheck_schedule_lag_seconds") == per_location

    assert aio.run(execute_jobs(jobs)) == (0, []), "stored results are not checked again"
    assert counter(clean, "supercheck_monitor_checks") == expected
    assert observations(clean, "supercheck_check_duration_seconds") == per_location


def test_concurrent_deliveries_of_one_batch_count_the_results_once(clean, aio, http_target, internal_targets):
    monitor_id = insert_monitor(clean, "twice", target=http_target.url, location_config=everywhere())
    aio.run(schedule_tick())
    jobs = jobs_of(clean)

    async def both():
        # the same job twice in one batch too, as when a reclaimed copy travels with the original
        return await asyncio.gather(execute_jobs(jobs + jobs), execute_jobs(jobs))

    ran = sum(checks for checks, _ in aio.run(both()))
    assert ran >= 1
    assert clean.sql("select count(*) from monitor_results") == [(1,)]
    assert counter(clean, "supercheck_monitor_checks") == {(str(monitor_id), "us-east", "up"): 1.0}
    # every check that ran is timed, stored or not
    assert observations(clean, "supercheck_check_duration_seconds") == {("http_request", "us-east"): ran}


def test_schedule_lag_is_the_time_from_the_due_slot_to_the_check_start(
    clean, aio, http_target, internal_targets
):
    monitor_id = insert_monitor(clean, "late", target=http_target.url)
    aio.run(schedule_tick())
    (job,) = jobs_of(clean)
    late = job.model_copy(update={"scheduled_at": job.scheduled_at - timedelta(seconds=45)})
    aio.run(execute_jobs([late]))
    spec = METRICS["supercheck_schedule_lag_seconds"]
    (lag,) = read_histogram(spec, clean.redis().hgetall(spec.key)).values()
    buckets = dict(lag.buckets)
    assert 45 <= lag.sum < 300, "45 s late, started within the test's lifetime"
    assert (buckets["30.0"], buckets["60.0"], buckets["+Inf"]) == (0, 1, 1)
    assert clean.sql("select count(*) from monitor_results where monitor_id = %s", (monitor_id,)) == [(1,)]


# --- schedule -------------------------------------------------------------------------------------------------


def test_a_tick_counts_the_monitors_due_and_the_runs_recorded_and_dispatched(clean, aio):
    seed_due_monitors(clean, 5, datetime.now(UTC) - timedelta(seconds=1))
    report = aio.run(schedule_tick())
    assert report.runs_created == 5
    assert counter(clean, "supercheck_schedule_ticks") == {(): 1.0}
    assert counter(clean, "supercheck_schedule_runs") == {
        ("due",): 5.0,
        ("recorded",): 5.0,
        ("dispatched",): 5.0,
    }
    aio.run(schedule_tick())  # nothing due any more: a tick, no runs
    assert counter(clean, "supercheck_schedule_ticks") == {(): 2.0}
    assert counter(clean, "supercheck_schedule_runs")[("dispatched",)] == 5.0


def test_the_outbox_sweep_counts_the_runs_it_publishes_again(clean, aio):
    seed_due_monitors(clean, 2, datetime.now(UTC) - timedelta(seconds=1))
    aio.run(schedule_tick())
    # as if the tick had died between its commit and its XADD: its dispatch batch still stands, and is old
    run_ids = [row[0] for row in clean.sql("select id from runs")]
    clean.sql(
        "insert into dispatch_batches (id, run_ids, created_at) values (%s, %s, now() - interval '1 hour')",
        (uuid.uuid4(), run_ids),
    )
    aio.run(schedule_tick())
    assert counter(clean, "supercheck_schedule_runs")[("redispatched",)] == 2.0


# --- aggregate ------------------------------------------------------------------------------------------------


def test_only_the_runs_a_call_finalizes_are_counted_and_deadline_runs_name_their_missing_locations(
    clean, aio
):
    monitor_id = insert_monitor(
        clean, "agg", next_run_at=datetime.now(UTC) + timedelta(days=1), location_config={"strategy": "all"}
    )
    t0 = datetime.now(UTC) - timedelta(minutes=10)
    complete = [record_run(clean, monitor_id, t0 + timedelta(minutes=m), {"us-east": "up"}) for m in range(3)]
    partial = record_run(clean, monitor_id, t0 + timedelta(minutes=3), {"us-east": "up"})
    clean.sql(
        "update runs set expected_locations = '{us-east,eu-central,asia-pacific}' where id = %s", (partial,)
    )

    async def race():
        return await asyncio.gather(finalize_runs(complete), finalize_runs(reversed(complete)))

    assert sum(aio.run(race())) == 3
    assert aio.run(finalize_runs(complete + [partial])) == 0, "finalized already, or still waiting"
    assert counter(clean, "supercheck_runs_finalized") == {("false",): 3.0}
    assert counter(clean, "supercheck_run_missing_locations") == {}

    assert aio.run(sweep_deadlines(now=datetime.now(UTC) + timedelta(minutes=5))) == 1
    assert aio.run(sweep_deadlines(now=datetime.now(UTC) + timedelta(minutes=5))) == 0
    assert counter(clean, "supercheck_runs_finalized") == {("false",): 3.0, ("true",): 1.0}
    assert counter(clean, "supercheck_run_missing_locations") == {
        ("eu-central",): 1.0,
        ("asia-pacific",): 1.0,
    }


# --- alert ----------------------------------------------------------------------------------------------------


@pytest.fixture
def fast_retries(internal_targets, monkeypatch):
    monkeypatch.setattr(notify_base, "RETRY_BACKOFF_SECONDS", (0.01, 0.01))


def test_each_recorded_delivery_outcome_is_counted_once(clean, aio, webhook_receiver, fast_retries):
    good = add_provider(clean, {"url": webhook_receiver.url + "ok"})
    broken = add_provider(clean, {"url": UNREACHABLE_TARGET + "hook"}, name="broken")
    event = add_alert(clean, [good, broken])
    quiet = add_alert(clean, [good], kind="recovery", suppressed_reason="maintenance window 'deploy'")
    counts = aio.run(send_alerts([event, quiet]))
    assert (counts["sent"], counts["failed"], counts["suppressed"]) == (1, 1, 1)
    assert aio.run(send_alerts([event, quiet]))["skipped"] == 3, "a redelivery sends and counts nothing"

    assert counter(clean, "supercheck_alert_deliveries") == {
        ("webhook", "sent"): 1.0,
        ("webhook", "failed"): 1.0,
        ("webhook", "suppressed"): 1.0,
    }
    assert counter(clean, "supercheck_monitor_alerts") == {
        (str(event.monitor_id), "failure", "sent"): 1.0,
        (str(event.monitor_id), "failure", "failed"): 1.0,
        (str(quiet.monitor_id), "recovery", "suppressed"): 1.0,
    }


# --- cleanup --------------------------------------------------------------------------------------------------


def test_cleanup_counts_the_rows_it_deleted_and_a_dry_run_counts_none(clean, aio):
    seed_year(clean, monitors=1, step="6 hours", days=60)
    config = RetentionConfig(preserve_status_changes=False)
    aio.run(run_cleanup(dry_run=True, now=NOW, config=config))
    assert counter(clean, "supercheck_cleanup_deleted_rows") == {}
    report = aio.run(run_cleanup(dry_run=False, now=NOW, config=config))
    assert report.results_deleted > 0 and report.runs_deleted > 0
    deleted = counter(clean, "supercheck_cleanup_deleted_rows")
    assert deleted[("monitor_results",)] == report.results_deleted
    assert deleted[("runs",)] == report.runs_deleted
    assert sum(deleted.values()) == (
        report.results_deleted
        + report.runs_deleted
        + report.alert_history_deleted
        + report.alert_events_deleted
        + report.rollups.hourly_pruned
    )


# --- connector ------------------------------------------------------------------------------------------------


class ScriptedGateway:
    """A loopback gateway: check-http takes everything, aggregate fails, alert rejects what it is told to."""

    def __init__(self, rejected_by_alert: set[str]) -> None:
        self.rejected_by_alert = rejected_by_alert
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.path.endswith("/aggregate"):
                    self.send_response(500)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                ids = [message["id"] for message in body["messages"]]
                refused = [i for i in ids if self.path.endswith("/alert") and owner.refuses(body, i)]
                reply = json.dumps(
                    {
                        "processed": [i for i in ids if i not in refused],
                        "rejected": [{"id": i, "error": "bad"} for i in refused],
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def refuses(self, body: dict, message_id: str) -> bool:
        (message,) = [m for m in body["messages"] if m["id"] == message_id]
        return message["data"].get("alert_event_id") in self.rejected_by_alert

    def stop(self) -> None:
        self.server.shutdown()


def test_connector_deliveries_are_counted_by_function_and_outcome(clean, aio):
    job_stream = streams.job_stream("http_request", "us-east")
    results = [
        ResultEnvelope(run_id=uuid.uuid4(), monitor_id=uuid.uuid4(), location="us-east", status="up")
        for _ in range(2)
    ]
    aio.run(publish_payloads([(job_stream, json.dumps(a_job())) for _ in range(3)]))
    clean.redis().xadd(job_stream, {"not-data": "x"})  # malformed: dead-lettered before any POST
    aio.run(publish([(streams.RESULTS_STREAM, result) for result in results]))
    bad, good = uuid.uuid4(), uuid.uuid4()
    for event_id in (bad, good):
        clean.redis().xadd(
            streams.ALERTS_STREAM,
            {
                streams.PAYLOAD_FIELD: json.dumps(
                    {
                        "v": 1,
                        "kind": "alert",
                        "alert_event_id": str(event_id),
                        "run_id": str(uuid.uuid4()),
                        "monitor_id": str(uuid.uuid4()),
                        "alert_kind": "failure",
                    }
                )
            },
        )
    gateway = ScriptedGateway({str(bad)})
    connector = Connector(
        ConnectorConfig(
            redis_url=clean.redis_url,
            gateway_url=gateway.url,
            streams=[job_stream, streams.RESULTS_STREAM, streams.ALERTS_STREAM],
        )
    )

    async def burst():
        try:
            return await connector.drain(max_seconds=20)
        finally:
            await connector.close()

    try:
        stats = aio.run(burst())
    finally:
        gateway.stop()
    assert stats.acked == 4 and stats.dead_lettered == 2
    assert counter(clean, "supercheck_connector_deliveries") == {
        ("all", "check-http", "ok"): 3.0,
        ("all", "check-http", "dead_letter"): 1.0,
        ("all", "aggregate", "error"): 2.0,
        ("all", "alert", "ok"): 1.0,
        ("all", "alert", "dead_letter"): 1.0,
    }


# --- the families ---------------------------------------------------------------------------------------------


class Families:
    """pipeline_families() as one scrape's families, rendered by prometheus_client and parsed back."""

    def __init__(self, aio) -> None:
        families = aio.run(pipeline_families())

        class Collector:
            def collect(self):
                yield from families

        registry = CollectorRegistry()
        registry.register(Collector())
        self.text = generate_latest(registry).decode()
        self.parsed = {family.name: family for family in text_string_to_metric_families(self.text)}

    def samples(self, family: str, sample_name: str | None = None) -> dict[tuple, float]:
        return {
            tuple(sorted(sample.labels.items())): sample.value
            for sample in self.parsed[family].samples
            if sample_name is None or sample.name == sample_name
        }


def test_the_families_expose_streams_dead_letters_telemetry_and_connections(clean, aio, monkeypatch):
    r = clean.redis()
    job_stream = streams.job_stream("http_request", "us-east")
    for _ in range(3):
        r.xadd(streams.RESULTS_STREAM, {streams.PAYLOAD_FIELD: "{}"})
    r.xgroup_create(streams.RESULTS_STREAM, streams.CONSUMER_GROUP, id="0")
    r.xreadgroup(
        streams.CONSUMER_GROUP, "reader", {streams.RESULTS_STREAM: ">"}, count=1
    )  # 1 pending, 2 unread
    r.xadd(job_stream, {streams.PAYLOAD_FIELD: "{}"})
    r.xadd(streams.dead_letter_stream(job_stream), {"reason": "test"})
    seed_due_monitors(clean, 2, datetime.now(UTC) - timedelta(seconds=1))
    aio.run(schedule_tick())
    r.xgroup_create(job_stream, streams.CONSUMER_GROUP, id="$")  # caught up
    # a regional Redis that is down, with a password in its URL
    monkeypatch.setenv(
        "SC_REGION_REDIS_URLS", json.dumps({"eu-central": "redis://:hunter2-secret@127.0.0.1:1/0"})
    )
    reset_settings_cache()

    scrape = Families(aio)
    assert "hunter2" not in scrape.text and "127.0.0.1:1" not in scrape.text
    assert scrape.samples("supercheck_redis_up") == {
        (("server", "eu-central"),): 0.0,
        (("server", "primary"),): 1.0,
    }

    lengths = {labels[0][1]: value for labels, value in scrape.samples("supercheck_stream_length").items()}
    assert lengths[streams.RESULTS_STREAM] == 3 and lengths[streams.ALERTS_STREAM] == 0
    assert lengths[job_stream] == r.xlen(job_stream) >= 2, "the entry added here and the tick's jobs"
    assert streams.job_stream("port_check", "asia-pacific") in lengths, "every check type and location"
    assert not any(":eu-central" in stream for stream in lengths), "eu-central's streams live in its Redis"
    dead = {labels[0][1]: value for labels, value in scrape.samples("supercheck_stream_dead_letters").items()}
    assert dead[job_stream] == 1 and dead[streams.RESULTS_STREAM] == 0

    group = (("group", streams.CONSUMER_GROUP), ("stream", streams.RESULTS_STREAM))
    assert scrape.samples("supercheck_stream_pending")[group] == 1
    assert scrape.samples("supercheck_stream_lag").get(group) in (None, 2), "2 unread (Redis 7), or not said"
    assert 0 <= scrape.samples("supercheck_stream_lag_seconds")[group] < 300
    caught_up = (("group", streams.CONSUMER_GROUP), ("stream", job_stream))
    assert scrape.samples("supercheck_stream_lag_seconds")[caught_up] == 0
    assert scrape.samples("supercheck_stream_lag")[caught_up] == 0

    assert (
        scrape.samples("supercheck_schedule_runs", "supercheck_schedule_runs_total")[(("stage", "recorded"),)]
        == 2
    )
    assert scrape.samples("supercheck_schedule_ticks", "supercheck_schedule_ticks_total") == {(): 1.0}
    assert scrape.parsed["supercheck_check_duration_seconds"].type == "histogram"
    assert "supercheck_monitor_checks" not in scrape.parsed, "monitor metrics are the metrics function's own"

    connections = scrape.samples("supercheck_db_connections")
    ours = sum(value for labels, value in connections.items() if dict(labels)["application"] == "supercheck")
    assert ours >= 1, "this process's pool, named by SC_FUNCTION_NAME's default"
    ((_, limit),) = scrape.samples("supercheck_db_max_connections").items()
    assert limit >= sum(connections.values()) > 0


def test_a_key_of_another_type_costs_its_own_figures_not_the_scrape(clean, aio):
    r = clean.redis()
    r.set(streams.ALERTS_STREAM, "not a stream")
    r.set(METRICS["supercheck_runs_finalized"].key, "not a hash")
    r.xadd(streams.RESULTS_STREAM, {streams.PAYLOAD_FIELD: "{}"})
    r.hset(METRICS["supercheck_schedule_ticks"].key, "", 4)

    scrape = Families(aio)
    assert scrape.samples("supercheck_redis_up") == {(("server", "primary"),): 1.0}
    lengths = {labels[0][1]: value for labels, value in scrape.samples("supercheck_stream_length").items()}
    assert (lengths[streams.ALERTS_STREAM], lengths[streams.RESULTS_STREAM]) == (0, 1)
    assert scrape.samples("supercheck_runs_finalized") == {}
    assert scrape.samples("supercheck_schedule_ticks", "supercheck_schedule_ticks_total") == {(): 4.0}
