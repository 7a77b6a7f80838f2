"""Alerting end to end: thresholds, maintenance, mute, email and templates through the local stack; SSL expiry
through finalization on real Postgres."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from psycopg.types.json import Jsonb

from shared import notify
from shared.pipeline.aggregate import finalize_runs
from shared.pipeline.alert import send_alerts
from shared.settings import reset_settings_cache
from tests.factories import SmtpReceiver, create_provider, default_project, run_now, runs_finalized
from tests.servers import wait_until


@pytest.fixture
def api(stack, clean):
    with httpx.Client(base_url=f"{stack.gateway_url}/function", timeout=30) as client:
        yield client


def create_monitor(api, target: str, **alert_config) -> dict:
    body = {
        "name": "Checkout",
        "type": "http",
        "target": target,
        "frequencyMinutes": 60,
        "alertConfig": {"enabled": True, **alert_config},
    }
    response = api.post("/api/monitors", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def settled_history(infra, rows: int) -> list[tuple]:
    """alert_history once it holds `rows` rows and nothing is still being sent, oldest first."""
    wait_until(
        lambda: (
            infra.sql("select count(*) from alert_history where status not in ('pending', 'sending')")[0][0]
            >= rows
        ),
        message=f"{rows} settled alert_history row(s)",
    )
    return infra.sql("select kind, status, reason from alert_history order by id")


def alert_kinds(infra) -> list[str]:
    """Decided alerts (the outbox is written in the finalizing transaction, so this is exact once a run is final)."""
    return [row[0] for row in infra.sql("select kind from alert_events order by created_at, kind")]


def titles(receiver) -> list[str]:
    return [request.json()["title"] for request in receiver.requests]


def test_thresholds_through_the_pipeline_down_down_up_up_sends_exactly_one_alert_each_way(
    api, infra, http_target, webhook_receiver
):
    provider_id = create_provider(api, "webhook", {"url": webhook_receiver.url})
    http_target.status = 500
    monitor = create_monitor(
        api, http_target.url, failureThreshold=2, recoveryThreshold=2, notificationProviders=[provider_id]
    )
    runs_finalized(infra, monitor["id"], 1)
    assert alert_kinds(infra) == []
    run_now(api, infra, monitor["id"], 1)
    assert alert_kinds(infra) == ["failure"]
    webhook_receiver.wait_for_requests(1)
    http_target.status = 200
    run_now(api, infra, monitor["id"], 2)
    assert alert_kinds(infra) == ["failure"], "one up run is below the recovery threshold"
    run_now(api, infra, monitor["id"], 3)
    webhook_receiver.wait_for_requests(2)
    assert titles(webhook_receiver) == ["Monitor Down - Checkout", "Monitor Recovered - Checkout"]
    down = webhook_receiver.requests[0].json()
    assert (down["status"], down["locationsDown"], down["eventAction"]) == ("down", "3/3", "trigger")
    assert down["message"].startswith("Project: Default\nMonitor: Checkout\nType: http_request\nStatus: DOWN")
    assert "Reason: " in down["message"] and "Received status code: 500" in down["message"]
    assert webhook_receiver.requests[1].json()["eventAction"] == "resolve"
    assert settled_history(infra, 2) == [("failure", "sent", None), ("recovery", "sent", None)]


def test_a_failure_during_maintenance_is_recorded_as_suppressed_and_alerts_once_the_window_is_gone(
    api, infra, http_target, webhook_receiver
):
    provider_id = create_provider(api, "webhook", {"url": webhook_receiver.url})
    project_id = default_project(infra)
    now = datetime.now(UTC)
    window_id = infra.sql(
        """insert into maintenance_windows (project_id, name, starts_at, ends_at)
           values (%s, 'database upgrade', %s, %s) returning id""",
        (project_id, now - timedelta(minutes=5), now + timedelta(hours=1)),
    )[0][0]
    http_target.status = 503
    monitor = create_monitor(api, http_target.url, notificationProviders=[provider_id])
    runs_finalized(infra, monitor["id"], 1)
    assert settled_history(infra, 1) == [("failure", "suppressed", "maintenance window 'database upgrade'")]
    assert webhook_receiver.requests == []
    assert api.get(f"/api/monitors/{monitor['id']}").json()["status"] == "down", "checks keep running"

    infra.sql("delete from maintenance_windows where id = %s", (window_id,))
    run_now(api, infra, monitor["id"], 1)
    webhook_receiver.wait_for_requests(1)
    assert titles(webhook_receiver) == ["Monitor Down - Checkout"]
    assert [row[:2] for row in settled_history(infra, 2)] == [("failure", "suppressed"), ("failure", "sent")]


def test_a_recurring_window_for_other_monitors_does_not_silence_this_one(
    api, infra, http_target, webhook_receiver
):
    provider_id = create_provider(api, "webhook", {"url": webhook_receiver.url})
    project_id = default_project(infra)
    infra.sql(
        """insert into maintenance_windows (project_id, name, monitor_ids, cron, duration_minutes)
           values (%s, 'always, elsewhere', %s, '* * * * *', 5)""",
        (project_id, [uuid.uuid4()]),
    )
    http_target.status = 500
    create_monitor(api, http_target.url, notificationProviders=[provider_id])
    webhook_receiver.wait_for_requests(1)
    assert titles(webhook_receiver) == ["Monitor Down - Checkout"]


def test_a_muted_monitor_records_suppressed_alerts(api, infra, http_target, webhook_receiver):
    provider_id = create_provider(api, "webhook", {"url": webhook_receiver.url})
    muted_until = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
    http_target.status = 500
    monitor = create_monitor(
        api, http_target.url, notificationProviders=[provider_id], mutedUntil=muted_until.isoformat()
    )
    runs_finalized(infra, monitor["id"], 1)
    ((kind, status, reason),) = settled_history(infra, 1)
    assert (kind, status) == ("failure", "suppressed")
    assert reason == f"muted until {muted_until.isoformat()}"
    assert webhook_receiver.requests == []


def test_an_email_alert_and_a_templated_webhook_from_one_failure(api, infra, http_target, webhook_receiver):
    smtp = SmtpReceiver().start()
    try:
        mail_id = create_provider(
            api,
            "email",
            {
                "smtpHost": "127.0.0.1",
                "smtpPort": smtp.port,
                "security": "none",
                "from": "alerts@example.net",
                "to": ["ops@example.net", "dev@example.net"],
            },
            name="mail",
        )
        template = {
            "routing_key": "{{routingKey}}",
            "event_action": "{{eventAction}}",
            "summary": "{{title}}",
        }
        hook_id = create_provider(api, "webhook", {"url": webhook_receiver.url, "template": template})
        http_target.status = 500
        create_monitor(
            api,
            http_target.url,
            notificationProviders=[mail_id, hook_id],
            customMessage="{{monitorName}} is down",
        )
        webhook_receiver.wait_for_requests(1)
        wait_until(lambda: len(smtp.messages) == 2, message="two emails")
    finally:
        smtp.stop()
    assert webhook_receiver.requests[0].json() == {
        "routing_key": "{{routingKey}}",
        "event_action": "trigger",
        "summary": "Monitor Down - Checkout",
    }
    assert sorted(rcpts[0] for rcpts, _ in smtp.messages) == ["dev@example.net", "ops@example.net"]
    mail = smtp.messages[0][1]
    assert mail["Subject"] == "Monitor Down - Checkout"
    bodies = {part.get_content_type(): part.get_content() for part in mail.walk() if not part.is_multipart()}
    assert "Checkout is down" in bodies["text/plain"] and "Checkout is down" in bodies["text/html"]
    assert sorted(row[1] for row in settled_history(infra, 2)) == ["sent", "sent"]
    recipients = infra.sql("select recipients from alert_history where recipients is not null")
    assert recipients == [({"ops@example.net": "sent", "dev@example.net": "sent"},)]


# --- SSL expiry: the check's details.ssl through finalization, decision and delivery ----------------------


@pytest.fixture
def unread_redis(infra, monkeypatch):
    """Points this process's Redis at a database no connector reads. The tests above start the module's `stack`,
    which keeps running (module scope); once `clean` has flushed Redis its connector re-creates its consumer
    groups from the start of each stream, and its alert function would also send the alerts finalized here
    (the failure alert among them) to this test's receiver."""
    monkeypatch.setenv("REDIS_URL", infra.redis_url.rsplit("/", 1)[0] + "/1")
    reset_settings_cache()
    yield
    monkeypatch.setenv("REDIS_URL", infra.redis_url)
    reset_settings_cache()


@pytest.fixture
def ssl_monitor(clean, aio, webhook_receiver, internal_targets, unread_redis):
    project_id = default_project(clean)
    stored = notify.validate_provider_config("webhook", {"url": webhook_receiver.url})
    from shared.security import key_ring, provider_binding

    provider_id = clean.sql(
        """insert into notification_providers (project_id, name, type, config_encrypted)
           values (%s, 'hook', 'webhook', %s) returning id""",
        (project_id, key_ring().encrypt(json.dumps(stored), provider_binding(project_id))),
    )[0][0]
    alert_config = {
        "enabled": True,
        "alertOnSslExpiration": True,
        "notificationProviders": [str(provider_id)],
    }
    monitor_id = clean.sql(
        """insert into monitors (project_id, name, type, target, config, frequency_minutes, alert_config)
           values (%s, 'Storefront', 'http_request', 'https://shop.example.net/', %s, 60, %s) returning id""",
        (project_id, Jsonb({"sslDaysUntilExpirationWarning": 14}), Jsonb(alert_config)),
    )[0][0]
    return monitor_id


def finalize_run(infra, aio, monitor_id, at: datetime, status: str, ssl: dict | None) -> uuid.UUID:
    run_id = infra.sql(
        """insert into runs (monitor_id, scheduled_at, expected_locations, deadline)
           values (%s, %s, '{us-east,eu-central}', %s) returning id""",
        (monitor_id, at, at + timedelta(minutes=1)),
    )[0][0]
    for location, facts in (("us-east", ssl), ("eu-central", {"checked": False})):
        infra.sql(
            """insert into monitor_results (run_id, monitor_id, location, status, checked_at, details)
               values (%s, %s, %s, %s, %s, %s)""",
            (run_id, monitor_id, location, status, at, Jsonb({"ssl": facts} if facts else {})),
        )
    assert aio.run(finalize_runs([run_id], now=at)) == 1
    return run_id


def test_ssl_expiry_alerts_once_a_day_inside_the_window_and_once_when_expired(
    ssl_monitor, clean, aio, webhook_receiver
):
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    healthy = {"checked": True, "daysUntilExpiry": 40, "validTo": "2026-04-11T09:00:00+00:00"}
    expiring = {
        "checked": True,
        "daysUntilExpiry": 9,
        "validTo": "2026-03-11T09:00:00+00:00",
        "expiringSoon": True,
    }
    expired = {"checked": True, "daysUntilExpiry": 0, "validTo": "2026-03-02T08:00:00+00:00"}
    plan = [
        (0, "up", healthy),
        (1, "up", expiring),
        (2, "up", expiring),
        (3, "up", None),
        (26, "up", expiring),
        (27, "down", expired),
        (28, "down", expired),
    ]
    for hours, status, ssl in plan:
        finalize_run(clean, aio, ssl_monitor, start + timedelta(hours=hours), status, ssl)
    decided = clean.sql(
        """select e.kind, e.payload -> 'ssl' ->> 'daysUntilExpiry', extract(epoch from r.scheduled_at - %s) / 3600
           from alert_events e join runs r on r.id = e.run_id order by r.scheduled_at, e.kind desc""",
        (start,),
    )
    assert [(kind, days, int(hours)) for kind, days, hours in decided] == [
        ("ssl_expiring", "9", 1),
        ("ssl_expiring", "9", 26),
        ("ssl_expired", "0", 27),
        ("failure", None, 27),  # an expired certificate is also a failed check
    ]

    from shared.models import AlertEnvelope

    events = clean.sql(
        """select e.id, e.run_id, e.monitor_id, e.kind from alert_events e join runs r on r.id = e.run_id
           where e.kind like 'ssl%' order by r.scheduled_at"""
    )
    aio.run(
        send_alerts(
            [
                AlertEnvelope(alert_event_id=e[0], run_id=e[1], monitor_id=e[2], alert_kind=e[3])
                for e in events
            ]
        )
    )
    assert titles(webhook_receiver) == [
        "SSL Certificate Expiring - Storefront",
        "SSL Certificate Expiring - Storefront",
        "SSL Certificate Expired - Storefront",
    ]
    assert (
        "Certificate: expires in 9 days (2026-03-11T09:00:00+00:00)"
        in webhook_receiver.requests[0].json()["message"]
    )
