"""send_alerts() on real Postgres with real loopback receivers: retries, one failing provider, idempotency, suppression."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from shared.api.services.providers import send_test_notification
from shared.errors import ApiError
from shared.notify import base, webhook
from shared.pipeline.alert import send_alerts
from tests.factories import SmtpReceiver, add_alert, add_provider, default_project


class ScriptedReceiver:
    """A webhook receiver on 127.0.0.1 that answers with the next status of its script (the last one repeats)."""

    def __init__(self, *statuses: int, delay: float = 0.0):
        self.statuses = list(statuses) or [200]
        self.delay = delay
        self.requests: list[dict] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                owner.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                status = owner.statuses[min(len(owner.requests) - 1, len(owner.statuses) - 1)]
                if owner.delay:
                    time.sleep(owner.delay)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    def bodies(self) -> list[dict]:
        return [json.loads(r["body"]) for r in self.requests]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers() -> Iterator[list]:
    started: list = []
    yield started
    for receiver in started:
        receiver.stop()


@pytest.fixture
def fast_retries(internal_targets, monkeypatch):
    monkeypatch.setattr(base, "RETRY_BACKOFF_SECONDS", (0.01, 0.01))


@pytest.fixture
def env(clean, aio, fast_retries, receivers):
    return clean


def history(infra) -> dict[uuid.UUID, tuple]:
    rows = infra.sql("select provider_id, status, attempts, error, reason, recipients from alert_history")
    return {row[0]: row[1:] for row in rows}


def test_one_failing_provider_records_a_failure_after_retries_while_the_others_succeed(env, aio, receivers):
    good, failing = ScriptedReceiver(200), ScriptedReceiver(500)
    smtp = SmtpReceiver().start()
    receivers += [good, failing]
    try:
        good_id = add_provider(env, {"url": good.url + "ok"})
        failing_id = add_provider(env, {"url": failing.url + "broken?token=s3cr3tT0ken"}, name="broken")
        mail_id = add_provider(env, smtp.provider_config("ops@example.net"), "email", "mail")
        event = add_alert(env, [good_id, failing_id, mail_id])
        counts = aio.run(send_alerts([event]))
    finally:
        smtp.stop()
    assert counts == {"sent": 2, "partial": 0, "failed": 1, "suppressed": 0, "skipped": 0, "in_flight": 0}
    assert len(good.requests) == 1 and good.bodies()[0]["title"] == "Monitor Down - Checkout"
    assert len(failing.requests) == base.SEND_ATTEMPTS
    assert [m["Subject"] for _, m in smtp.messages] == ["Monitor Down - Checkout"]
    rows = history(env)
    assert rows[good_id][:2] == ("sent", 1)
    assert rows[mail_id][0] == "sent" and rows[mail_id][4] == {"ops@example.net": "sent"}
    status, attempts, error, _, _ = rows[failing_id]
    assert (status, attempts) == ("failed", base.SEND_ATTEMPTS)
    assert "error=500" in error and "s3cr3tT0ken" not in error


def test_a_redelivered_alert_event_never_notifies_twice(env, aio, receivers):
    receiver = ScriptedReceiver(200)
    receivers.append(receiver)
    event = add_alert(env, [add_provider(env, {"url": receiver.url})])

    async def twice_at_once():
        return await asyncio.gather(send_alerts([event]), send_alerts([event]))

    first, second = aio.run(twice_at_once())
    third = aio.run(send_alerts([event, event]))
    assert sorted([first["sent"], second["sent"]]) == [0, 1]
    assert third == {"sent": 0, "partial": 0, "failed": 0, "suppressed": 0, "skipped": 2, "in_flight": 0}
    assert len(receiver.requests) == 1
    assert env.sql("select count(*), min(status) from alert_history") == [(1, "sent")]


def test_a_suppressed_alert_is_recorded_per_provider_with_its_reason_and_sends_nothing(env, aio, receivers):
    receiver = ScriptedReceiver(200)
    receivers.append(receiver)
    providers = [add_provider(env, {"url": receiver.url}, name=f"hook{i}") for i in range(2)]
    event = add_alert(env, providers, suppressed_reason="maintenance window 'deploy'")
    assert aio.run(send_alerts([event]))["suppressed"] == 2
    assert aio.run(send_alerts([event]))["skipped"] == 2
    assert receiver.requests == []
    assert {row[:4] for row in history(env).values()} == {
        ("suppressed", 0, None, "maintenance window 'deploy'")
    }


def test_a_429_is_retried_with_backoff_until_it_goes_through(env, aio, receivers):
    receiver = ScriptedReceiver(429, 503, 200)
    receivers.append(receiver)
    provider_id = add_provider(env, {"url": receiver.url})
    aio.run(send_alerts([add_alert(env, [provider_id])]))
    assert len(receiver.requests) == 3
    assert history(env)[provider_id][:3] == ("sent", 3, None)


def test_a_permanent_rejection_is_not_retried_and_its_reason_recorded(env, aio, receivers):
    receiver = ScriptedReceiver(404)
    receivers.append(receiver)
    provider_id = add_provider(env, {"url": receiver.url})
    aio.run(send_alerts([add_alert(env, [provider_id])]))
    status, attempts, error, *_ = history(env)[provider_id]
    assert (status, attempts, len(receiver.requests)) == ("failed", 1, 1)
    assert "Not Found, error=404" in error


def test_a_receiver_that_times_out_is_retried(env, aio, receivers, monkeypatch):
    monkeypatch.setattr(webhook, "WEBHOOK_TIMEOUT_SECONDS", (2.0, 0.2))
    receiver = ScriptedReceiver(200, delay=0.5)
    receivers.append(receiver)
    provider_id = add_provider(env, {"url": receiver.url})
    aio.run(send_alerts([add_alert(env, [provider_id])]))
    status, attempts, error, *_ = history(env)[provider_id]
    assert (status, attempts) == ("failed", base.SEND_ATTEMPTS)
    assert "timed out" in error


def test_a_provider_whose_config_cannot_be_decrypted_fails_alone(env, aio, receivers):
    receiver = ScriptedReceiver(200)
    receivers.append(receiver)
    good_id = add_provider(env, {"url": receiver.url})
    broken_id = add_provider(env, {"url": receiver.url}, name="broken")
    env.sql(
        "update notification_providers set config_encrypted = 'enc:v1:gone:AAAA' where id = %s", (broken_id,)
    )
    counts = aio.run(send_alerts([add_alert(env, [good_id, broken_id])]))
    assert (counts["sent"], counts["failed"]) == (1, 1)
    assert history(env)[broken_id][0] == "failed" and "could not be attempted" in history(env)[broken_id][2]


def test_templated_webhooks_and_custom_messages_through_delivery(env, aio, receivers):
    receiver = ScriptedReceiver(200)
    receivers.append(receiver)
    template = {
        "routing_key": "R0UTING",
        "event_action": "{{eventAction}}",
        "dedup_key": "{{dedupKey}}",
        "payload": {"summary": "{{title}}", "custom_details": {"text": "{{message}}", "tier": "{{tier}}"}},
    }
    provider_id = add_provider(env, {"url": receiver.url + "v2/enqueue", "template": template})
    event = add_alert(env, [provider_id], kind="recovery", custom_message="{{monitorName}} is back")
    aio.run(send_alerts([event]))
    ((body,),) = [receiver.bodies()]
    assert body == {
        "routing_key": "R0UTING",
        "event_action": "resolve",
        "dedup_key": f"supercheck-{event.monitor_id}",
        "payload": {
            "summary": "Monitor Recovered - Checkout",
            "custom_details": {"text": "Checkout is back", "tier": "{{tier}}"},
        },
    }
    assert receiver.requests[0]["path"] == "/v2/enqueue"
    assert receiver.requests[0]["headers"]["Content-Type"] == "application/json"


def test_send_test_notification_sends_through_the_provider_and_records_nothing(env, aio, receivers):
    receiver = ScriptedReceiver(200)
    receivers.append(receiver)
    project_id = default_project(env)
    provider_id = add_provider(env, {"url": receiver.url}, name="On-call hook")
    answer = aio.run(send_test_notification(project_id, provider_id))
    assert answer == {"status": "sent", "attempts": 1, "error": None}
    (body,) = receiver.bodies()
    assert body["title"] == "Test Notification - On-call hook" and body["eventAction"] == "trigger"
    assert env.sql("select count(*) from alert_history") == [(0,)]
    other_project = env.sql("insert into projects (name) values ('Other') returning id")[0][0]
    with pytest.raises(ApiError) as missing:
        aio.run(send_test_notification(other_project, provider_id))
    assert missing.value.status == 404
