"""Pure matchers and verdicts, table-tested: status specs, keywords, JSON paths, ping, port and certificates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.checks.certificates import (
    CertificateFacts,
    certificate_check_due,
    certificate_verdict,
    check_interval,
    days_until,
)
from shared.checks.http import detect_content_type
from shared.checks.ping import judge_ping
from shared.checks.port import PortConfig, judge_port
from shared.rules.matchers import (
    json_path_verdict,
    keyword_verdict,
    parse_json_path_assertion,
    parse_status_spec,
    status_matches,
)


@pytest.mark.parametrize(
    ("spec", "code", "matches"),
    [
        ("200", 200, True),
        ("200", 201, False),
        ("2xx", 204, True),
        ("2XX", 299, True),
        ("2xx", 300, False),
        ("200-299,404", 404, True),
        ("200-299,404", 403, False),
        ("200-299, 404", 250, True),
        ("", 200, True),
        ("", 299, True),
        ("", 300, False),
        (None, 204, True),
        ("3xx,5xx", 503, True),
        ("100-599", 418, True),
        ("301", 301, True),
    ],
)
def test_status_specs(spec, code, matches):
    assert status_matches(code, parse_status_spec(spec)) is matches


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ("6xx", "'6xx' is not a status code"),
        ("300-200", "runs backwards"),
        ("99", "'99' is not a status code"),
        ("abc", "'abc' is not a status code"),
        ("600", "outside 100-599"),
        ("200-", "'200-' is not"),
        ("200,,404", "'' is not"),
        ("2xx-3xx", "is not a status code"),
    ],
)
def test_invalid_status_specs_say_why(spec, reason):
    with pytest.raises(ValueError) as error:
        parse_status_spec(spec)
    assert reason in str(error.value)


@pytest.mark.parametrize(
    ("body", "keyword", "present", "failure"),
    [
        ("Service is OK", "ok", True, None),
        ("Service is OK", "OK", True, None),
        ("Straße", "STRASSE", True, None),  # casefold, not lower
        ("all good", "error", True, "Keyword 'error' not found in the response body"),
        ("all good", "error", False, None),
        (
            "an ERROR occurred",
            "error",
            False,
            "Keyword 'error' found in the response body, but it should be absent",
        ),
        ("", "x", True, "Keyword 'x' not found in the response body"),
    ],
)
def test_keyword_rules(body, keyword, present, failure):
    assert keyword_verdict(body, keyword, present) == failure


DOCUMENT = '{"status": "ok", "items": [{"id": 1, "on": true}, {"id": 2, "on": false}], "count": 2, "empty": [], "ok": true}'


@pytest.mark.parametrize(
    ("assertion", "failure_fragment"),
    [
        ('$.status == "ok"', None),
        ('$.status != "down"', None),
        ('$.status == "down"', 'JSON path assertion failed: $.status is "ok", expected == "down"'),
        ("$.items.length() > 0", None),
        ("$.items.length() == 2", None),
        ("$.empty.length() > 0", "$.empty.length() is 0, expected > 0"),
        ("$.status.length() == 2", None),
        ("$.count >= 2", None),
        ("$.count < 2", "$.count is 2, expected < 2"),
        ("$.items[0].id == 1", None),
        ("$.items[?(@.on == true)].id == 1", None),
        ("$.ok == true", None),
        ("$.ok == 1", "expected == 1"),  # JSON's true is not 1
        ("$.status > 3", "expected > 3"),  # no comparison between text and numbers
        ("$.missing", "JSON path $.missing matched nothing"),
        ("$.status", None),  # a bare path: it exists
        ("$.count.length() > 1", "which has no length"),
    ],
)
def test_json_path_assertions(assertion, failure_fragment):
    failure = json_path_verdict(DOCUMENT, parse_json_path_assertion(assertion))
    if failure_fragment is None:
        assert failure is None
    else:
        assert failure_fragment in failure


def test_a_body_that_is_not_json_says_so():
    failure = json_path_verdict("<html>oops</html>", parse_json_path_assertion('$.status == "ok"'))
    assert failure.startswith("Response body is not JSON")


@pytest.mark.parametrize(
    ("assertion", "reason"),
    [
        ("status == 'ok'", "must start with a JSON path"),
        ("$.status == ok", "is not a JSON literal"),
        ("$.status == 'ok'", "is not a JSON literal"),
        ("$[", "is not a valid JSON path"),
        ("", "must start with a JSON path"),
    ],
)
def test_invalid_json_path_assertions_are_refused_on_save(assertion, reason):
    with pytest.raises(ValueError) as error:
        parse_json_path_assertion(assertion)
    assert reason in str(error.value)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ('{"a": 1}', "application/json"),
        ("[1, 2]", "application/json"),
        ('  {"nested": {"x": null}} ', "application/json"),
        ("42", "text/plain; charset=utf-8"),  # a bare scalar is more likely text
        ("hello", "text/plain; charset=utf-8"),
        ("{not json", "text/plain; charset=utf-8"),
    ],
)
def test_request_body_content_type_is_detected(body, content_type):
    assert detect_content_type(body) == content_type


@pytest.mark.parametrize(
    ("sent", "received", "limit", "status"),
    [
        (3, 3, 100, "up"),
        (3, 1, 100, "up"),  # by default any reply counts
        (3, 0, 100, "down"),
        (4, 3, 50, "up"),  # 25% < 50%
        (4, 2, 50, "down"),  # 50% is not below 50%
        (1, 1, 1, "up"),
        (0, 0, 100, "down"),
    ],
)
def test_ping_verdicts(sent, received, limit, status):
    assert judge_ping(sent, received, limit)[0] == status


def _port(**config) -> PortConfig:
    return PortConfig.model_validate({"target": "example.com", "port": 443, **config})


@pytest.mark.parametrize(
    ("config", "event", "status", "unconfirmed"),
    [
        ({}, "open", "up", False),
        ({}, "refused", "down", False),
        ({}, "silent", "timeout", False),
        ({}, "unreachable", "down", False),
        ({"expectClosed": True}, "open", "down", False),
        ({"expectClosed": True}, "refused", "up", False),
        ({"expectClosed": True}, "silent", "up", False),
        ({"protocol": "udp"}, "reply", "up", False),
        ({"protocol": "udp"}, "refused", "down", False),
        ({"protocol": "udp"}, "silent", "up", True),
        ({"protocol": "udp", "requireReply": True}, "silent", "down", False),
        ({"protocol": "udp"}, "unreachable", "down", False),
    ],
)
def test_port_verdicts(config, event, status, unconfirmed):
    judged_status, _, judged_unconfirmed = judge_port(event, _port(**config))
    assert (judged_status, judged_unconfirmed) == (status, unconfirmed)


NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def _facts(days: int) -> CertificateFacts:
    valid_to = NOW + timedelta(days=days)
    return CertificateFacts(
        "CN=x",
        "CN=ca",
        (NOW - timedelta(days=90)).isoformat(),
        valid_to.isoformat(),
        days_until(valid_to, NOW),
        ["x"],
        "1",
        "ab",
    )


@pytest.mark.parametrize(
    ("days_left", "warning_days", "status", "warns"),
    [
        (200, 30, "up", False),
        (31, 30, "up", False),
        (30, 30, "up", True),
        (10, 30, "up", True),
        (10, 5, "up", False),  # the configured window is honoured
        (1, 30, "up", True),
        (0, 30, "down", False),
        (-3, 30, "down", False),
    ],
)
def test_certificate_verdicts(days_left, warning_days, status, warns):
    verdict_status, _, warning = certificate_verdict(
        _facts(days_left), NOW - timedelta(days=90), NOW, warning_days
    )
    assert (verdict_status, warning is not None) == (status, warns)


def test_a_certificate_not_yet_valid_is_down():
    status, message, _ = certificate_verdict(_facts(100), NOW + timedelta(days=1), NOW, 30)
    assert status == "down" and "not yet valid" in message


@pytest.mark.parametrize(
    ("moment", "days"),
    [
        (NOW + timedelta(days=9, hours=5), 10),
        (NOW + timedelta(days=10), 10),
        (NOW + timedelta(hours=1), 1),
        (NOW - timedelta(hours=1), 0),
        (NOW - timedelta(days=2), -2),
    ],
)
def test_days_until_expiry_round_up(moment, days):
    assert days_until(moment, NOW) == days


@pytest.mark.parametrize(
    ("days_left", "warning_days", "hours"),
    [
        (200, 30, 24),
        (61, 30, 24),
        (60, 30, 6),
        (31, 30, 6),
        (30, 30, 1),
        (3, 30, 1),
        (20, 10, 6),
        (None, 30, 1),
    ],
)
def test_certificate_check_interval_adapts_to_the_window(days_left, warning_days, hours):
    assert check_interval(days_left, warning_days) == timedelta(hours=hours)


@pytest.mark.parametrize(
    ("last", "age_hours", "due"),
    [
        (None, 0, True),  # first run
        ({"daysLeft": 200}, 23, False),
        ({"daysLeft": 200}, 24, True),
        ({"daysLeft": 50}, 5, False),
        ({"daysLeft": 50}, 6, True),
        ({"daysLeft": 10}, 0.5, False),
        ({"daysLeft": 10}, 1, True),
        ({"checkedAt": "garbage"}, 0, True),
    ],
)
def test_certificate_checks_run_when_due(last, age_hours, due):
    note = None
    if last is not None:
        note = {"checkedAt": (NOW - timedelta(hours=age_hours)).isoformat(), **last}
    assert certificate_check_due(note, 30, NOW) is due
