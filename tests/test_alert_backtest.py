"""The alert policy backtest on real Postgres: a live sequence finalized by aggregate and sent by alert, replayed
through the backtest with the same policy, must decide the same alerts with the same reasons; it writes nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from psycopg.types.json import Jsonb

from shared import auth, db
from shared.models import AlertEnvelope
from shared.pipeline.aggregate import finalize_runs
from shared.pipeline.alert import send_alerts
from shared.rules.alert_replay import StoredRun, applied_in_order
from tests.api_client import ApiClient
from tests.factories import add_provider, default_project

LOCATIONS = ("us-east", "eu-central", "asia-pacific")


@pytest.fixture
def default_key(clean, aio) -> str:
    async def create():
        async with db.transaction() as conn:
            _, key = await auth.store_key(conn, default_project(clean), "backtest")
            return key

    return aio.run(create())


def monitor_with(infra, alert_config: dict) -> uuid.UUID:
    return infra.sql(
        """insert into monitors (project_id, name, type, target, frequency_minutes, alert_config)
           values (%s, 'Checkout', 'http_request', 'https://shop.example.net/', 5, %s) returning id""",
        (default_project(infra), Jsonb(alert_config)),
    )[0][0]


def finalize(infra, aio, monitor_id, at: datetime, down: tuple[str, ...]) -> None:
    """One run at `at`: the locations in `down` fail with a TLS timeout, the others pass; finalized at `at`."""
    run_id = infra.sql(
        """insert into runs (monitor_id, scheduled_at, expected_locations, deadline)
           values (%s, %s, %s, %s) returning id""",
        (monitor_id, at, list(LOCATIONS), at + timedelta(minutes=1)),
    )[0][0]
    for offset, location in enumerate(LOCATIONS):
        failed = location in down
        infra.sql(
            """insert into monitor_results (run_id, monitor_id, location, status, checked_at, message)
               values (%s, %s, %s, %s, %s, %s)""",
            (
                run_id,
                monitor_id,
                location,
                "down" if failed else "up",
                at + timedelta(seconds=offset),
                "TLS handshake timeout" if failed else "",
            ),
        )
    assert aio.run(finalize_runs([run_id], now=at)) == 1


def send_decided(infra, aio) -> None:
    events = infra.sql("select id, run_id, monitor_id, kind from alert_events order by created_at, kind")
    aio.run(
        send_alerts(
            [
                AlertEnvelope(alert_event_id=e[0], run_id=e[1], monitor_id=e[2], alert_kind=e[3])
                for e in events
            ]
        )
    )


def test_a_backtest_of_the_live_policy_decides_what_live_alerting_sent(
    clean, aio, default_key, webhook_receiver, internal_targets
):
    provider_id = add_provider(clean, {"url": webhook_receiver.url})
    alert_config = {
        "enabled": True,
        "failuresInWindow": {"failures": 3, "withinMinutes": 60},
        "flapDetection": {"enabled": True, "window": 10, "highThreshold": 40, "lowThreshold": 15},
        "notificationProviders": [str(provider_id)],
    }
    monitor_id = monitor_with(clean, alert_config)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=5)
    two_down = ("eu-central", "us-east")
    # majority of 3: two locations down is a down run
    plan = [two_down, ()] * 3 + [two_down] + [()] * 10 + [two_down] * 3 + [()]
    for index, down in enumerate(plan):
        finalize(clean, aio, monitor_id, start + index * timedelta(minutes=5), down)
    send_decided(clean, aio)
    live = clean.sql(
        """select e.kind, e.payload ->> 'reason' from alert_events e join runs r on r.id = e.run_id
           order by r.scheduled_at, e.kind"""
    )
    # flapping from run 5 holds the window's alert; once it stops, three failures within the hour raise it
    assert [kind for kind, _ in live] == ["flapping_started", "flapping_stopped", "failure", "recovery"], live
    assert live[0][1].startswith("flapping started: the state changed in ")
    assert live[2][1] == (
        "3 of the last 13 runs failed within 60 min; 2 of 3 locations down: eu-central, us-east; "
        "last error: TLS handshake timeout"
    )
    webhook_receiver.wait_for_requests(len(live))
    assert [request.json()["reason"] for request in webhook_receiver.requests] == [r for _, r in live]

    before = clean.sql("select (select count(*) from alert_events), (select count(*) from alert_history)")
    state_before = clean.sql("select alert_state from monitors where id = %s", (monitor_id,))
    api = ApiClient(aio, default_key)
    response = api.post(
        f"/monitors/{monitor_id}/alert-policy/backtest", json={"alertConfig": alert_config, "days": 1}
    )
    assert response.status_code == 200, response.text
    replayed = response.json()
    assert replayed["runs"] == len(plan)
    assert [(a["kind"], a["reason"]) for a in replayed["alerts"]] == live
    assert [(a["kind"], a["reason"], a["runId"]) for a in replayed["sent"]] == [
        (a["kind"], a["reason"], a["runId"]) for a in replayed["alerts"]
    ]
    assert (
        clean.sql("select (select count(*) from alert_events), (select count(*) from alert_history)")
        == before
    )
    assert clean.sql("select alert_state from monitors where id = %s", (monitor_id,)) == state_before

    threshold_one = api.post(
        f"/monitors/{monitor_id}/alert-policy/backtest",
        json={"alertConfig": {"enabled": True, "failureThreshold": 1}, "days": 1},
    ).json()
    assert [a["kind"] for a in threshold_one["alerts"]] == ["failure", "recovery"] * 5
    assert threshold_one["alerts"][0]["reason"].startswith("1 consecutive run failed; 2 of 3 locations down")
    assert threshold_one["sent"] == replayed["sent"], "what was sent does not depend on the candidate"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"alertConfig": {}, "days": 0}, "days"),
        ({"alertConfig": {}, "days": 31}, "days"),
        (
            {"alertConfig": {"failuresInWindow": {"failures": 3}}, "days": 1},
            "alertConfig.failuresInWindow.withinMinutes",
        ),
        ({"days": 1}, "alertConfig"),
    ],
)
def test_a_backtest_body_is_validated_naming_the_field(clean, aio, default_key, body, field):
    monitor_id = monitor_with(clean, {})
    response = ApiClient(aio, default_key).post(f"/monitors/{monitor_id}/alert-policy/backtest", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"] == field


def test_a_backtest_of_another_projects_monitor_is_not_found(clean, aio, default_key):
    from tests.factories import make_project

    other = ApiClient(aio, make_project(aio, "other"))
    monitor_id = monitor_with(clean, {})
    response = other.post(
        f"/monitors/{monitor_id}/alert-policy/backtest", json={"alertConfig": {}, "days": 1}
    )
    assert response.status_code == 404


def test_the_replay_skips_a_late_run_as_aggregate_does():
    at = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    def run(scheduled: int, finalized: int) -> StoredRun:
        return StoredRun(
            uuid.uuid4(), at + timedelta(minutes=scheduled), at + timedelta(minutes=finalized), "down", (), 1
        )

    first, late, second = run(0, 1), run(5, 12), run(10, 11)
    assert applied_in_order([late, second, first]) == [first, second]


def test_the_openapi_document_describes_the_policy_fields_retries_and_the_backtest(aio):
    doc = ApiClient(aio, None).get("/openapi.json").json()
    schemas = doc["components"]["schemas"]
    operation = doc["paths"]["/monitors/{monitor_id}/alert-policy/backtest"]["post"]
    assert operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "AlertPolicyBacktest"
    )
    for model in ("AlertConfig", "FailuresInWindow", "FlapDetection", "AlertPolicyBacktest", "BacktestReply"):
        properties = schemas[model]["properties"]
        undescribed = [name for name, field in properties.items() if "description" not in field]
        assert undescribed == [], f"{model}: {undescribed}"
    retry = schemas["MonitorCreate"]["properties"]["config"]["properties"]["retry"]
    assert set(retry["properties"]) == {"count", "backoff", "delaySeconds"}
    assert all("description" in field for field in retry["properties"].values())
    assert "isFlapping" in schemas["MonitorOut"]["properties"]
