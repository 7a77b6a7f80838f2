"""`supercheck test`'s reporters, pure builders: the human table, JUnit XML (parsed back), JSON, the GitHub job
summary."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from shared.cli.reports import CaseResult, Suite, github_summary, human_table, json_report, junit_xml

STAMP = "2026-12-03T13:00:00"


def case(key="api", location="us-east", status="up", message="Received status code: 200", ms=120, **extra):
    return CaseResult(
        key=key,
        name=extra.pop("name", f"{key} monitor"),
        type=extra.pop("type", "http_request"),
        target=extra.pop("target", "https://example.com/health"),
        location=location,
        status=status,
        message=message,
        response_time_ms=ms,
        status_code=extra.pop("status_code", 200),
    )


MIXED = [
    Suite(
        "supercheck.yaml",
        [
            case(),
            case(
                location="eu-central",
                status="down",
                message="Received status code: 503, expected: 2xx",
                ms=80,
            ),
            case(
                key="db", type="port_check", status="timeout", message="TCP port 5432: no answer within 10s"
            ),
            case(key="slow", status="degraded", message="Response took 900 ms, over the 500 ms threshold"),
            case(
                key="blocked", status="invalid", message="target: internal addresses are not allowed", ms=None
            ),
        ],
    ),
    Suite("more/other.yaml", [case(key="home")]),
]


def _junit(suites):
    return ET.fromstring(junit_xml(suites, STAMP).encode())


@pytest.mark.parametrize(
    "suites, tests, failures, errors",
    [
        (MIXED, 6, 2, 1),
        ([Suite("a.yaml", [case()])], 1, 0, 0),
        ([Suite("a.yaml", [])], 0, 0, 0),
    ],
)
def test_the_junit_totals_count_failures_and_errors_apart(suites, tests, failures, errors):
    root = _junit(suites)
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == (
        str(tests),
        str(failures),
        str(errors),
    )
    assert len(root.findall("testsuite")) == len(suites)
    assert len(list(root.iter("testcase"))) == tests


def test_each_file_is_a_testsuite_and_each_monitor_and_location_a_testcase():
    root = _junit(MIXED)
    first, second = root.findall("testsuite")
    assert first.get("name") == "supercheck.yaml" and second.get("name") == "more/other.yaml"
    assert first.get("timestamp") == STAMP and first.get("tests") == "5" and first.get("skipped") == "0"
    names = [element.get("name") for element in first.findall("testcase")]
    assert names == [
        "api @ us-east",
        "api @ eu-central",
        "db @ us-east",
        "slow @ us-east",
        "blocked @ us-east",
    ]
    assert {element.get("classname") for element in first.findall("testcase")} == {"supercheck.yaml"}


def test_a_failed_check_is_a_failure_carrying_its_message_and_its_duration():
    down = _junit(MIXED).findall("testsuite")[0].findall("testcase")[1]
    failure = down.find("failure")
    assert failure is not None and down.find("error") is None
    assert failure.get("message") == "Received status code: 503, expected: 2xx"
    assert failure.get("type") == "down"
    assert "eu-central" in failure.text
    assert down.get("time") == "0.080"


def test_degraded_passes_and_a_refused_monitor_is_an_error_not_a_failure():
    cases = {element.get("name"): element for element in _junit(MIXED).iter("testcase")}
    assert cases["slow @ us-east"].find("failure") is None
    refused = cases["blocked @ us-east"]
    assert refused.find("failure") is None and refused.find("error").get("type") == "invalid"
    assert refused.get("time") == "0.000"


def test_characters_xml_cannot_carry_are_replaced_and_markup_is_escaped():
    nasty = case(status="down", message='body had \x00\x1b[31m <b>"x"</b> & more')
    text = junit_xml([Suite("a&b.yaml", [nasty])], STAMP)
    failure = ET.fromstring(text.encode()).find(".//failure")
    assert failure.get("message") == 'body had \ufffd\ufffd[31m <b>"x"</b> & more'
    assert ET.fromstring(text.encode()).find("testsuite").get("name") == "a&b.yaml"


def test_the_json_report_says_whether_the_run_passed_and_lists_every_case():
    document = json.loads(json_report(MIXED, STAMP))
    assert document["version"] == 1 and document["passed"] is False
    assert document["summary"] == {"total": 6, "passed": 3, "failed": 2, "invalid": 1}
    first = document["files"][0]["results"][1]
    assert first == {
        "key": "api",
        "name": "api monitor",
        "type": "http_request",
        "target": "https://example.com/health",
        "location": "eu-central",
        "status": "down",
        "passed": False,
        "message": "Received status code: 503, expected: 2xx",
        "responseTimeMs": 80,
        "statusCode": 200,
    }
    assert json.loads(json_report([Suite("a.yaml", [case()])], STAMP))["passed"] is True


def test_the_github_summary_lists_failures_first_in_a_markdown_table():
    text = github_summary(MIXED)
    assert text.startswith("## supercheck test: checks failed\n")
    rows = [line for line in text.splitlines() if line.startswith("| :")]
    assert [row.split(" | ")[1] for row in rows[:3]] == ["api", "db", "blocked"]
    assert rows[0].startswith("| :x: | api | eu-central | down | 80 ms |")
    assert "6 checks: 3 passed, 2 failed, 1 refused by the platform" in text
    assert github_summary([Suite("a.yaml", [case()])]).startswith("## supercheck test: all checks passed")


@pytest.mark.parametrize(
    "message, cell",
    [
        ("a | b", "a \\| b"),
        ("line one\nline two", "line one line two"),
        ("<script>x</script> & co", "&lt;script&gt;x&lt;/script&gt; &amp; co"),
    ],
)
def test_a_message_cannot_break_the_summary_table(message, cell):
    row = next(
        line for line in github_summary([Suite("a", [case(message=message)])]).splitlines() if "| :" in line
    )
    assert row.endswith(f"| {cell} |")
    assert row.count(" | ") == 5  # six cells: an escaped pipe starts no seventh


def test_the_human_table_lines_up_its_columns_and_ends_with_the_counts():
    text = human_table(MIXED)
    lines = text.splitlines()
    assert lines[0].split() == ["MONITOR", "LOCATION", "STATUS", "TIME", "MESSAGE"]
    status_column = lines[0].index("STATUS")
    assert all(
        line[status_column:].split()[0] in {"STATUS", "UP", "DOWN", "TIMEOUT", "DEGRADED", "INVALID"}
        for line in lines[1:7]
    )
    assert lines[-1] == "6 checks: 3 passed, 2 failed, 1 refused by the platform"


# The common JUnit schema (Jenkins' junit-10.xsd, from Ant's): the attributes and children each element may have.
JUNIT_ATTRIBUTES = {
    "testsuites": {"name", "time", "tests", "failures", "errors", "disabled"},
    "testsuite": {
        "name",
        "tests",
        "failures",
        "errors",
        "time",
        "disabled",
        "skipped",
        "timestamp",
        "hostname",
        "id",
        "package",
    },
    "testcase": {"name", "assertions", "time", "classname", "status"},
    "failure": {"message", "type"},
    "error": {"message", "type"},
    "system-out": set(),
}
JUNIT_CHILD_ORDER = {
    "testsuites": ["testsuite"],
    "testsuite": ["properties", "testcase", "system-out", "system-err"],
    "testcase": ["skipped", "error", "failure", "system-out", "system-err"],
    "failure": [],
    "error": [],
    "system-out": [],
}


def test_the_junit_report_keeps_to_the_common_schema():
    import re

    root = _junit(MIXED)
    for element in root.iter():
        assert set(element.attrib) <= JUNIT_ATTRIBUTES[element.tag], element.tag
        order = [JUNIT_CHILD_ORDER[element.tag].index(child.tag) for child in element]
        assert order == sorted(order), f"children of {element.tag} out of the schema's order"
        for name in ("time",):
            if name in element.attrib:
                assert re.fullmatch(r"\d+(\.\d+)?", element.get(name))
        for name in ("tests", "failures", "errors", "skipped", "id"):
            if name in element.attrib:
                assert element.get(name).isdigit()
    assert all(suite.get("name") and suite.get("tests") for suite in root.iter("testsuite"))
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", root.find("testsuite").get("timestamp"))
