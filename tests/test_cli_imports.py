"""`supercheck import gatus|kuma`: pure converters, table-tested on single conditions and fields, then on
realistic files (tests/fixtures/) whose unconvertible parts must all be reported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from shared.cli.imports import Conversion, Keys, frequency_minutes, gatus, kuma, timeout_seconds

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def _gatus_monitor(check_type: str = "http_request") -> gatus._Monitor:
    return gatus._Monitor(check_type, {}, {})


@pytest.mark.parametrize(
    "condition, config",
    [
        ("[STATUS] == 200", {"expectedStatusCodes": "200"}),
        ("[STATUS] == any(200, 204)", {"expectedStatusCodes": "200,204"}),
        ("[STATUS] < 300", {"expectedStatusCodes": "100-299"}),
        ("[STATUS] <= 299", {"expectedStatusCodes": "100-299"}),
        ("[STATUS] >= 200", {"expectedStatusCodes": "200-599"}),
        ("[STATUS] != 503", {"expectedStatusCodes": "100-502,504-599"}),
        ("[BODY].status == UP", {"jsonPathAssertion": '$.status == "UP"'}),
        ("[BODY].count > 3", {"jsonPathAssertion": "$.count > 3"}),
        ('[BODY].name == "a b"', {"jsonPathAssertion": '$.name == "a b"'}),
        ("[BODY].ok == true", {"jsonPathAssertion": "$.ok == true"}),
        ("[BODY].data[0].id == 7", {"jsonPathAssertion": "$.data[0].id == 7"}),
        ("len([BODY].items) >= 1", {"jsonPathAssertion": "$.items.length() >= 1"}),
        ("[BODY] == pat(*healthy*)", {"keywordInBody": "healthy"}),
        ("[RESPONSE_TIME] < 300", {"degradedAfterMs": 299}),
        ("[RESPONSE_TIME] <= 300", {"degradedAfterMs": 300}),
        ("[CERTIFICATE_EXPIRATION] > 48h", {"enableSslCheck": True, "sslDaysUntilExpirationWarning": 2}),
        ("[CERTIFICATE_EXPIRATION] > 720h", {"enableSslCheck": True, "sslDaysUntilExpirationWarning": 30}),
        ("[CONNECTED] == true", {}),
    ],
)
def test_a_gatus_condition_becomes_config(condition, config):
    monitor = _gatus_monitor()
    gatus.apply_condition(monitor, condition)
    assert monitor.config == config


@pytest.mark.parametrize(
    "condition, check_type, reason",
    [
        ("[BODY] == pat(*a*b*)", "http_request", "patterns"),
        ("[BODY].id == any(1, 2)", "http_request", "patterns"),
        ('[BODY] == "exact"', "http_request", "whole body"),
        ("[STATUS] == 700", "http_request", "100 to 599"),
        ("[STATUS] < 100", "http_request", "no status code"),
        ("[RESPONSE_TIME] > 10", "http_request", "upper bound"),
        ("[CERTIFICATE_EXPIRATION] < 48h", "http_request", "lower bound"),
        ("[DOMAIN_EXPIRATION] > 720h", "http_request", "[DOMAIN_EXPIRATION]"),
        ("[IP] == 10.0.0.1", "http_request", "[IP]"),
        ("[RESPONSE_TIME] < 50", "ping_host", "ping_host"),
        ("[CONNECTED] == false", "ping_host", "port check"),
        ("has([BODY].errors) == false", "http_request", "not a condition"),
    ],
)
def test_a_gatus_condition_without_counterpart_says_why(condition, check_type, reason):
    with pytest.raises(gatus.Unconvertible, match=reason.replace("[", r"\[").replace("]", r"\]")):
        gatus.apply_condition(_gatus_monitor(check_type), condition)


def test_a_second_json_path_condition_is_refused_not_merged():
    monitor = _gatus_monitor()
    gatus.apply_condition(monitor, "[BODY].a == 1")
    with pytest.raises(gatus.Unconvertible, match="one JSON path assertion"):
        gatus.apply_condition(monitor, "[BODY].b == 2")
    assert monitor.config == {"jsonPathAssertion": "$.a == 1"}


@pytest.mark.parametrize(
    "text, seconds", [("30s", 30), ("5m", 300), ("1h30m", 5400), ("500ms", 0.5), ("2h", 7200)]
)
def test_go_durations(text, seconds):
    assert gatus.duration_seconds(text) == seconds


@pytest.mark.parametrize("text", ["5", "five minutes", "5m junk", ""])
def test_a_duration_that_is_none_is_refused(text):
    with pytest.raises(gatus.Unconvertible):
        gatus.duration_seconds(text)


@pytest.mark.parametrize(
    "seconds, minutes, changed",
    [(60, 1, False), (300, 5, False), (30, 1, True), (90, 2, True), (86400 * 2, 1440, True)],
)
def test_intervals_become_whole_minutes_and_say_so_when_they_change(seconds, minutes, changed):
    got, note = frequency_minutes(seconds)
    assert got == minutes and (note is not None) == changed


@pytest.mark.parametrize(
    "seconds, frequency, expected",
    [(10, 1, 10), (48, 1, 30), (30.5, 5, 31), (120, 10, 60), (0.2, 1, 1)],
)
def test_a_timeout_leaves_the_run_time_to_report(seconds, frequency, expected):
    assert timeout_seconds(seconds, frequency)[0] == expected


def test_keys_are_stable_slugs_and_never_repeat():
    keys = Keys()
    assert [
        keys.key_for("Backend", "API health!"),
        keys.key_for("backend", "api health"),
        keys.key_for(""),
    ] == [
        "backend-api-health",
        "backend-api-health-2",
        "monitor",
    ]
    assert len(Keys().key_for("x" * 300)) == 100


def _load(name: str):
    text = (FIXTURES / name).read_text()
    return json.loads(text) if name.endswith(".json") else yaml.safe_load(text)


def _problem_map(conversion: Conversion) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for problem in conversion.problems:
        found.setdefault(problem.where, []).append(problem.what)
    return found


def test_the_gatus_sample_converts_its_endpoints_and_lists_the_rest():
    conversion = gatus.convert(_load("gatus-config.yaml"))
    by_key = {monitor["key"]: monitor for monitor in conversion.monitors}
    assert list(by_key) == [
        "frontend-website",
        "backend-api-health",
        "backend-orders",
        "backend-postgres",
        "gateway-ping",
        "example-dns",
        "legacy",
    ]
    assert by_key["example-dns"] == {
        "key": "example-dns",
        "name": "example dns",
        "type": "dns",
        "target": "example.com",
        "frequencyMinutes": 1,
        "config": {"recordType": "A", "resolvers": ["8.8.8.8"], "expectedRcode": "NOERROR"},
        "tags": [],
    }
    api = by_key["backend-api-health"]
    assert api["frequencyMinutes"] == 1 and api["tags"] == ["backend"]
    assert api["config"] == {
        "timeoutSeconds": 10,
        "method": "POST",
        "headers": {
            "Content-Type": "application/json",
            "Authorization": "${GATUS_BACKEND_API_HEALTH_AUTHORIZATION}",
        },
        "body": '{"probe": true}',
        "expectedStatusCodes": "200,201",
        "jsonPathAssertion": '$.status == "UP"',
    }
    assert "sk_live" not in conversion.yaml_text("x"), "a secret of the source never reaches the file"
    assert conversion.variables == ["GATUS_BACKEND_API_HEALTH_AUTHORIZATION"]
    assert by_key["backend-orders"]["config"]["headers"] == {"X-Api-Key": "${ORDERS_API_KEY}"}
    assert by_key["frontend-website"]["alertConfig"] == {"alertOnSslExpiration": True}
    assert by_key["backend-postgres"] | {"config": None} == {
        "key": "backend-postgres",
        "name": "postgres",
        "type": "port_check",
        "target": "db.example.com",
        "frequencyMinutes": 2,
        "config": None,
        "tags": ["backend"],
    }
    assert by_key["legacy"]["enabled"] is False
    problems = _problem_map(conversion)
    assert problems == {
        "storage": ["section not imported"],
        "alerting": ["section not imported"],
        "ui": ["section not imported"],
        "endpoints[0] 'website'": [
            "alerts",
            "conditions[1] '[RESPONSE_TIME] < 500' converted approximately",
            "conditions[2] '[CERTIFICATE_EXPIRATION] > 48h' converted approximately",
            "conditions[3] '[BODY] == pat(*Welcome*)' converted approximately",
        ],
        "endpoints[1] 'api health'": [
            "interval",
            "client.insecure",
            "conditions[2] '[BODY].checks.database == true' not converted",
            "conditions[3] 'len([BODY].errors) == 0' not converted",
        ],
        "endpoints[2] 'orders'": ["conditions[2] '[BODY].data[0].id == pat(ord_*)' not converted"],
        "endpoints[4] 'gateway ping'": ["conditions[1] '[RESPONSE_TIME] < 100' not converted"],
        "endpoints[6] 'bastion'": ["endpoint not imported"],
        "endpoints[7] 'legacy'": ["interval", "conditions[1] '[IP] == 203.0.113.7' not converted"],
    }


def test_the_kuma_sample_converts_its_monitors_and_lists_the_rest():
    conversion = kuma.convert(_load("kuma-backup.json"))
    by_key = {monitor["key"]: monitor for monitor in conversion.monitors}
    assert list(by_key) == [
        "marketing-site",
        "login-page-has-form",
        "admin-api",
        "redis-port",
        "router",
        "dns-a-record",
        "smtp-must-stay-closed",
    ]
    assert by_key["dns-a-record"]["type"] == "dns" and by_key["dns-a-record"]["target"] == "example.com"
    assert by_key["dns-a-record"]["config"] == {"recordType": "A", "resolvers": ["1.1.1.1"]}
    assert by_key["marketing-site"]["tags"] == ["production", "Web"], "the group's name becomes a tag"
    assert by_key["marketing-site"]["alertConfig"] == {"failureThreshold": 3}
    assert by_key["login-page-has-form"]["config"] | {"timeoutSeconds": None} == {
        "expectedStatusCodes": "200-299,301",
        "keywordInBody": "Sign in",
        "keywordInBodyShouldBePresent": True,
        "maxRedirects": 10,
        "timeoutSeconds": None,
    }
    admin = by_key["admin-api"]["config"]
    assert admin["jsonPathAssertion"] == '$.status.overall == "healthy"'
    assert admin["auth"] == {"type": "basic", "username": "monitor", "password": "${KUMA_ADMIN_API_PASSWORD}"}
    assert admin["headers"]["X-Api-Key"] == "${KUMA_ADMIN_API_X_API_KEY}"
    text = conversion.yaml_text("x")
    assert "s3cret-pass" not in text and "adm_9f8e7d6c5b4a" not in text and "ABCDEF" not in text
    assert by_key["redis-port"]["enabled"] is False
    assert by_key["smtp-must-stay-closed"]["config"] == {"port": 25, "expectClosed": True}
    problems = _problem_map(conversion)
    assert problems == {
        "notificationList 'Ops Telegram'": ["notification not imported"],
        "monitorList[0] 'Marketing site'": ["description", "timeout"],
        "monitorList[1] 'Login page has form'": ["keyword converted approximately"],
        "monitorList[2] 'Admin API'": ["timeout"],
        "monitorList[3] 'Redis port'": ["interval", "timeout"],
        "monitorList[4] 'Router'": ["packetSize 1400"],
        "monitorList[6] 'Web'": ["monitor not imported"],
        "monitorList[7] 'Nightly backup'": ["monitor not imported"],
        "monitorList[8] 'Intranet'": ["monitor not imported"],
        "monitorList[9] 'SMTP must stay closed'": ["ignoreTls"],
    }


@pytest.mark.parametrize(
    "query, expected, operator, assertion",
    [
        ("status", "ok", None, '$.status == "ok"'),
        ("$.data.count", "3", ">", "$.data.count > 3"),
        ("items[0].ready", "true", None, "$.items[0].ready == true"),
    ],
)
def test_a_kuma_json_query_that_is_a_plain_path_converts(query, expected, operator, assertion):
    assert kuma._json_query(query, expected, operator) == assertion


@pytest.mark.parametrize(
    "query, operator", [("$count(items)", None), ("a and b", None), ("status", "contains")]
)
def test_a_kuma_json_query_that_is_jsonata_is_refused(query, operator):
    with pytest.raises(kuma.Unconvertible):
        kuma._json_query(query, "x", operator)


@pytest.mark.parametrize(
    "source, converter",
    [
        ("[]", gatus.convert),
        ("endpoints: 3", gatus.convert),
        ("{}", kuma.convert),
        ('{"monitorList": 1}', kuma.convert),
    ],
)
def test_a_file_of_another_shape_is_reported_not_crashed_on(source, converter):
    conversion = converter(yaml.safe_load(source))
    assert conversion.monitors == [] and conversion.problems
