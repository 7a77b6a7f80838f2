"""Slack, Discord, Telegram and Teams payloads, checked at Apprise's outbound HTTP boundary (requests) only;
and any other Apprise URL delivered for real to a loopback receiver."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

import pytest
import requests

from shared import notify
from shared.notify import base
from tests.servers import LoopbackHttpServer

SLACK = "https://hooks.slack.com/services/T1234ABCD/B1234ABCD/abcdefghijklmnopqrstuvwx"
DISCORD = "https://discord.com/api/webhooks/123456789012345678/abcdefghijklmnopqrstuvwxyzABCDEF"
TEAMS = (
    "https://prod-00.westus.logic.azure.com:443/workflows/abc123/triggers/manual/paths/invoke"
    "?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=s3cr3tSignature"
)
BOT_TOKEN = "123456789:ABCdefGHIjklMNOpqrSTUvwxYZ0123456789a"
PAYLOAD = {
    "projectName": "Shop",
    "monitorName": "Checkout API",
    "monitorType": "http_request",
    "target": "https://shop.example.net/api",
    "status": "down",
    "locationsDown": 2,
    "locationsTotal": 3,
    "responseTimeMs": 812,
    "time": "2026-03-02T09:00:00+00:00",
}


@dataclass
class OutboundCall:
    method: str
    url: str
    body: str

    def json(self):
        return json.loads(self.body)


@dataclass
class FakeServices:
    """Stands in for the SaaS APIs: answers each outbound request with the next scripted status."""

    statuses: list[int] = field(default_factory=lambda: [200])
    calls: list[OutboundCall] = field(default_factory=list)

    def request(self, method, url, **kwargs) -> requests.Response:
        data = kwargs.get("data")
        if data is None and kwargs.get("json") is not None:
            data = json.dumps(kwargs["json"])
        body = data.decode() if isinstance(data, bytes) else (data or "")
        self.calls.append(OutboundCall(method.upper(), url, body))
        response = requests.Response()
        response.status_code = self.statuses[min(len(self.calls) - 1, len(self.statuses) - 1)]
        response.url = url
        response.headers["Content-Type"] = "application/json"
        # Telegram checks {"ok": true}; Slack's hook mode expects the text "ok"; the others ignore the body.
        response._content = (
            json.dumps({"ok": True, "result": {"message_id": 1}}).encode()
            if "api.telegram.org" in url
            else b"ok"
        )
        return response


@pytest.fixture
def services(monkeypatch) -> FakeServices:
    fake = FakeServices()
    monkeypatch.setattr(requests.Session, "request", fake.request)
    monkeypatch.setattr(base, "RETRY_BACKOFF_SECONDS", (0.01, 0.01))
    return fake


def send(provider_type: str, config: dict, kind: str = "failure", **message_options) -> notify.SendResult:
    stored = notify.validate_provider_config(provider_type, config)
    message = notify.build_message(
        kind, PAYLOAD, monitor_id="m1", link="https://sc.example.net/m/m1", **message_options
    )
    return asyncio.run(notify.send_to_provider(provider_type, stored, message))


def test_slack_gets_the_title_and_the_message_at_its_webhook(services):
    assert send("slack", {"webhookUrl": SLACK}).status == "sent"
    (call,) = services.calls
    assert call.method == "POST" and call.url == SLACK
    text = json.dumps(call.json())
    assert "Monitor Down - Checkout API" in text
    assert "Locations down: 2/3" in text and "https://shop.example.net/api" in text


def test_discord_gets_an_embed_with_title_and_message(services):
    assert send("discord", {"webhookUrl": DISCORD}, kind="recovery").status == "sent"
    (call,) = services.calls
    assert call.url.startswith("https://discord.com/api/webhooks/123456789012345678/")
    body = call.json()
    text = json.dumps(body)
    assert "Monitor Recovered - Checkout API" in text and "Response time: 812 ms" in text


def test_telegram_gets_a_message_to_the_chat(services):
    assert send("telegram", {"botToken": BOT_TOKEN, "chatId": "-1001234567890"}).status == "sent"
    sends = [c for c in services.calls if c.url.endswith("/sendMessage")]
    assert len(sends) == 1
    assert sends[0].url == f"https://api.telegram.org/bot{BOT_TOKEN}/sendMessage"
    body = sends[0].json()
    assert str(body["chat_id"]) == "-1001234567890"
    assert "Monitor Down - Checkout API" in body["text"] and "Status: DOWN" in body["text"]


def test_teams_gets_an_adaptive_card_at_its_workflow(services):
    assert send("teams", {"webhookUrl": TEAMS}, kind="ssl_expiring").status == "sent"
    (call,) = services.calls
    assert call.url.startswith("https://prod-00.westus.logic.azure.com:443/workflows/abc123/triggers/manual/")
    text = json.dumps(call.json())
    assert "AdaptiveCard" in text and "SSL Certificate Expiring - Checkout API" in text


def test_a_custom_message_replaces_the_chat_body(services):
    send("slack", {"webhookUrl": SLACK}, custom_message="Checkout is down, see {{link}}")
    text = json.dumps(services.calls[0].json())
    assert "Checkout is down, see https://sc.example.net/m/m1" in text and "Locations down" not in text


def test_a_chat_service_answering_503_is_retried_and_a_403_is_not(services):
    services.statuses = [503, 200]
    result = send("slack", {"webhookUrl": SLACK})
    assert (result.status, result.attempts, len(services.calls)) == ("sent", 2, 2)
    services.calls.clear()
    services.statuses = [403]
    result = send("discord", {"webhookUrl": DISCORD})
    assert (result.status, result.attempts, len(services.calls)) == ("failed", 1, 1)
    assert "403" in result.error


def test_tokens_in_chat_urls_never_reach_the_error_text(services):
    services.statuses = [401]
    result = send("telegram", {"botToken": BOT_TOKEN, "chatId": "-1001234567890"})
    assert result.status == "failed"
    assert BOT_TOKEN not in result.error and BOT_TOKEN.split(":")[1] not in result.error


def test_any_other_apprise_url_is_delivered(internal_targets):
    """ntfy, one of Apprise's other services, self-hosted here on loopback: a real request, nothing patched."""
    receiver = LoopbackHttpServer(body=b"{}").start()
    try:
        result = send("apprise", {"url": f"ntfy://127.0.0.1:{receiver.port}/supercheck-alerts"})
        assert result.status == "sent"
        (request,) = receiver.requests
        assert request.method == "POST"
        assert "Monitor Down - Checkout API" in json.dumps(request.json())
    finally:
        receiver.stop()
