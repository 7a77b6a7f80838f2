"""DNS checks against a real DNS server on loopback (tests/dns_server.py), over UDP and TCP: every record type,
expected values as sets, rcodes, resolvers in order, truncation, and the SSRF rule for resolver addresses."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError

from shared.checks import run_check
from shared.checks.dns import DnsConfig, judge_dns, normalize_value, parse_resolver
from shared.checks.spec import CheckTrial
from tests.check_servers import closed_port, has_ipv6_loopback
from tests.dns_server import DnsServer, DnsZone, SilentUdpPort
from tests.factories import trial_job

pytestmark = pytest.mark.usefixtures("internal_targets")  # the resolvers are on loopback


@pytest.fixture
def zone() -> DnsZone:
    zone = DnsZone()
    zone.set("app.test", "A", ["192.0.2.10", "192.0.2.11"], ttl=120)
    zone.set("app.test", "AAAA", ["2001:DB8::10"])
    zone.set("test", "MX", ["10 Mail.Test.", "20 backup.test."])
    zone.set("test", "TXT", ['"v=spf1 -all"', '"google-site-verification=abc"'])
    zone.set("test", "NS", ["ns1.test.", "ns2.test."])
    zone.set("test", "SOA", ["ns1.test. hostmaster.test. 2026120301 3600 600 86400 60"])
    zone.set("test", "CAA", ['0 issue "letsencrypt.org"'])
    zone.set("_https._tcp.test", "SRV", ["10 5 443 app.test."])
    zone.set("www.test", "CNAME", ["app.test."])
    zone.set("1.0.0.127.in-addr.arpa", "PTR", ["localhost.test."])
    return zone


@pytest.fixture
def server(zone):
    running = DnsServer(zone).start()
    yield running
    running.stop()


def dns_check(target: str, **config):
    job = trial_job({"type": "dns", "target": target, "config": config})
    return asyncio.run(run_check(job))


# --- pure parts ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "record_type, text, normal",
    [
        ("A", " 192.0.2.1 ", "192.0.2.1"),
        ("AAAA", "2001:DB8:0::1", "2001:db8::1"),
        ("CNAME", "App.Test.", "app.test"),
        ("MX", "10   Mail.Test.", "10 mail.test"),
        ("SRV", "10 5 443 App.test.", "10 5 443 app.test"),
        ("CAA", '0 ISSUE "letsencrypt.org"', "0 issue letsencrypt.org"),
        ("TXT", '"v=spf1 -all"', "v=spf1 -all"),
        ("TXT", "v=spf1 -all", "v=spf1 -all"),
        ("A", "not-an-ip", "not-an-ip"),  # kept as given: it simply never matches
    ],
)
def test_expected_values_are_normalized_as_answers_are_shown(record_type, text, normal):
    assert normalize_value(record_type, text) == normal


@pytest.mark.parametrize(
    "text, parsed",
    [
        ("192.0.2.53", ("192.0.2.53", 53)),
        ("192.0.2.53:5353", ("192.0.2.53", 5353)),
        ("2001:db8::53", ("2001:db8::53", 53)),
        ("[2001:db8::53]:5353", ("2001:db8::53", 5353)),
    ],
)
def test_resolvers_are_addresses_with_an_optional_port(text, parsed):
    assert parse_resolver(text) == parsed


@pytest.mark.parametrize("text", ["dns.google", "192.0.2.1:0", "192.0.2.1:70000", "[2001:db8::1", ""])
def test_a_resolver_that_is_not_an_address_and_port_is_refused(text):
    with pytest.raises(ValueError):
        parse_resolver(text)


def config(**fields) -> DnsConfig:
    return DnsConfig.model_validate({"target": "app.test", **fields})


@pytest.mark.parametrize(
    "fields, rcode, values, status, says",
    [
        ({}, "NOERROR", ["192.0.2.1"], "up", "1 A record(s): 192.0.2.1"),
        ({}, "NOERROR", [], "down", "no A records for app.test"),
        ({}, "NXDOMAIN", [], "down", "rcode NXDOMAIN, expected NOERROR"),
        ({"expectedRcode": "NXDOMAIN"}, "NXDOMAIN", [], "up", "rcode NXDOMAIN, as expected"),
        ({"expectedRcode": "nxdomain"}, "NOERROR", ["192.0.2.1"], "down", "rcode NOERROR, expected NXDOMAIN"),
        # a set: order and duplicates do not matter; "all" lets extra answers through
        (
            {"expectedValues": ["192.0.2.2", "192.0.2.1"]},
            "NOERROR",
            ["192.0.2.1", "192.0.2.2"],
            "up",
            "as expected",
        ),
        (
            {"expectedValues": ["192.0.2.1", "192.0.2.9"]},
            "NOERROR",
            ["192.0.2.1"],
            "down",
            "missing A value(s): 192.0.2.9",
        ),
        (
            {"expectedValues": ["192.0.2.9", "192.0.2.1"], "match": "any"},
            "NOERROR",
            ["192.0.2.1"],
            "up",
            "as expected",
        ),
        (
            {"expectedValues": ["192.0.2.9"], "match": "any"},
            "NOERROR",
            ["192.0.2.1"],
            "down",
            "none of the expected",
        ),
        ({"expectedValues": ["192.0.2.66"], "match": "none"}, "NOERROR", ["192.0.2.1"], "up", "as expected"),
        (
            {"expectedValues": ["192.0.2.1"], "match": "NONE"},
            "NOERROR",
            ["192.0.2.1"],
            "down",
            "unwanted A value(s)",
        ),
        (
            {"expectedValues": [r"^192\.0\.2\."], "match": "regex"},
            "NOERROR",
            ["192.0.2.1"],
            "up",
            "as expected",
        ),
        (
            {"expectedValues": [r"^192\.0\.2\."], "match": "regex"},
            "NOERROR",
            ["192.0.2.1", "10.0.0.1"],
            "down",
            "matching no pattern: 10.0.0.1",
        ),
    ],
)
def test_the_verdict_compares_the_answer_set_with_the_expected_one(fields, rcode, values, status, says):
    verdict, message = judge_dns(config(**fields), rcode, values)
    assert verdict == status and says in message


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"recordType": "ANY"}, "recordType"),
        ({"transport": "quic"}, "transport"),
        ({"resolvers": ["dns.example.com"]}, "resolvers"),
        ({"expectedValues": ["(unclosed"], "match": "regex"}, "expectedValues"),
        ({"timeoutSeconds": 0}, "timeoutSeconds"),
        ({"resolvers": ["192.0.2.1"] * 6}, "resolvers"),
    ],
)
def test_a_bad_config_is_refused_at_save_naming_its_field(fields, field):
    with pytest.raises(ValidationError) as raised:
        CheckTrial.model_validate({"type": "dns", "target": "app.test", "config": fields})
    assert field in str(raised.value)


def test_an_ip_target_is_only_for_ptr_lookups():
    with pytest.raises(ValidationError, match="recordType PTR"):
        CheckTrial.model_validate({"type": "dns", "target": "192.0.2.1", "config": {}})
    CheckTrial.model_validate({"type": "dns", "target": "192.0.2.1", "config": {"recordType": "PTR"}})


def test_a_loopback_or_private_resolver_is_refused_unless_internal_targets_are_allowed(
    internal_targets_blocked,
):
    for resolver in ("127.0.0.1:5353", "10.0.0.53", "[::1]:53"):
        with pytest.raises(ValidationError, match="ALLOW_INTERNAL_TARGETS"):
            CheckTrial.model_validate(
                {"type": "dns", "target": "app.test", "config": {"resolvers": [resolver]}}
            )
    CheckTrial.model_validate({"type": "dns", "target": "app.test", "config": {"resolvers": ["9.9.9.9"]}})


# --- against the real server ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target, record_type, expected",
    [
        ("app.test", "A", ["192.0.2.11", "192.0.2.10"]),
        ("app.test", "AAAA", ["2001:db8::10"]),
        ("test", "MX", ["20 backup.test", "10 mail.test."]),
        ("test", "TXT", ["v=spf1 -all"]),
        ("test", "NS", ["ns1.test", "ns2.test"]),
        ("test", "CAA", ['0 issue "letsencrypt.org"']),
        ("_https._tcp.test", "SRV", ["10 5 443 app.test"]),
        ("www.test", "CNAME", ["app.test"]),
        ("127.0.0.1", "PTR", ["localhost.test"]),
    ],
)
def test_each_record_type_is_read_and_matched(server, target, record_type, expected):
    outcome = dns_check(target, recordType=record_type, resolvers=[server.address], expectedValues=expected)
    assert outcome.status == "up", outcome.message
    assert outcome.details["recordType"] == record_type and outcome.details["rcode"] == "NOERROR"
    assert outcome.details["resolver"] == server.address and outcome.details["transport"] == "udp"
    assert outcome.details["authoritative"] is True
    assert outcome.response_time_ms is not None and outcome.dns_ms is not None


def test_the_result_records_answers_with_their_ttls_and_the_soa_serial(server):
    outcome = dns_check("app.test", resolvers=[server.address])
    assert outcome.details["answers"] == [
        {"value": "192.0.2.10", "ttl": 120},
        {"value": "192.0.2.11", "ttl": 120},
    ]
    soa = dns_check(
        "test",
        recordType="SOA",
        resolvers=[server.address],
        expectedValues=["ns1.test. hostmaster.test. 2026120301 3600 600 86400 60"],
    )
    assert soa.status == "up", soa.message
    assert soa.details["soaSerial"] == 2026120301
    nodata = dns_check("app.test", recordType="MX", resolvers=[server.address])
    assert nodata.status == "down" and nodata.details["soaSerial"] == 2026120301  # from the authority section


def test_a_cname_chain_is_followed_and_recorded(server):
    outcome = dns_check("www.test", resolvers=[server.address], expectedValues=["192.0.2.10"])
    assert outcome.status == "up", outcome.message
    assert outcome.details["cnameChain"] == ["app.test"]


def test_a_changed_record_fails_the_expected_values(server, zone):
    assert dns_check("app.test", resolvers=[server.address], expectedValues=["192.0.2.10"]).status == "up"
    zone.set("app.test", "A", ["192.0.2.99"])
    outcome = dns_check("app.test", resolvers=[server.address], expectedValues=["192.0.2.10"])
    assert outcome.status == "down" and "missing A value(s): 192.0.2.10 (got 192.0.2.99)" in outcome.message


def test_nxdomain_is_down_unless_expected(server):
    missing = dns_check("gone.test", resolvers=[server.address])
    assert (missing.status, missing.details["rcode"]) == ("down", "NXDOMAIN")
    assert dns_check("gone.test", resolvers=[server.address], expectedRcode="NXDOMAIN").status == "up"


def test_tcp_is_used_when_asked(server, zone):
    outcome = dns_check("app.test", resolvers=[server.address], transport="tcp")
    assert outcome.status == "up" and outcome.details["transport"] == "tcp"
    assert zone.queries == {"tcp": 1}


def test_a_truncated_udp_answer_is_asked_again_over_tcp(server, zone):
    zone.truncate_udp = True
    outcome = dns_check("app.test", resolvers=[server.address], expectedValues=["192.0.2.10"])
    assert outcome.status == "up" and outcome.details["transport"] == "tcp"
    assert zone.queries == {"udp": 1, "tcp": 1}


def test_resolvers_are_asked_in_order_until_one_answers(server):
    silent = SilentUdpPort()
    try:
        outcome = dns_check("app.test", resolvers=[silent.address, server.address], timeoutSeconds=4)
    finally:
        silent.close()
    assert outcome.status == "up" and outcome.details["resolver"] == server.address


def test_a_resolver_that_never_answers_times_out_and_a_closed_one_is_down():
    silent = SilentUdpPort()
    try:
        outcome = dns_check("app.test", resolvers=[silent.address], timeoutSeconds=1)
    finally:
        silent.close()
    assert outcome.status == "timeout" and "no answer within 1s" in outcome.message
    closed = dns_check(
        "app.test", resolvers=[f"127.0.0.1:{closed_port()}"], transport="tcp", timeoutSeconds=2
    )
    assert closed.status == "down" and "ConnectionRefusedError" in closed.message


@pytest.mark.skipif(not has_ipv6_loopback(), reason="no IPv6 loopback (::1) here")
def test_a_resolver_on_ipv6_loopback_answers(zone):
    server = DnsServer(zone, host="::1").start()
    try:
        outcome = dns_check(
            "app.test", recordType="AAAA", resolvers=[server.address], expectedValues=["2001:db8::10"]
        )
    finally:
        server.stop()
    assert outcome.status == "up", outcome.message


# --- through the local stack ---------------------------------------------------------------------------------


def test_check_dns_runs_a_trial_and_a_monitors_runs_in_every_location_through_the_pipeline(
    stack, clean, server
):
    import time

    import httpx

    config = {"resolvers": [server.address], "expectedValues": ["192.0.2.10"]}
    with httpx.Client(base_url=f"{stack.gateway_url}/function", timeout=60) as gateway:
        trial = gateway.post(
            "/api/monitors/test", json={"type": "dns", "target": "app.test", "config": config}
        )
        assert trial.status_code == 200, trial.text
        assert trial.json()["status"] == "up" and trial.json()["details"]["rcode"] == "NOERROR"

        created = gateway.post(
            "/api/monitors",
            json={
                "name": "app A record",
                "type": "dns",
                "target": "app.test",
                "frequencyMinutes": 1,
                "config": config,
            },
        )
        assert created.status_code == 201, created.text
        monitor_id = created.json()["id"]
        deadline = time.monotonic() + 90
        results = []
        while time.monotonic() < deadline and len(results) < 3:
            time.sleep(0.5)
            results = gateway.get(f"/api/monitors/{monitor_id}/results").json()["data"]
    assert sorted(r["location"] for r in results) == ["asia-pacific", "eu-central", "us-east"]
    assert {r["status"] for r in results} == {"up"}
    assert server.zone.queries["udp"] >= 4


def test_a_changed_answer_set_is_noted_on_the_result_and_alerts_once_with_alert_on_change(
    stack, clean, server, zone, webhook_receiver
):
    import httpx

    from tests.servers import wait_until

    def finalized(monitor_id: str, count: int) -> None:
        wait_until(
            lambda: (
                clean.sql(
                    "select count(*) from runs where monitor_id = %s and finalized_at is not null",
                    (monitor_id,),
                )[0][0]
                >= count
            ),
            message=f"{count} finalized run(s)",
        )

    with httpx.Client(base_url=f"{stack.gateway_url}/function", timeout=60) as api:
        hook = api.post(
            "/api/notification-providers",
            json={"name": "hook", "type": "webhook", "config": {"url": webhook_receiver.url}},
        )
        assert hook.status_code == 201, hook.text
        # the new value still matches "any": only alertOnChange makes the change an alert
        config = {
            "resolvers": [server.address],
            "expectedValues": ["192.0.2.10", "192.0.2.99"],
            "match": "any",
            "alertOnChange": True,
        }
        created = api.post(
            "/api/monitors",
            json={
                "name": "app A",
                "type": "dns",
                "target": "app.test",
                "frequencyMinutes": 60,
                "config": config,
                "locationConfig": {"locations": ["us-east"]},
                "alertConfig": {"enabled": True, "notificationProviders": [hook.json()["id"]]},
            },
        )
        assert created.status_code == 201, created.text
        monitor_id = created.json()["id"]
        finalized(monitor_id, 1)
        zone.set("app.test", "A", ["192.0.2.99"])
        assert api.post("/schedule", json={"monitorIds": [monitor_id]}).status_code == 200
        finalized(monitor_id, 2)
        webhook_receiver.wait_for_requests(1)
        results = api.get(f"/api/monitors/{monitor_id}/results").json()["data"]
    latest = max(results, key=lambda r: r["checkedAt"])
    assert latest["status"] == "up"
    assert latest["details"]["changes"] == {"removed": ["192.0.2.10", "192.0.2.11"], "added": ["192.0.2.99"]}
    assert latest["message"].endswith("records changed: - 192.0.2.10 - 192.0.2.11 + 192.0.2.99")
    [alert] = [request.json() for request in webhook_receiver.requests]
    assert alert["title"] == "DNS Records Changed - app A"
    assert "Records at us-east: - 192.0.2.10 - 192.0.2.11 + 192.0.2.99" in alert["message"]
    assert clean.sql("select kind from alert_events where monitor_id = %s", (monitor_id,)) == [
        ("dns_changed",)
    ]
