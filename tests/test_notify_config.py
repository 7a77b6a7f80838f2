"""Provider configs (validation naming the field, SSRF on save, masking), messages and failure classes: pure."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from shared import notify
from shared.api.requests import NotificationProviderCreate
from shared.errors import validation_error_to_api_error
from shared.notify import base, masking, webhook
from shared.notify.message import TEMPLATE_VARIABLES

SLACK = "https://hooks.slack.com/services/T1234ABCD/B1234ABCD/abcdefghijklmnopqrstuvwx"
DISCORD = "https://discord.com/api/webhooks/123456789012345678/abcdefghijklmnopqrstuvwxyzABCDEF"
TEAMS = (
    "https://prod-00.westus.logic.azure.com:443/workflows/abc123/triggers/manual/paths/invoke"
    "?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=s3cr3tSignature"
)
BOT_TOKEN = "123456789:ABCdefGHIjklMNOpqrSTUvwxYZ0123456789a"
EMAIL = {"smtpHost": "smtp.example.net", "from": "alerts@example.net", "to": ["ops@example.net"]}


def api_error(provider_type: str, config: dict) -> dict:
    with pytest.raises(ValidationError) as caught:
        NotificationProviderCreate.model_validate({"name": "p", "type": provider_type, "config": config})
    return validation_error_to_api_error(caught.value).body()["error"]


@pytest.mark.parametrize(
    ("provider_type", "config"),
    [
        ("webhook", {"url": "https://hooks.example.net/x?token=abc"}),
        ("webhook", {"url": "https://user:pw@hooks.example.net/x", "template": '{"a": "{{title}}"}'}),
        ("webhook", {"url": "https://hooks.example.net/x", "template": {"event_action": "{{eventAction}}"}}),
        ("email", EMAIL),
        ("email", {**EMAIL, "smtpPort": 465, "security": "ssl", "username": "u", "password": "p"}),
        ("slack", {"webhookUrl": SLACK}),
        ("discord", {"webhookUrl": DISCORD}),
        ("teams", {"webhookUrl": TEAMS}),
        ("telegram", {"botToken": BOT_TOKEN, "chatId": "-1001234567890"}),
        ("apprise", {"url": "ntfy://ntfy.example.net/alerts"}),
        ("apprise", {"url": "pover://userkey1234567890123456789012@token1234567890123456789012345"}),
    ],
)
def test_valid_configs_are_accepted(provider_type, config):
    spec = NotificationProviderCreate.model_validate({"name": "p", "type": provider_type, "config": config})
    assert notify.PROVIDERS[provider_type].targets(spec.config)


@pytest.mark.parametrize(
    ("provider_type", "config", "field", "fragment"),
    [
        ("webhook", {}, "config.url", "is required"),
        ("webhook", {"url": "ftp://h/x"}, "config.url", "http:// or https://"),
        ("webhook", {"url": "https://h/x", "secret": 1}, "config.secret", "not a known field"),
        ("webhook", {"url": "https://h/x", "template": '{"a": {{title}}}'}, "config.template", "is not JSON"),
        ("email", {**EMAIL, "to": []}, "config.to", "at least 1"),
        (
            "email",
            {**EMAIL, "to": ["not-an-address"]},
            "config.to",
            "'not-an-address' is not an email address",
        ),
        ("email", {**EMAIL, "to": ["a@x.io", "A@x.io"]}, "config.to", "must not repeat"),
        ("email", {**EMAIL, "to": [f"u{i}@x.io" for i in range(21)]}, "config.to", "at most 20"),
        ("email", {**EMAIL, "from": "nobody"}, "config.from", "not an email address"),
        ("email", {**EMAIL, "smtpPort": 0}, "config.smtpPort", "greater than or equal to 1"),
        ("email", {**EMAIL, "security": "tls"}, "config.security", "'starttls', 'ssl' or 'none'"),
        ("email", {**EMAIL, "smtpHost": "smtp host"}, "config.smtpHost", "not a valid hostname"),
        ("email", {**EMAIL, "username": "u"}, "config", "username and password go together"),
        ("slack", {"webhookUrl": DISCORD}, "config.webhookUrl", "is not a Slack webhook URL"),
        (
            "discord",
            {"webhookUrl": "https://example.net/hook"},
            "config.webhookUrl",
            "is not a Discord webhook URL",
        ),
        (
            "teams",
            {"webhookUrl": "https://contoso.webhook.office.com/webhookb2/a/b"},
            "config.webhookUrl",
            "Power Automate workflow",
        ),
        ("telegram", {"botToken": "nope", "chatId": "1"}, "config.botToken", "should match pattern"),
        ("telegram", {"botToken": BOT_TOKEN}, "config.chatId", "is required"),
        ("apprise", {"url": "nosuchservice://x"}, "config.url", "not a URL that Apprise understands"),
    ],
)
def test_bad_configs_get_a_message_naming_the_field(provider_type, config, field, fragment):
    error = api_error(provider_type, config)
    assert error["field"] == field, error
    assert error["message"].startswith(field)
    assert fragment in error["message"]


@pytest.mark.parametrize(
    ("provider_type", "config", "field"),
    [
        ("webhook", {"url": "http://127.0.0.1:9000/hook"}, "config.url"),
        ("webhook", {"url": "http://[::1]/hook"}, "config.url"),
        ("webhook", {"url": "http://169.254.169.254/latest/meta-data"}, "config.url"),
        ("webhook", {"url": "http://0x7f.1/hook"}, "config.url"),
        ("webhook", {"url": "http://localhost/hook"}, "config.url"),
        ("email", {**EMAIL, "smtpHost": "10.0.0.5"}, "config.smtpHost"),
        ("email", {**EMAIL, "smtpHost": "localhost"}, "config.smtpHost"),
        ("apprise", {"url": "json://192.168.1.10/hook"}, "config.url"),
    ],
)
def test_internal_destinations_are_refused_on_save(internal_targets_blocked, provider_type, config, field):
    error = api_error(provider_type, config)
    assert error["field"] == field
    assert "ALLOW_INTERNAL_TARGETS" in error["message"]


def test_secrets_never_appear_in_validation_errors():
    secret = "tok-5e4f3a2b1c0d"
    for provider_type, config in [
        ("webhook", {"url": f"ftp://h/?token={secret}"}),
        ("telegram", {"botToken": f"1:{secret}", "chatId": "1"}),
        ("email", {**EMAIL, "username": "u", "password": secret, "smtpPort": "x"}),
        ("slack", {"webhookUrl": f"https://example.net/{secret}"}),
    ]:
        assert secret not in json.dumps(api_error(provider_type, config))


def test_masking_keeps_hosts_and_addresses_and_hides_tokens():
    masked = notify.masked_config(
        "webhook",
        {
            "url": "https://hooks.example.net/services/secret-path?token=abc123456",
            "template": '{"routing_key": "R0UT1NGKEY"}',
        },
    )
    assert masked["url"].startswith("https://hooks.example.net/") and "abc123456" not in masked["url"]
    assert "R0UT1NGKEY" not in masked["template"]
    email = notify.masked_config("email", {**EMAIL, "username": "mailer", "password": "hunter2-long"})
    assert email["password"] == "hu****ng" and email["to"] == ["ops@example.net"]
    assert email["smtpHost"] == "smtp.example.net"
    telegram = notify.masked_config("telegram", {"botToken": BOT_TOKEN, "chatId": "42"})
    assert BOT_TOKEN not in json.dumps(telegram) and telegram["chatId"] == "42"
    apprise_url = notify.masked_config("apprise", {"url": f"tgram://{BOT_TOKEN}/42"})
    assert BOT_TOKEN not in apprise_url["url"] and apprise_url["url"].startswith("tgram://")
    slack = notify.masked_config("slack", {"webhookUrl": SLACK})
    assert (
        slack["webhookUrl"].startswith("https://hooks.slack.com/")
        and "abcdefghijkl" not in slack["webhookUrl"]
    )


def test_errors_are_redacted_of_every_secret_in_the_config():
    config = {"url": "https://hooks.example.net/T0KENPATH/x?key=QUERYSECRET", "password": "pa55word!"}
    text = "POST https://hooks.example.net/T0KENPATH/x?key=QUERYSECRET failed; login pa55word! refused"
    redacted = masking.redact(text, masking.secrets_in(config, {"password"}, {"url"}))
    for secret in ("T0KENPATH", "QUERYSECRET", "pa55word!"):
        assert secret not in redacted


# --- messages --------------------------------------------------------------------------------------

PAYLOAD = {
    "projectName": "Shop",
    "monitorName": "Checkout API",
    "monitorType": "http_request",
    "target": "https://shop.example.net/api",
    "status": "down",
    "locationsDown": 2,
    "locationsTotal": 3,
    "missingLocations": [],
    "responseTimeMs": 812,
    "reason": "us-east: Received status code 503",
    "sequenceNumber": 1,
    "time": "2026-03-02T09:00:00+00:00",
}


@pytest.mark.parametrize(
    ("kind", "title", "event_action"),
    [
        ("failure", "Monitor Down - Checkout API", "trigger"),
        ("recovery", "Monitor Recovered - Checkout API", "resolve"),
        ("ssl_expiring", "SSL Certificate Expiring - Checkout API", "trigger"),
        ("ssl_expired", "SSL Certificate Expired - Checkout API", "trigger"),
    ],
)
def test_titles_and_event_actions(kind, title, event_action):
    message = notify.build_message(kind, {**PAYLOAD, "ssl": {"daysUntilExpiry": 9}}, monitor_id="m1")
    assert message.title == title
    assert message.variables["eventAction"] == event_action
    assert message.variables["dedupKey"] == (
        "supercheck-m1-ssl" if kind.startswith("ssl") else "supercheck-m1"
    )


def test_the_default_message_says_project_monitor_type_status_locations_response_time_target_time_and_link():
    message = notify.build_message("failure", PAYLOAD, monitor_id="m1", link="https://sc.example.net/m/m1")
    assert message.text.splitlines() == [
        "Project: Shop",
        "Monitor: Checkout API",
        "Type: http_request",
        "Status: DOWN",
        "Locations down: 2/3",
        "Response time: 812 ms",
        "Target: https://shop.example.net/api",
        "Reason: us-east: Received status code 503",
        "Time: 2026-03-02T09:00:00Z",
        "Details: https://sc.example.net/m/m1",
    ]
    assert '<a href="https://sc.example.net/m/m1">' in message.html and "Checkout API" in message.html


def test_a_custom_message_replaces_the_default_body_and_may_use_variables():
    message = notify.build_message(
        "failure", PAYLOAD, custom_message="Page the <on-call>: {{monitorName}} {{x}}"
    )
    assert message.text == "Page the <on-call>: Checkout API {{x}}"
    assert "Page the &lt;on-call&gt;: Checkout API" in message.html and "Project:" not in message.html
    assert message.title == "Monitor Down - Checkout API"


def test_ssl_and_reminder_lines():
    expiring = notify.build_message(
        "ssl_expiring", {**PAYLOAD, "ssl": {"daysUntilExpiry": 9, "validTo": "2026-03-11"}}
    )
    assert "Certificate: expires in 9 days (2026-03-11)" in expiring.text
    reminder = notify.build_message("failure", {**PAYLOAD, "sequenceNumber": 3})
    assert "Reminder: 3 of 3; still down" in reminder.text


def test_templates_fill_known_variables_json_escaped_and_leave_unknown_ones():
    template = json.dumps(
        {
            "routing_key": "{{routingKey}}",
            "event_action": "{{eventAction}}",
            "dedup_key": "{{ dedupKey }}",
            "payload": {"summary": "{{title}}", "source": "{{target}}", "details": "{{message}}"},
            "meta": "{{locationsDown}} down, {{responseTime}} ms at {{time}} ({{status}}, {{monitorName}})",
        }
    )
    message = notify.build_message("failure", {**PAYLOAD, "monitorName": 'Say "hi"\\'}, monitor_id="m1")
    body = json.loads(webhook.webhook_body({"template": template}, message))
    assert body["routing_key"] == "{{routingKey}}"
    assert body["event_action"] == "trigger" and body["dedup_key"] == "supercheck-m1"
    assert body["payload"]["summary"] == 'Monitor Down - Say "hi"\\'
    assert body["payload"]["details"] == message.text
    assert body["meta"] == 'Say "hi"\\'.join(["2/3 down, 812 ms at 2026-03-02T09:00:00Z (down, ", ")"])


def test_without_a_template_a_webhook_gets_every_variable():
    body = json.loads(webhook.webhook_body({}, notify.build_message("recovery", PAYLOAD, monitor_id="m1")))
    assert set(TEMPLATE_VARIABLES) <= set(body)
    assert body["title"] == "Monitor Recovered - Checkout API" and body["responseTime"] == 812


# --- failure classes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "transient", "reason"),
    [
        (
            [("WARNING", "Failed to send JSON POST notification: Internal server error., error=500.")],
            True,
            "error=500",
        ),
        ([("WARNING", "Failed to send webhook notification: Too Many Requests, error=429.")], True, "429"),
        (
            [
                ("WARNING", "Failed to send webhook notification: Not Found, error=404."),
                ("WARNING", "Failed to send X notification."),
            ],
            False,
            "Not Found",
        ),
        ([("WARNING", "Failed to send Slack notification: Forbidden, error=403.")], False, "Forbidden"),
        (
            [("WARNING", "A Connection error occurred sending JSON notification to h.")],
            True,
            "Connection error",
        ),
        ([("WARNING", "Webhook request timed out.")], True, "timed out"),
        (
            [
                ("DEBUG", "Socket Exception: {'a@x.io': (451, b'4.3.0 try later')}"),
                ("WARNING", 'Sending email to "a@x.io" failed.'),
            ],
            True,
            "SMTP 451 4.3.0 try later",
        ),
        (
            [("DEBUG", "Socket Exception: {'a@x.io': (550, b'5.1.1 no such user')}")],
            False,
            "SMTP 550 5.1.1 no such user",
        ),
        (
            [
                ("DEBUG", "Socket Exception: (535, b'5.7.8 bad credentials')"),
                ("WARNING", "Connection error while submitting email"),
            ],
            False,
            "SMTP 535",
        ),
        ([], False, "delivery failed"),
    ],
)
def test_failure_classes(lines, transient, reason):
    failure = base.classify_failure(lines)
    assert failure.transient is transient
    assert reason in failure.reason


@pytest.mark.parametrize("provider_type", sorted(notify.PROVIDERS))
def test_every_masked_field_is_a_field_of_its_providers_config(provider_type):
    provider = notify.PROVIDERS[provider_type]
    fields = {field.alias or name for name, field in provider.config_model.model_fields.items()}
    assert provider.secret_fields | provider.url_fields <= fields
    assert provider.secret_fields or provider.url_fields, "every provider holds a credential of some kind"
