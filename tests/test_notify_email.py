"""Email alerts through Apprise to a real SMTP server (aiosmtpd) on loopback: HTML and text parts, recipients."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from openfaas.local.services import free_port
from shared import notify
from shared.notify import base
from tests.factories import SmtpReceiver


@pytest.fixture
def fast_retries(internal_targets, monkeypatch):
    """Loopback receivers are 'internal' by the SSRF rules; tests allow them as the local stack does."""
    monkeypatch.setattr(base, "RETRY_BACKOFF_SECONDS", (0.01, 0.01))


@pytest.fixture
def smtp(fast_retries) -> Iterator[SmtpReceiver]:
    receiver = SmtpReceiver().start()
    yield receiver
    receiver.stop()


PAYLOAD = {
    "projectName": "Shop",
    "monitorName": "Checkout <API>",
    "monitorType": "http_request",
    "target": "https://shop.example.net/api",
    "status": "down",
    "locationsDown": 3,
    "locationsTotal": 3,
    "responseTimeMs": 812,
    "reason": "us-east: Received status code 503",
    "time": "2026-03-02T09:00:00+00:00",
}


def parts_of(message) -> dict[str, str]:
    return {part.get_content_type(): part.get_content() for part in message.walk() if not part.is_multipart()}


def test_an_alert_email_has_the_title_as_subject_and_an_html_and_a_text_part(smtp):
    message = notify.build_message(
        "failure", PAYLOAD, monitor_id="m1", link="https://sc.example.net/monitors/m1"
    )
    result = asyncio.run(notify.send_to_provider("email", smtp.provider_config("ops@example.net"), message))
    assert (result.status, result.attempts, result.error) == ("sent", 1, None)
    assert result.recipients == {"ops@example.net": "sent"}
    ((recipients, mail),) = smtp.messages
    assert recipients == ["ops@example.net"]
    assert mail["Subject"] == "Monitor Down - Checkout <API>"
    assert mail["From"] == "Supercheck <alerts@example.net>" and mail["To"] == "ops@example.net"
    assert mail.get_content_type() == "multipart/alternative"
    parts = parts_of(mail)
    assert set(parts) == {"text/plain", "text/html"}
    html, text = parts["text/html"], parts["text/plain"]
    assert "<h2" in html and "Monitor Down - Checkout &lt;API&gt;" in html
    assert '<a href="https://sc.example.net/monitors/m1"' in html
    for line in (
        "Project: Shop",
        "Status: DOWN",
        "Locations down: 3/3",
        "Response time: 812 ms",
        "Target: https://shop.example.net/api",
        "Reason: us-east: Received status code 503",
        "Time: 2026-03-02T09:00:00Z",
    ):
        assert line in text, line


def test_a_custom_message_replaces_the_email_body(smtp):
    message = notify.build_message("recovery", PAYLOAD, custom_message="All good again: {{monitorName}}")
    asyncio.run(notify.send_to_provider("email", smtp.provider_config("ops@example.net"), message))
    ((_, mail),) = smtp.messages
    assert mail["Subject"] == "Monitor Recovered - Checkout <API>"
    parts = parts_of(mail)
    assert "All good again: Checkout <API>" in parts["text/plain"]
    assert "Project:" not in parts["text/plain"] and "Project:" not in parts["text/html"]


def test_multi_recipient_email_reports_each_recipient_and_retries_only_the_transient_refusal(smtp):
    config = smtp.provider_config(
        "ops@example.net", "gone@example.net", "busy@example.net", "cto@example.net"
    )
    message = notify.build_message("failure", PAYLOAD)
    result = asyncio.run(notify.send_to_provider("email", config, message))
    assert result.status == "partial"
    assert result.recipients == {
        "ops@example.net": "sent",
        "gone@example.net": "failed: SMTP 550 5.1.1 no such user here",
        "busy@example.net": "failed: SMTP 451 4.3.0 mailbox busy, try later",
        "cto@example.net": "sent",
    }
    assert "gone@example.net: SMTP 550" in result.error and "busy@example.net: SMTP 451" in result.error
    assert sorted(rcpts[0] for rcpts, _ in smtp.messages) == ["cto@example.net", "ops@example.net"]
    # Each recipient is its own delivery: the permanent refusal is tried once, the transient one 3 times,
    # and nobody who accepted the message gets it twice.
    assert smtp.rcpt_attempts == {
        "ops@example.net": 1,
        "gone@example.net": 1,
        "busy@example.net": base.SEND_ATTEMPTS,
        "cto@example.net": 1,
    }


def test_every_recipient_refused_is_a_failure(smtp):
    result = asyncio.run(
        notify.send_to_provider(
            "email", smtp.provider_config("gone@example.net"), notify.build_message("failure", PAYLOAD)
        )
    )
    assert (result.status, result.attempts) == ("failed", 1)


def test_an_unreachable_smtp_server_is_transient_and_retried(fast_retries):
    config = notify.validate_provider_config(
        "email",
        {
            "smtpHost": "127.0.0.1",
            "smtpPort": free_port(),
            "security": "none",
            "from": "a@example.net",
            "to": ["b@example.net"],
        },
    )
    result = asyncio.run(notify.send_to_provider("email", config, notify.build_message("failure", PAYLOAD)))
    assert (result.status, result.attempts) == ("failed", base.SEND_ATTEMPTS)
    assert "b@example.net" in result.error


def test_an_smtp_password_never_reaches_the_error_text(smtp):
    config = {**smtp.provider_config("gone@example.net"), "username": "mailer", "password": "s3cret-passw0rd"}
    result = asyncio.run(notify.send_to_provider("email", config, notify.build_message("failure", PAYLOAD)))
    assert result.status == "failed"
    assert "s3cret-passw0rd" not in (result.error or "") + str(result.recipients)
