"""The metrics function: who may scrape what, every monitor family's labels and values, formats, and renders kept
for large installs. Through the function's real ASGI app on real Postgres and Redis (Prometheus itself scrapes the
local stack in test_metrics_prometheus.py)."""

from __future__ import annotations

import asyncio
import gzip
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

import shared.metrics.app as metrics_app
import shared.metrics.monitors as metrics_monitors
from shared.metrics.monitors import monitor_state, uptime_params
from shared.telemetry import Tally
from tests.api_client import ApiClient
from tests.factories import add_rollup, default_project, insert_monitor, make_project, record_run, set_marks

OPERATOR_TOKEN = "operator-token-" + "x" * 40
SECRET_IN_URL = "s3cretTOKENinURL"
SECRET_IN_AUTH = "hunter2-basic-auth"


@pytest.fixture
def scrape_env(clean, monkeypatch, aio):
    """No render or uptime figures kept from another test, and a known operator token."""
    monkeypatch.setenv("SC_METRICS_TOKEN", OPERATOR_TOKEN)
    monkeypatch.setattr(metrics_app, "renders", metrics_app.Renders())
    monkeypatch.setattr(metrics_monitors, "uptime_cache", metrics_monitors.UptimeCache())
    yield clean
    # a render the last scrape started in the background finishes with this test's settings, not the next's
    renders = metrics_app.renders

    async def drained():
        await asyncio.gather(*renders.making.values(), return_exceptions=True)

    aio.run(drained())


def scraper(aio, token: str | None) -> ApiClient:
    return ApiClient(aio, token, function="metrics")


def families(response) -> dict:
    assert response.status_code == 200, response.text
    return {family.name: family for family in text_string_to_metric_families(response.text)}


def samples(found: dict, name: str, **labels) -> list:
    family_name = name.removesuffix("_total")
    return [
        sample
        for sample in found[family_name].samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    ]


def finalized(infra, monitor_id, status: str, results: dict[str, dict], consecutive_failures: int = 0):
    """The monitor as aggregate leaves it after a run: status, last run and check time, alert state."""
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30)
    run_id = record_run(infra, monitor_id, at, {location: "up" for location in results})
    for location, columns in results.items():
        if not columns:
            continue
        assignments = ", ".join(f"{column} = %s" for column in columns)
        infra.sql(
            f"update monitor_results set {assignments} where run_id = %s and location = %s",
            (*[json.dumps(v) if isinstance(v, dict) else v for v in columns.values()], run_id, location),
        )
    infra.sql(
        """update monitors set status = %s, last_run_id = %s, last_check_at = %s,
                  alert_state = %s where id = %s""",
        (status, run_id, at, json.dumps({"consecutive_failures": consecutive_failures}), monitor_id),
    )
    return at


# --- pure decisions ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "status, enabled, in_maintenance, state",
    [
        ("up", True, False, "up"),
        ("degraded", True, False, "degraded"),
        ("down", True, False, "down"),
        ("error", True, False, "down"),
        ("pending", True, False, "pending"),
        ("unknown", True, False, "unknown"),
        ("something-new", True, False, "unknown"),
        ("down", False, False, "paused"),
        ("down", False, True, "paused"),
        ("down", True, True, "maintenance"),
    ],
)
def test_a_monitors_state_set_value_follows_pause_then_maintenance_then_its_status(
    status, enabled, in_maintenance, state
):
    assert monitor_state(status, enabled, in_maintenance) == state


def test_uptime_windows_read_whole_days_before_the_daily_mark_and_settled_hours_after_it():
    hourly = datetime(2026, 12, 3, 14, tzinfo=UTC)
    daily = datetime(2026, 12, 2, tzinfo=UTC)
    params = uptime_params(hourly, daily)
    assert params["w1_from"] == datetime(2026, 12, 2, 14, tzinfo=UTC)
    assert params["w7_from"] == datetime(2026, 11, 26, tzinfo=UTC)
    assert params["w30_from"] == datetime(2026, 11, 3, tzinfo=UTC)
    assert params["daily_to"] == daily and params["w7_hourly"] == daily and params["w30_hourly"] == daily
    # hourly rows from the daily mark on (7d and 30d take them after it; 1d reads a part of them)
    assert params["hourly_from"] == daily and params["hourly_to"] == hourly
    # nothing rolled into days yet: the hourly tier answers every window
    params = uptime_params(hourly, None)
    assert params["daily_to"] == params["w30_from"] == params["w30_hourly"] == params["hourly_from"]


# --- access --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer not-a-key", "Basic " + OPERATOR_TOKEN, "Bearer " + OPERATOR_TOKEN[:-1], "Bearer "],
)
def test_a_scrape_without_a_valid_token_is_refused(scrape_env, aio, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    response = scraper(aio, None).get("/", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "supercheck_" not in response.text


def test_a_project_key_sees_its_own_monitors_and_the_operator_token_sees_every_project(scrape_env, aio):
    mine = insert_monitor(scrape_env, "mine")
    other_key = make_project(aio, "Other team")
    other_project = scrape_env.sql("select id from projects where name = 'Other team'")[0][0]
    theirs = scrape_env.sql(
        """insert into monitors (project_id, name, type, target, frequency_minutes)
           values (%s, 'theirs', 'http_request', 'https://127.0.0.1/', 1) returning id""",
        (other_project,),
    )[0][0]
    default_key = make_project(aio, "ignored")  # a key of a third, empty project
    del default_key

    seen_by_other = families(scraper(aio, other_key).get("/"))
    ids = {s.labels["monitor_id"] for s in samples(seen_by_other, "supercheck_monitor_status")}
    assert ids == {str(theirs)}
    assert "supercheck_stream_length" not in seen_by_other, "pipeline metrics are the operator's"

    seen_by_operator = families(scraper(aio, OPERATOR_TOKEN).get("/"))
    ids = {s.labels["monitor_id"] for s in samples(seen_by_operator, "supercheck_monitor_status")}
    assert ids == {str(mine), str(theirs)}
    assert {
        "supercheck_stream_length",
        "supercheck_check_duration_seconds",
        "supercheck_db_connections",
    } <= set(seen_by_operator)
    projects = {s.labels["project"] for s in samples(seen_by_operator, "supercheck_monitor_status")}
    assert projects == {"Default", "Other team"}
    assert default_project(scrape_env)


# --- the monitor families ------------------------------------------------------------------------------------


def test_each_monitor_family_reports_the_last_finalized_run_with_the_documented_labels(scrape_env, aio):
    monitor_id = insert_monitor(scrape_env, "Checkout API", target="https://127.0.0.1:9/pay")
    valid_to = datetime(2027, 3, 1, 12, tzinfo=UTC)
    checked_at = finalized(
        scrape_env,
        monitor_id,
        "down",
        {
            "us-east": {
                "response_time_ms": 250,
                "dns_ms": 1.5,
                "connect_ms": 2.0,
                "tls_ms": 30.0,
                "first_byte_ms": 200.0,
                "details": {"ssl": {"validTo": valid_to.isoformat()}},
            },
            "eu-central": {
                "response_time_ms": 400,
                "details": {"ssl": {"validTo": "2027-01-01T00:00:00+00:00"}},
            },
        },
        consecutive_failures=4,
    )
    found = families(scraper(aio, OPERATOR_TOKEN).get("/"))
    one = {
        "monitor_id": str(monitor_id),
        "monitor_name": "Checkout API",
        "type": "http_request",
        "project": "Default",
    }

    [up] = samples(found, "supercheck_monitor_up", **one)
    assert up.value == 0
    states = {
        s.labels["supercheck_monitor_status"]: s.value for s in samples(found, "supercheck_monitor_status")
    }
    assert states == {
        "up": 0,
        "down": 1,
        "degraded": 0,
        "paused": 0,
        "pending": 0,
        "unknown": 0,
        "maintenance": 0,
    }
    times = {
        s.labels["location"]: s.value
        for s in samples(found, "supercheck_monitor_response_time_seconds", **one)
    }
    assert times == {"us-east": 0.25, "eu-central": 0.4}
    phases = {
        s.labels["phase"]: s.value
        for s in samples(found, "supercheck_monitor_phase_seconds", location="us-east", **one)
    }
    assert phases == pytest.approx({"dns": 0.0015, "connect": 0.002, "tls": 0.03, "ttfb": 0.2})
    assert not samples(found, "supercheck_monitor_phase_seconds", location="eu-central")
    [expiry] = samples(found, "supercheck_monitor_cert_expiry_timestamp_seconds", **one)
    assert expiry.value == datetime(2027, 1, 1, tzinfo=UTC).timestamp(), "the earliest location's certificate"
    [last] = samples(found, "supercheck_monitor_last_check_timestamp_seconds", **one)
    assert last.value == checked_at.timestamp()
    [failures] = samples(found, "supercheck_monitor_consecutive_failures", **one)
    assert failures.value == 4


def test_paused_pending_and_maintenance_monitors_show_their_state_and_paused_ones_no_up(scrape_env, aio):
    paused = insert_monitor(scrape_env, "paused")
    finalized(scrape_env, paused, "up", {"us-east": {}})
    scrape_env.sql("update monitors set enabled = false where id = %s", (paused,))
    pending = insert_monitor(scrape_env, "pending")
    held = insert_monitor(scrape_env, "held")
    finalized(scrape_env, held, "down", {"us-east": {}})
    now = datetime.now(UTC)
    scrape_env.sql(
        """insert into maintenance_windows (project_id, name, monitor_ids, starts_at, ends_at)
           values (%s, 'db upgrade', %s, %s, %s)""",
        (default_project(scrape_env), [held], now - timedelta(minutes=5), now + timedelta(hours=1)),
    )
    found = families(scraper(aio, OPERATOR_TOKEN).get("/"))

    def state(monitor_id) -> str:
        [current] = [
            s.labels["supercheck_monitor_status"]
            for s in samples(found, "supercheck_monitor_status", monitor_id=str(monitor_id))
            if s.value == 1
        ]
        return current

    assert (state(paused), state(pending), state(held)) == ("paused", "pending", "maintenance")
    ups = {s.labels["monitor_id"]: s.value for s in samples(found, "supercheck_monitor_up")}
    assert ups == {str(held): 0}, "no up for a paused monitor or one that never finished a run"


def test_uptime_ratios_come_from_the_rollups_per_window(scrape_env, aio):
    monitor_id = insert_monitor(scrape_env, "rolled")
    hourly_mark = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    today = hourly_mark.replace(hour=0)
    daily_mark = today - timedelta(days=1)
    set_marks(scrape_env, rollup_hourly_through=hourly_mark, rollup_daily_through=daily_mark)
    # 20 days ago: 10 checks, 0 up (in 30d only); 3 days ago: 10 checks, 10 up (7d and 30d)
    add_rollup(scrape_env, "rollup_daily", monitor_id, "us-east", today - timedelta(days=20), [10] * 10, 0)
    add_rollup(scrape_env, "rollup_daily", monitor_id, "us-east", today - timedelta(days=3), [10] * 10, 10)
    # the settled hour before the mark: 4 checks, 3 up (every window); one after the mark is not settled
    add_rollup(
        scrape_env, "rollup_hourly", monitor_id, "us-east", hourly_mark - timedelta(hours=1), [10] * 4, 3
    )
    add_rollup(scrape_env, "rollup_hourly", monitor_id, "eu-central", hourly_mark, [10] * 4, 0)
    found = families(scraper(aio, OPERATOR_TOKEN).get("/"))
    ratios = {
        s.labels["window"]: s.value
        for s in samples(found, "supercheck_monitor_uptime_ratio", monitor_id=str(monitor_id))
    }
    assert ratios == pytest.approx({"1d": 3 / 4, "7d": 13 / 14, "30d": 13 / 24})


def test_the_pipelines_per_monitor_counters_are_exposed_with_the_monitors_labels(scrape_env, aio):
    monitor_id = insert_monitor(scrape_env, "counted")
    gone = uuid.uuid4()
    tally = Tally()
    tally.count("supercheck_monitor_checks", 3, monitor_id=monitor_id, location="us-east", result="up")
    tally.count("supercheck_monitor_checks", 1, monitor_id=monitor_id, location="us-east", result="down")
    tally.count("supercheck_monitor_checks", 5, monitor_id=gone, location="us-east", result="up")
    tally.count("supercheck_monitor_alerts", 2, monitor_id=monitor_id, kind="failure", outcome="sent")
    assert aio.run(tally.flush())
    found = families(scraper(aio, OPERATOR_TOKEN).get("/"))
    checks = {
        s.labels["result"]: s.value
        for s in samples(found, "supercheck_monitor_checks_total", monitor_name="counted", location="us-east")
    }
    assert checks == {"up": 3, "down": 1}
    assert not samples(found, "supercheck_monitor_checks_total", monitor_id=str(gone)), "a deleted monitor's"
    [alerts] = samples(found, "supercheck_monitor_alerts_total", monitor_id=str(monitor_id))
    assert (alerts.labels["kind"], alerts.labels["outcome"], alerts.value) == ("failure", "sent", 2)


def test_no_target_or_credential_of_a_monitor_appears_in_the_exposition(scrape_env, aio):
    monitor_id = insert_monitor(
        scrape_env, "secretive", target=f"https://admin:{SECRET_IN_AUTH}@127.0.0.1:9/?token={SECRET_IN_URL}"
    )
    finalized(scrape_env, monitor_id, "up", {"us-east": {"response_time_ms": 5, "message": SECRET_IN_URL}})
    for accept in ("", "application/openmetrics-text"):
        body = scraper(aio, OPERATOR_TOKEN).get("/", headers={"Accept": accept}).text
        assert "secretive" in body
        assert SECRET_IN_URL not in body and SECRET_IN_AUTH not in body and "127.0.0.1:9" not in body


# --- formats -------------------------------------------------------------------------------------------------


def test_openmetrics_is_served_when_accept_asks_for_it_and_ends_with_eof(scrape_env, aio):
    insert_monitor(scrape_env, "om")
    plain = scraper(aio, OPERATOR_TOKEN).get("/")
    assert plain.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "# EOF" not in plain.text
    open_metrics = scraper(aio, OPERATOR_TOKEN).get(
        "/", headers={"Accept": "application/openmetrics-text; version=1.0.0,text/plain;q=0.5"}
    )
    assert open_metrics.headers["content-type"].startswith("application/openmetrics-text")
    assert open_metrics.text.endswith("# EOF\n")
    assert "# TYPE supercheck_monitor_status stateset" in open_metrics.text


def test_a_scraper_that_accepts_gzip_gets_the_same_exposition_compressed(scrape_env, aio):
    insert_monitor(scrape_env, "zipped")
    plain = scraper(aio, OPERATOR_TOKEN).get("/", headers={"Accept-Encoding": "identity"})
    zipped = scraper(aio, OPERATOR_TOKEN).get("/", headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip"

    def without_render_time(text: str) -> list[str]:
        return [line for line in text.splitlines() if "supercheck_metrics_render_seconds" not in line]

    assert without_render_time(zipped.text) == without_render_time(plain.text)  # httpx decodes it
    assert len(gzip.compress(plain.content)) < len(plain.content)


# --- renders kept for large installs -------------------------------------------------------------------------


def test_a_render_slower_than_its_budget_is_served_next_time_while_a_fresh_one_is_made(
    scrape_env, aio, monkeypatch
):
    monkeypatch.setenv("METRICS_RENDER_BUDGET_SECONDS", "0")  # every render counts as slow
    first = insert_monitor(scrape_env, "first")
    assert {
        s.labels["monitor_id"]
        for s in samples(families(scraper(aio, OPERATOR_TOKEN).get("/")), "supercheck_monitor_status")
    } == {str(first)}
    second = insert_monitor(scrape_env, "second")
    kept = scraper(aio, OPERATOR_TOKEN).get("/")
    assert {s.labels["monitor_id"] for s in samples(families(kept), "supercheck_monitor_status")} == {
        str(first)
    }
    assert "age" in kept.headers
    refresh = metrics_app.renders.making[(metrics_app.OPERATOR, kept.headers["content-type"])]

    async def refreshed():
        await refresh

    aio.run(refreshed())
    fresh = scraper(aio, OPERATOR_TOKEN).get("/")
    assert {s.labels["monitor_id"] for s in samples(families(fresh), "supercheck_monitor_status")} == {
        str(first),
        str(second),
    }


def test_a_kept_render_older_than_the_stale_limit_is_never_served(scrape_env, aio, monkeypatch):
    monkeypatch.setenv("METRICS_RENDER_BUDGET_SECONDS", "0")
    monkeypatch.setenv("METRICS_MAX_STALE_SECONDS", "0")
    insert_monitor(scrape_env, "first")
    scraper(aio, OPERATOR_TOKEN).get("/")
    insert_monitor(scrape_env, "second")
    names = {
        s.labels["monitor_name"]
        for s in samples(families(scraper(aio, OPERATOR_TOKEN).get("/")), "supercheck_monitor_status")
    }
    assert names == {"first", "second"}


# --- the operator's pipeline families ------------------------------------------------------------------------


def test_the_operator_sees_each_regions_connector_heartbeat_and_a_project_key_does_not(scrape_env, aio):
    from shared.pipeline.heartbeats import ConnectorHeartbeat, write_heartbeat
    from shared.redis import get_redis

    beat = ConnectorHeartbeat(
        location="eu-central",
        worker_location="eu-central",
        serves=["eu-central"],
        consumer="eu-1",
        written_at=datetime.now(UTC) - timedelta(seconds=42),
        interval_seconds=7.0,
        connector_status="degraded",
        loops={"read": "running"},
        check_functions={"check-http": True, "check-dns": False},
    )

    async def write():
        await write_heartbeat(get_redis(), beat)

    aio.run(write())
    found = families(scraper(aio, OPERATOR_TOKEN).get("/"))
    present = {s.labels["region"]: s.value for s in samples(found, "supercheck_connector_heartbeat_present")}
    assert present == {"us-east": 0, "eu-central": 1, "asia-pacific": 0}
    [age] = samples(found, "supercheck_connector_heartbeat_age_seconds")
    assert age.labels == {"region": "eu-central"} and 42 <= age.value < 300
    [ok] = samples(found, "supercheck_connector_ok")
    assert ok.value == 0
    answered = {s.labels["function"]: s.value for s in samples(found, "supercheck_check_function_up")}
    assert answered == {"check-http": 1, "check-dns": 0}

    key = make_project(aio, "Tenant")
    assert "supercheck_connector_heartbeat_age_seconds" not in families(scraper(aio, key).get("/"))
