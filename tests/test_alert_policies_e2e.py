"""Alert policies end to end through the local stack and a loopback webhook: a failures-in-window trigger, flap
detection, retries inside a location, and a backtest of the stored runs."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from tests.test_alerting_e2e import create_provider, run_now, runs_finalized


@pytest.fixture
def api(stack, clean):
    with httpx.Client(base_url=f"{stack.gateway_url}/function", timeout=30) as client:
        yield client


def create_monitor(api, target: str, alert_config: dict, **fields) -> dict:
    body = {
        "name": "Checkout",
        "type": "http",
        "target": target,
        "frequencyMinutes": 60,
        "alertConfig": {"enabled": True, **alert_config},
        **fields,
    }
    response = api.post("/api/monitors", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def alternate(api, infra, http_target, monitor_id: str, statuses: list[int]) -> None:
    """The monitor's first run (at creation) answered statuses[0]; each next status is one more run."""
    runs_finalized(infra, monitor_id, 1)
    for done, status in enumerate(statuses[1:], start=1):
        http_target.status = status
        run_now(api, infra, monitor_id, done)


def settled(receiver, count: int, quiet_seconds: float = 1.5) -> list[dict]:
    """The receiver's bodies once it holds `count` and no more arrive for a moment (the alert function is async)."""
    receiver.wait_for_requests(count)
    time.sleep(quiet_seconds)
    return [request.json() for request in receiver.requests]


def test_failures_in_a_window_with_passes_between_alert_once_with_a_reason(
    api, infra, http_target, webhook_receiver
):
    provider_id = create_provider(api, "webhook", {"url": webhook_receiver.url})
    http_target.status = 500
    monitor = create_monitor(
        api,
        http_target.url,
        {"failuresInWindow": {"failures": 3, "withinMinutes": 60}, "notificationProviders": [provider_id]},
    )
    assert monitor["alertConfig"]["failureThreshold"] is None, "beside another trigger the default is off"
    alternate(api, infra, http_target, monitor["id"], [500, 200, 500, 200, 500])
    (alert,) = settled(webhook_receiver, 1)
    assert alert["title"] == "Monitor Down - Checkout"
    assert alert["reason"].startswith(
        "3 of the last 5 runs failed within 60 min; 3 of 3 locations down: asia-pacific, eu-central, us-east; "
        "last error: "
    ), alert["reason"]
    assert "Received status code: 500" in alert["reason"]
    assert f"Reason: {alert['reason']}" in alert["message"]
    history = api.get(f"/api/monitors/{monitor['id']}/alerts").json()["data"]
    assert [(row["kind"], row["status"], row["alertReason"]) for row in history] == [
        ("failure", "sent", alert["reason"])
    ]

    # a backtest of the same runs: a threshold-1 policy would have alerted on every failure, recovered on every pass
    response = api.post(
        f"/api/monitors/{monitor['id']}/alert-policy/backtest",
        json={"alertConfig": {"enabled": True, "failureThreshold": 1}, "days": 1},
    )
    assert response.status_code == 200, response.text
    backtest = response.json()
    assert [a["kind"] for a in backtest["alerts"]] == [
        "failure",
        "recovery",
        "failure",
        "recovery",
        "failure",
    ]
    assert backtest["alerts"][0]["reason"].startswith("1 consecutive run failed; 3 of 3 locations down")
    assert [(a["kind"], a["reason"]) for a in backtest["sent"]] == [("failure", alert["reason"])]
    assert len(webhook_receiver.requests) == 1, "a backtest sends nothing"


def test_alternating_runs_with_flap_detection_send_a_handful_one_saying_flapping(
    api, infra, http_target, webhook_receiver
):
    provider_id = create_provider(api, "webhook", {"url": webhook_receiver.url})
    http_target.status = 500
    monitor = create_monitor(
        api, http_target.url, {"flapDetection": {"enabled": True}, "notificationProviders": [provider_id]}
    )
    alternate(api, infra, http_target, monitor["id"], [500, 200] * 8)
    bodies = settled(webhook_receiver, 7)
    titles = [body["title"] for body in bodies]
    assert len(bodies) == 7, titles
    assert titles.count("Monitor Flapping - Checkout") == 1
    flapping = next(body for body in bodies if body["title"] == "Monitor Flapping - Checkout")
    assert "flapping started" in flapping["reason"] and "35.5%" in flapping["reason"]
    assert "Change rate: 35.5% of recent runs (weighted)" in flapping["message"]
    assert titles[-1] == "Monitor Flapping - Checkout", "down and recovery alerts are held while flapping"
    assert api.get(f"/api/monitors/{monitor['id']}").json()["isFlapping"] is True


def test_a_retry_turns_a_target_that_fails_its_first_request_into_an_up_run_with_two_attempts(
    api, infra, http_target
):
    answered: set[str] = set()
    lock = threading.Lock()

    def first_fails(client: str) -> int:
        with lock:
            first = client not in answered
            answered.add(client)
        return 503 if first else 200

    http_target.status_for_client = first_fails
    monitor = create_monitor(
        api,
        http_target.url,
        {},
        config={"timeoutSeconds": 5, "retry": {"count": 2, "backoff": "linear", "delaySeconds": 1}},
        locationConfig={"locations": ["us-east"]},
    )
    runs_finalized(infra, monitor["id"], 1)
    ((run_status,),) = infra.sql("select status from runs where monitor_id = %s", (monitor["id"],))
    ((status, details),) = infra.sql(
        "select status, details from monitor_results where monitor_id = %s", (monitor["id"],)
    )
    assert (run_status, status) == ("up", "up")
    attempts = details["attempts"]
    assert [(a["attempt"], a["status"]) for a in attempts] == [(1, "down"), (2, "up")]
    assert "503" in attempts[0]["error"] and attempts[1]["error"] is None
    assert len(http_target.requests) == 2


def test_retries_that_cannot_fit_are_refused_at_save_naming_the_field(api, http_target):
    response = api.post(
        "/api/monitors",
        json={
            "name": "Slow",
            "type": "http",
            "target": http_target.url,
            "config": {
                "timeoutSeconds": 20,
                "retry": {"count": 3, "backoff": "exponential", "delaySeconds": 5},
            },
        },
    )
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "config.retry"
    one_minute = api.post(
        "/api/monitors",
        json={
            "name": "Often",
            "type": "http",
            "target": http_target.url,
            "frequencyMinutes": 1,
            "config": {"timeoutSeconds": 10, "retry": {"count": 2, "delaySeconds": 2}},
        },
    )
    assert one_minute.status_code == 400
    assert one_minute.json()["error"]["field"] == "config.retry"
