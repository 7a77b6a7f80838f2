"""What `supercheck test` reports, built as text by pure functions: the human table, JUnit XML, JSON and the
GitHub job summary (Markdown). Writing them to files is the command's business (shared/cli/testing.py)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass

from shared.models import FAILED_STATUSES

# The platform refused to run the monitor as given (a target it blocks, a synthetic test it does not have):
# a problem of the file, reported beside the checks that ran (exit 2, not 1).
INVALID = "invalid"
REPORT_VERSION = 1
# XML 1.0 cannot carry these characters at all, escaped or not; a check's message may (a body excerpt).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@dataclass(frozen=True)
class CaseResult:
    """One monitor of the file checked once in one location."""

    key: str
    name: str
    type: str
    target: str  # masked (shared.security.mask_target): reports end up as public CI artifacts
    location: str
    status: str  # a check status (up, down, degraded, error, timeout), or INVALID
    message: str
    response_time_ms: int | None = None
    status_code: int | None = None

    @property
    def failed(self) -> bool:
        return self.status in FAILED_STATUSES

    @property
    def invalid(self) -> bool:
        return self.status == INVALID

    @property
    def passed(self) -> bool:
        return not (self.failed or self.invalid)

    @property
    def seconds(self) -> float:
        return (self.response_time_ms or 0) / 1000


@dataclass(frozen=True)
class Suite:
    """The results of one file."""

    file: str
    cases: Sequence[CaseResult]

    @property
    def failures(self) -> int:
        return sum(case.failed for case in self.cases)

    @property
    def errors(self) -> int:
        return sum(case.invalid for case in self.cases)

    @property
    def seconds(self) -> float:
        return sum(case.seconds for case in self.cases)


def _counts(suites: Sequence[Suite]) -> tuple[int, int, int]:
    cases = [case for suite in suites for case in suite.cases]
    return len(cases), sum(case.failed for case in cases), sum(case.invalid for case in cases)


def summary_line(suites: Sequence[Suite]) -> str:
    total, failed, invalid = _counts(suites)
    parts = [f"{total - failed - invalid} passed", f"{failed} failed"]
    if invalid:
        parts.append(f"{invalid} refused by the platform")
    return f"{total} check{'s' if total != 1 else ''}: " + ", ".join(parts)


def _milliseconds(case: CaseResult) -> str:
    return f"{case.response_time_ms} ms" if case.response_time_ms is not None else "-"


def human_table(suites: Sequence[Suite]) -> str:
    """Columns padded to their widest cell; the message last, whole, so nothing a reader needs is cut."""
    header = ("MONITOR", "LOCATION", "STATUS", "TIME", "MESSAGE")
    rows = [
        (case.key, case.location, case.status.upper(), _milliseconds(case), case.message.replace("\n", " "))
        for suite in suites
        for case in suite.cases
    ]
    widths = [max(len(row[column]) for row in [header, *rows]) for column in range(4)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True)) + "  " + row[4]
        for row in [header, *rows]
    ]
    return "\n".join(line.rstrip() for line in lines) + "\n\n" + summary_line(suites) + "\n"


def _xml_text(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


def _testcase(suite: Suite, case: CaseResult) -> ET.Element:
    element = ET.Element(
        "testcase",
        {"classname": _xml_text(suite.file), "name": _xml_text(f"{case.key} @ {case.location}")},
    )
    element.set("time", f"{case.seconds:.3f}")
    if case.failed or case.invalid:
        tag = "failure" if case.failed else "error"
        problem = ET.SubElement(element, tag, {"message": _xml_text(case.message), "type": case.status})
        problem.text = _xml_text(
            f"{case.name} ({case.type} {case.target}) at {case.location}: {case.message}"
        )
    details = f"status={case.status} statusCode={case.status_code} target={case.target}"
    ET.SubElement(element, "system-out").text = _xml_text(details)
    return element


def junit_xml(suites: Sequence[Suite], timestamp: str) -> str:
    """JUnit XML as CI servers read it (the Ant/Jenkins schema): one testsuite per file, one testcase per
    monitor and location; a failed check is a <failure>, a monitor the platform refused an <error>.

    timestamp: ISO 8601 without a zone offset, as the schema's testsuite/@timestamp wants it.
    """
    total, failed, invalid = _counts(suites)
    root = ET.Element(
        "testsuites",
        {
            "name": "supercheck test",
            "tests": str(total),
            "failures": str(failed),
            "errors": str(invalid),
            "time": f"{sum(suite.seconds for suite in suites):.3f}",
        },
    )
    for position, suite in enumerate(suites):
        element = ET.SubElement(
            root,
            "testsuite",
            {
                "name": _xml_text(suite.file),
                "id": str(position),
                "tests": str(len(suite.cases)),
                "failures": str(suite.failures),
                "errors": str(suite.errors),
                "skipped": "0",
                "time": f"{suite.seconds:.3f}",
                "timestamp": timestamp,
                "hostname": "supercheck",
            },
        )
        element.extend(_testcase(suite, case) for case in suite.cases)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _case_json(case: CaseResult) -> dict:
    return {
        "key": case.key,
        "name": case.name,
        "type": case.type,
        "target": case.target,
        "location": case.location,
        "status": case.status,
        "passed": case.passed,
        "message": case.message,
        "responseTimeMs": case.response_time_ms,
        "statusCode": case.status_code,
    }


def json_report(suites: Sequence[Suite], timestamp: str) -> str:
    total, failed, invalid = _counts(suites)
    document = {
        "version": REPORT_VERSION,
        "timestamp": timestamp,
        "passed": failed == 0 and invalid == 0,
        "summary": {"total": total, "passed": total - failed - invalid, "failed": failed, "invalid": invalid},
        "files": [
            {"file": suite.file, "results": [_case_json(case) for case in suite.cases]} for suite in suites
        ],
    }
    return json.dumps(document, indent=2) + "\n"


def _markdown_cell(text: str) -> str:
    """A table cell: a pipe would end it and a newline the row; < and & would start HTML."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return escaped.replace("|", "\\|").replace("\r", " ").replace("\n", " ")


_MARK = {True: ":white_check_mark:", False: ":x:"}


def github_summary(suites: Sequence[Suite]) -> str:
    """A job summary in GitHub-flavoured Markdown, appended to $GITHUB_STEP_SUMMARY; failures first."""
    total, failed, invalid = _counts(suites)
    verdict = "all checks passed" if failed == invalid == 0 else "checks failed"
    lines = [f"## supercheck test: {verdict}", "", summary_line(suites), ""]
    for suite in suites:
        lines += [
            f"### `{_markdown_cell(suite.file)}`",
            "",
            "| | Monitor | Location | Status | Time | Message |",
            "|---|---|---|---|---|---|",
        ]
        for case in sorted(suite.cases, key=lambda case: case.passed):
            cells = [case.key, case.location, case.status, _milliseconds(case), case.message]
            lines.append(f"| {_MARK[case.passed]} | " + " | ".join(_markdown_cell(c) for c in cells) + " |")
        lines.append("")
    return "\n".join(lines) + "\n"
