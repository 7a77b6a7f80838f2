"""The whole pipeline through the local gateway: API -> schedule -> connector -> check-http -> aggregate -> alert."""

from __future__ import annotations

import json

import httpx
import pytest

from shared import streams
from tests.factories import all_consumed
from tests.servers import wait_until


@pytest.fixture
def api(stack, clean):
    with httpx.Client(base_url=f"{stack.gateway_url}/function", timeout=30) as client:
        yield client


def create_webhook(api, receiver) -> str:
    response = api.post(
        "/api/notification-providers",
        json={"name": "hook", "type": "webhook", "config": {"url": receiver.url + "alerts?token=abc123xyz"}},
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def create_monitor(api, target: str, **extra) -> dict:
    body = {"name": "Loopback", "type": "http", "target": target, "frequencyMinutes": 5, **extra}
    response = api.post("/api/monitors", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def status_of(api, monitor_id: str) -> str:
    return api.get(f"/api/monitors/{monitor_id}").json()["status"]


def run_now(api, monitor_id: str) -> list[str]:
    response = api.post("/schedule", json={"monitorIds": [monitor_id]})
    assert response.status_code == 200, response.text
    return response.json()["runIds"]


def test_a_monitor_goes_up_down_and_recovers_with_one_alert_each_way(
    api, infra, http_target, webhook_receiver
):
    provider_id = create_webhook(api, webhook_receiver)
    monitor = create_monitor(
        api, http_target.url, alertConfig={"enabled": True, "notificationProviders": [provider_id]}
    )
    assert monitor["status"] == "pending"
    assert monitor["type"] == "http_request"

    wait_until(lambda: status_of(api, monitor["id"]) == "up", message="first run to report up")
    results = api.get(f"/api/monitors/{monitor['id']}/results", params={"page": 1, "limit": 10}).json()
    assert {r["location"] for r in results["data"]} == {"us-east", "eu-central", "asia-pacific"}
    assert all(r["status"] == "up" and r["statusCode"] == 200 for r in results["data"])
    assert results["pagination"] == {
        "page": 1,
        "limit": 10,
        "total": 3,
        "totalPages": 1,
        "hasNextPage": False,
        "hasPrevPage": False,
    }

    http_target.status = 500
    run_now(api, monitor["id"])
    wait_until(lambda: status_of(api, monitor["id"]) == "down", message="status down")
    alert = webhook_receiver.wait_for_requests(1)[0]
    assert alert.method == "POST" and alert.path.startswith("/alerts") and "token=abc123xyz" in alert.path
    assert alert.json()["title"] == "Monitor Down - Loopback"
    assert "Received status code" not in alert.json()["title"]
    wait_until(
        lambda: infra.sql("select status from alert_history where kind = 'failure'") == [("sent",)],
        message="alert_history row marked sent",
    )

    http_target.status = 200
    run_now(api, monitor["id"])
    wait_until(lambda: status_of(api, monitor["id"]) == "up", message="recovery")
    recovery = webhook_receiver.wait_for_requests(2)[1]
    assert recovery.json()["title"] == "Monitor Recovered - Loopback"
    assert len(webhook_receiver.requests) == 2
    down_page = api.get(f"/api/monitors/{monitor['id']}/results", params={"limit": 3}).json()
    assert down_page["pagination"]["total"] == 9 and down_page["pagination"]["hasNextPage"]
    assert infra.sql("select from_status, to_status from status_changes order by id") == [
        ("pending", "up"),
        ("up", "down"),
        ("down", "up"),
    ]


def test_redelivered_jobs_and_results_change_nothing(api, infra, http_target, webhook_receiver):
    provider_id = create_webhook(api, webhook_receiver)
    http_target.status = 503
    monitor = create_monitor(
        api, http_target.url, alertConfig={"enabled": True, "notificationProviders": [provider_id]}
    )
    wait_until(lambda: status_of(api, monitor["id"]) == "down", message="status down")
    webhook_receiver.wait_for_requests(1)
    checks_before = len(http_target.requests)

    r = infra.redis()
    replays = 0
    for stream in [
        streams.job_stream("http_request", loc) for loc in ("us-east", "eu-central", "asia-pacific")
    ] + [streams.RESULTS_STREAM, streams.ALERTS_STREAM]:
        for _, fields in r.xrange(stream):
            r.xadd(stream, fields)
            r.xadd(stream, fields)
            replays += 2
    # at least every job, result and alert once; a slow first delivery may already have been redelivered
    assert replays >= 2 * (3 + 3 + 1)
    wait_until(lambda: all_consumed(r), message="replays consumed")
    assert infra.sql("select count(*) from monitor_results") == [(3,)]
    assert infra.sql("select count(*) from status_changes") == [(1,)]
    assert infra.sql("select count(*), min(status) from alert_history") == [(1, "sent")]
    assert len(webhook_receiver.requests) == 1
    assert len(http_target.requests) == checks_before, "a redelivered job must not run the check again"
    assert not r.keys("*:dead")


@pytest.mark.parametrize(
    ("body", "field", "fragment"),
    [
        ('{"name": "x", "type": "http", "target": ', None, "not valid JSON"),
        ('{"name": "x", "type": "smtp", "target": "http://a"}', "type", "unknown monitor type 'smtp'"),
        ('{"name": "x", "type": "http"}', "target", "is required"),
        (
            '{"name": "x", "type": "http", "target": "http://a", "frequencyMinutes": 0}',
            "frequencyMinutes",
            "greater than or equal to 1",
        ),
        (
            '{"name": "x", "type": "http", "target": "http://a", "frequencyMinutes": 1441}',
            "frequencyMinutes",
            "less than or equal to 1440",
        ),
        (
            '{"name": "x", "type": "http", "target": "http://a", "config": {"expectedStatusCodes": "6xx"}}',
            "config.expectedStatusCodes",
            "'6xx'",
        ),
    ],
)
def test_bad_monitor_input_gets_a_400_naming_the_field(api, body, field, fragment):
    response = api.post("/api/monitors", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert fragment in error["message"]
    assert error.get("field") == field
    if field:
        assert error["message"].startswith(field)


def test_poison_stream_messages_go_to_the_dead_letter_stream_and_the_pipeline_keeps_running(
    api, infra, http_target
):
    r = infra.redis()
    stream = streams.job_stream("http_request", "us-east")
    r.xadd(stream, {"data": "{not json"})
    r.xadd(stream, {"data": json.dumps({"v": 1, "kind": "check_job", "location": "us-east"})})
    r.xadd(stream, {"unexpected": "field"})
    dead = wait_until(
        lambda: (
            r.xrange(streams.dead_letter_stream(stream))
            if len(r.xrange(streams.dead_letter_stream(stream))) == 3
            else None
        ),
        message="3 dead letters",
    )
    reasons = [fields["reason"] for _, fields in dead]
    assert any("malformed" in reason for reason in reasons)
    assert any("rejected by check-http" in reason and "run_id" in reason for reason in reasons)
    monitor = create_monitor(api, http_target.url)
    wait_until(lambda: status_of(api, monitor["id"]) == "up", message="pipeline still working")
    assert r.xpending(stream, streams.CONSUMER_GROUP)["pending"] == 0


def test_the_gateway_serves_exactly_the_functions_of_stack_yml(stack):
    from openfaas.local.stack import stack_functions

    listed = httpx.get(f"{stack.gateway_url}/system/functions").json()
    assert sorted(f["name"] for f in listed) == sorted(f.name for f in stack_functions())
    assert httpx.get(f"{stack.gateway_url}/function/api/health").json() == {"status": "ok"}
    assert httpx.get(f"{stack.gateway_url}/function/nope").status_code == 404


def test_trying_a_config_runs_the_check_function_once_and_stores_nothing(api, infra, http_target):
    tried = api.post("/api/monitors/test", json={"type": "http", "target": http_target.url})
    assert tried.status_code == 200, tried.text
    assert tried.json()["status"] == "up" and tried.json()["statusCode"] == 200
    http_target.status = 500
    failed = api.post("/api/monitors/test", json={"type": "website", "target": http_target.url}).json()
    assert failed["status"] == "down" and "Received status code: 500" in failed["message"]
    invalid = api.post(
        "/api/monitors/test",
        json={"type": "http", "target": http_target.url, "config": {"expectedStatusCodes": "300-200"}},
    )
    assert invalid.status_code == 400 and invalid.json()["error"]["field"] == "config.expectedStatusCodes"
    assert infra.sql("select count(*) from monitor_results") == [(0,)]
    assert infra.sql("select count(*) from runs") == [(0,)]
