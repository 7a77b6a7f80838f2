"""Notification destinations: each provider type's host is refused on save when internal, refused again at send
(also when DNS changes its answer in between), and a send connects only to the address it vetted.

DNS answers for made-up names come from shared.ssrf.lookup, the resolver seam (tests/destinations.py): this machine has no DNS server,
and a rebinding one cannot run here. Names the script does not know go to the real resolver (/etc/hosts)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from shared import notify, ssrf
from shared.api.requests import NotificationProviderCreate
from shared.errors import validation_error_to_api_error
from shared.notify import PROVIDERS, base, destinations, masking
from shared.pipeline.alert import send_alerts
from shared.settings import reset_settings_cache
from tests.check_servers import CertificateAuthority, RouteServer
from tests.destinations import CountingListener, ScriptedDns
from tests.factories import SmtpReceiver, add_alert, add_provider

PUBLIC = "93.184.216.34"
SLACK_PATH = "services/T1234ABCD/B1234ABCD/abcdefghijklmnopqrstuvwx"
DISCORD_PATH = "api/webhooks/123456789012345678/abcdefghijklmnopqrstuvwxyzABCDEF"
BOT_TOKEN = "123456789:ABCdefGHIjklMNOpqrSTUvwxYZ0123456789a"
TOKEN = "s3cr3tT0kenValue"
PAYLOAD = {
    "projectName": "Shop",
    "monitorName": "Checkout API",
    "monitorType": "http_request",
    "target": "https://shop.example.net/api",
    "status": "down",
    "locationsDown": 1,
    "locationsTotal": 1,
    "time": "2026-03-02T09:00:00+00:00",
}


@pytest.fixture
def dns(monkeypatch) -> ScriptedDns:
    script = ScriptedDns()
    monkeypatch.setattr(ssrf, "lookup", script)
    monkeypatch.setattr(base, "RETRY_BACKOFF_SECONDS", (0.01, 0.01))
    return script


@pytest.fixture
def listener() -> Iterator[CountingListener]:
    started = CountingListener()
    yield started
    started.stop()


def set_internal_targets(monkeypatch, allowed: bool) -> None:
    monkeypatch.setenv("ALLOW_INTERNAL_TARGETS", "true" if allowed else "false")
    reset_settings_cache()


def save_error(provider_type: str, config: dict):
    """What the API answers a save with: the ApiError (status, field, message)."""
    with pytest.raises(ValidationError) as caught:
        NotificationProviderCreate.model_validate({"name": "p", "type": provider_type, "config": config})
    return validation_error_to_api_error(caught.value)


def send(provider_type: str, stored: dict) -> notify.SendResult:
    message = notify.build_message("failure", PAYLOAD, monitor_id="m1", link="https://sc.example.net/m/m1")
    return asyncio.run(notify.send_to_provider(provider_type, stored, message))


def hosts_file_loopback_name() -> str | None:
    """A name other than localhost that /etc/hosts maps to a loopback address (e.g. the machine's own name)."""
    for line in Path("/etc/hosts").read_text().splitlines():
        address, *names = line.split("#")[0].split() or [""]
        if address.startswith("127.") or address == "::1":
            for name in names:
                if "localhost" not in name:
                    return name
    return None


# The config field each provider type's destination goes in (email: the SMTP host; telegram: the chat id).
FIELD = {"webhook": "url", "apprise": "url", "email": "smtpHost", "telegram": "chatId"} | dict.fromkeys(
    ("teams", "slack", "discord"), "webhookUrl"
)


def config_for(provider_type: str, destination: str, port: int) -> dict:
    destination = destination.replace("{port}", str(port))
    if provider_type == "email":
        return {
            "smtpHost": destination,
            "smtpPort": port,
            "security": "none",
            "from": "a@example.net",
            "to": [MAILBOX],
        }
    if provider_type == "telegram":
        return {"botToken": BOT_TOKEN, "chatId": destination}
    return {FIELD[provider_type]: destination}


MAILBOX = "ops@example.net"
# (case, provider type, destination ({port}: the listener's), the reason a save and a send give)
REFUSED_ON_SAVE = [
    ("webhook-ipv4", "webhook", f"http://127.0.0.1:{{port}}/hook?token={TOKEN}", "loopback"),
    ("webhook-mapped-v6", "webhook", "http://[::ffff:127.0.0.1]:{port}/", "loopback"),
    ("webhook-decimal", "webhook", f"http://2130706433:{{port}}/?token={TOKEN}", "loopback"),
    ("webhook-octal-short", "webhook", "http://0177.1:{port}/", "loopback"),
    ("webhook-hex", "webhook", "http://0x7f000001:{port}/", "loopback"),
    ("webhook-short", "webhook", "http://127.1:{port}/", "loopback"),
    ("webhook-unspecified", "webhook", "http://0.0.0.0:{port}/", "unspecified"),
    ("webhook-v6-loopback", "webhook", "http://[::1]:{port}/", "IPv6 loopback"),
    ("webhook-metadata", "webhook", "http://169.254.169.254/latest/meta-data/", "metadata"),
    ("webhook-localhost", "webhook", "http://localhost:{port}/", "loopback"),
    ("email-rfc1918", "email", "10.1.2.3", "RFC 1918"),
    ("email-octal", "email", "0177.0.0.1", "loopback"),
    ("email-v6-loopback", "email", "::1", "IPv6 loopback"),
    ("teams-loopback", "teams", "workflows://127.0.0.1:{port}/a/b/c", "loopback"),
    ("teams-rfc1918", "teams", "workflows://172.16.5.4/a/b/c", "RFC 1918"),
    ("ntfy-loopback", "apprise", "ntfy://127.0.0.1:{port}/topic", "loopback"),
    ("json-rfc1918", "apprise", "json://192.168.1.10/", "RFC 1918"),
    ("xml-cgnat", "apprise", "xml://100.64.0.1/", "carrier-grade NAT"),
    ("form-ula", "apprise", "form://[fc00::1]/", "unique local"),
    ("form-decimal", "apprise", "forms://2130706433:{port}/", "loopback"),
    ("gotify-hex-mapped", "apprise", "gotify://[::ffff:7f00:1]:{port}/tokenabcdef", "loopback"),
    ("mattermost-hex", "apprise", "mmost://0x7f000001:{port}/tokenabc", "loopback"),
    ("rocketchat-rfc1918", "apprise", "rocket://user:pass@10.0.0.1/room", "RFC 1918"),
    ("matrix-localhost", "apprise", "matrix://user:pass@localhost:{port}/#room", "loopback"),
]


@pytest.mark.parametrize(
    ("provider_type", "destination", "fragment"),
    [case[1:] for case in REFUSED_ON_SAVE],
    ids=[case[0] for case in REFUSED_ON_SAVE],
)
def test_an_internal_destination_is_refused_on_save_and_again_at_send(
    internal_targets_blocked, monkeypatch, dns, listener, provider_type, destination, fragment
):
    config = config_for(provider_type, destination, listener.port)
    refused = save_error(provider_type, config)
    assert (refused.status, refused.field) == (400, f"config.{FIELD[provider_type]}")
    assert fragment in refused.message and "ALLOW_INTERNAL_TARGETS" in refused.message

    # Stored while internal targets were allowed (or before saves were vetted): the send refuses it itself.
    set_internal_targets(monkeypatch, True)
    stored = notify.validate_provider_config(provider_type, config)
    set_internal_targets(monkeypatch, False)
    result = send(provider_type, stored)

    assert result.status == "failed"
    assert result.error.startswith(("destination blocked: ", f"{MAILBOX}: destination blocked: "))
    assert fragment in result.error and result.attempts <= 1
    provider = PROVIDERS[provider_type]
    for secret in masking.secrets_in(stored, provider.secret_fields, provider.url_fields):
        assert secret not in result.error
    assert listener.connections == 0


def test_a_name_in_the_hosts_file_that_means_loopback_is_refused_on_save(internal_targets_blocked, listener):
    name = hosts_file_loopback_name()
    if name is None:
        pytest.skip("/etc/hosts names no loopback host besides localhost here")
    refused = save_error("webhook", {"url": f"http://{name}:{listener.port}/"})
    assert refused.field == "config.url" and f"'{name}' resolves to 127." in refused.message


# (case, provider type, destination, the name the send looks up, the reason its internal answer gives)
# Saves pass: the user chose no internal host. At send the name answers with an internal address.
REFUSED_AT_SEND = [
    ("webhook-rebinding", "webhook", "http://rebind.example:{port}/hook", "rebind.example", "loopback"),
    ("email-rebinding", "email", "mail.rebind.example", "mail.rebind.example", "loopback"),
    (
        "teams-rebinding",
        "teams",
        "workflows://wf.rebind.example:{port}/a/b/c",
        "wf.rebind.example",
        "loopback",
    ),
    (
        "ntfy-rebinding",
        "apprise",
        "ntfy://ntfy.rebind.example:{port}/topic",
        "ntfy.rebind.example",
        "loopback",
    ),
    ("json-rebinding", "apprise", "json://json.rebind.example:{port}/", "json.rebind.example", "loopback"),
    ("slack-fixed-host", "slack", f"https://hooks.slack.com/{SLACK_PATH}", "hooks.slack.com", "RFC 1918"),
    ("discord-fixed-host", "discord", f"https://discord.com/{DISCORD_PATH}", "discord.com", "metadata"),
    ("telegram-fixed-host", "telegram", "-1001234567890", "api.telegram.org", "loopback"),
    ("ntfy-fixed-host", "apprise", "ntfy://supercheck-alerts", "ntfy.sh", "carrier-grade NAT"),
]
INTERNAL_ANSWER = {"loopback": "127.0.0.1", "RFC 1918": "10.9.8.7", "metadata": "169.254.169.254"} | {
    "carrier-grade NAT": "100.64.1.2"
}


@pytest.mark.parametrize(
    ("provider_type", "destination", "name", "fragment"),
    [case[1:] for case in REFUSED_AT_SEND],
    ids=[case[0] for case in REFUSED_AT_SEND],
)
def test_a_name_public_on_save_but_internal_at_send_is_never_connected_to(
    internal_targets_blocked, dns, listener, provider_type, destination, name, fragment
):
    internal = INTERNAL_ANSWER[fragment]
    dns.answer(name, [PUBLIC], [internal])
    stored = notify.validate_provider_config(
        provider_type, config_for(provider_type, destination, listener.port)
    )
    if (
        name not in dns.lookups
    ):  # a service's own fixed host: nothing to vet on save, the send's lookup is first
        dns.answer(name, [internal])
    result = send(provider_type, stored)
    assert result.status == "failed"
    assert "destination blocked: " in result.error and f"resolves to {internal}" in result.error
    assert fragment in result.error and result.attempts == 1
    assert listener.connections == 0


def test_a_service_resolving_names_outside_the_pinned_resolver_must_be_given_an_address(
    internal_targets_blocked, monkeypatch, dns
):
    refused = save_error("apprise", {"url": "rsyslog://syslog.example.net"})
    assert refused.field == "config.url" and "give its IP address" in refused.message
    assert notify.validate_provider_config("apprise", {"url": f"rsyslog://{PUBLIC}"})
    set_internal_targets(monkeypatch, True)
    stored = notify.validate_provider_config("apprise", {"url": "rsyslog://syslog.example.net"})
    set_internal_targets(monkeypatch, False)
    result = send("apprise", stored)
    assert (result.status, result.attempts) == ("failed", 0) and "give its IP address" in result.error


def test_a_blocked_send_is_recorded_in_alert_history_without_secrets(
    internal_targets_blocked, clean, aio, dns, listener
):
    dns.answer("hooks.rebind.example", [PUBLIC], ["192.168.7.7"])
    config = {"url": f"http://hooks.rebind.example:{listener.port}/alerts/{TOKEN}?sig={TOKEN}x"}
    provider_id = add_provider(clean, config)  # vetted on save: the name answered a public address then
    event = add_alert(clean, [provider_id])
    counts = aio.run(send_alerts([event]))
    assert counts["failed"] == 1
    ((status, error),) = clean.sql(
        "select status, error from alert_history where provider_id = %s", (provider_id,)
    )
    assert status == "failed"
    assert error.startswith(
        "destination blocked: 'hooks.rebind.example' resolves to 192.168.7.7: private (RFC 1918)"
    )
    assert TOKEN not in error
    assert listener.connections == 0


# --- allowed destinations: the send reaches the vetted address, under the name it was given -------------------


def test_a_webhook_goes_to_the_address_its_name_was_vetted_as_with_the_name_as_host(
    internal_targets, dns, webhook_receiver
):
    dns.answer("alerts.example", ["127.0.0.1"], ["10.0.0.1"])  # a second lookup would fail to connect
    stored = notify.validate_provider_config(
        "webhook", {"url": f"http://alerts.example:{webhook_receiver.port}/in"}
    )
    dns.lookups.clear()
    assert send("webhook", stored).status == "sent"
    (request,) = webhook_receiver.requests
    assert request.headers["Host"] == f"alerts.example:{webhook_receiver.port}" and request.path == "/in"
    assert dns.lookups == ["alerts.example"]  # resolved once per send, and that answer was the one used


def test_an_apprise_url_goes_to_the_vetted_address(internal_targets, dns, webhook_receiver):
    dns.answer("ntfy.example", ["127.0.0.1"])
    stored = notify.validate_provider_config(
        "apprise", {"url": f"ntfy://ntfy.example:{webhook_receiver.port}/alerts"}
    )
    assert send("apprise", stored).status == "sent"
    (request,) = webhook_receiver.requests
    assert request.headers["Host"].startswith("ntfy.example") and "Checkout API" in request.body.decode()


def test_email_goes_to_the_vetted_smtp_address(internal_targets, dns):
    dns.answer("mail.example", ["127.0.0.1"])
    smtp = SmtpReceiver().start()
    try:
        stored = notify.validate_provider_config("email", config_for("email", "mail.example", smtp.port))
        result = send("email", stored)
    finally:
        smtp.stop()
    assert result.status == "sent"
    assert [recipients for recipients, _ in smtp.messages] == [[MAILBOX]]


def test_tls_is_verified_against_the_name_not_the_pinned_address(
    internal_targets, dns, monkeypatch, tmp_path
):
    authority = CertificateAuthority()
    bundle = tmp_path / "ca.pem"
    bundle.write_text(authority.pem)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    server = RouteServer(credential=authority.issue_for_days(30, names=["alerts.example"])).start()
    dns.answer("alerts.example", ["127.0.0.1"])
    dns.answer("other.example", ["127.0.0.1"])
    try:
        right = notify.validate_provider_config(
            "webhook", {"url": f"https://alerts.example:{server.port}/ok"}
        )
        wrong = notify.validate_provider_config("webhook", {"url": f"https://other.example:{server.port}/ok"})
        assert send("webhook", right).status == "sent"
        failed = send("webhook", wrong)
    finally:
        server.stop()
    assert set(server.server_names) == {"alerts.example", "other.example"}  # SNI: the name, never the IP
    assert failed.status == "failed" and "SSLError" in failed.error
    assert [seen.path for seen in server.seen] == ["/ok"]  # the mismatched name never got a request through


def test_sends_on_threads_at_once_each_see_only_their_own_pins(internal_targets):
    """Two sends overlap on two threads, each pinning the same name to another address: neither sees the other's."""
    both_inside = threading.Barrier(2, timeout=10)
    seen: dict[str, list[str]] = {}

    def lookup(label: str) -> None:
        both_inside.wait()
        seen[label] = [
            info[4][0] for info in socket.getaddrinfo("shared.example", 443, type=socket.SOCK_STREAM)
        ]

    def pinned_send(label: str, address: str) -> None:
        destinations.run_pinned({"shared.example": [ipaddress.ip_address(address)]}, lookup, label)

    threads = [
        threading.Thread(target=pinned_send, args=("first", "127.0.0.11")),
        threading.Thread(target=pinned_send, args=("second", "::1")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == {"first": ["127.0.0.11"], "second": ["::1"]}
    with pytest.raises(socket.gaierror):  # outside a send, the name is what DNS says (nothing, here)
        socket.getaddrinfo("shared.example", 443)
