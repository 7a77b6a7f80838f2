"""Synthetic tests, the pure parts: script rules, monitor config, secret masking, trace steps and the HTML report."""

from __future__ import annotations

import base64
import json
import uuid
import zipfile

import pytest
from pydantic import ValidationError

from shared.api.requests import MonitorCreate, ProjectVariableCreate, SyntheticTestCreate, SyntheticTestUpdate
from shared.errors import ApiError
from shared.handlers import parse
from shared.synthetic.browser import ChromiumNotFound, find_chromium
from shared.synthetic.check import SyntheticConfig
from shared.synthetic.models import script_problem
from shared.synthetic.report import (
    ReportFacts,
    Step,
    render_report,
    scrub,
    scrub_zip,
    steps_from_trace,
    truncate,
)
from shared.synthetic.runner import clean_environment, hard_timeout_seconds

GOOD_SCRIPT = "async def run(page, context, variables):\n    await page.goto('http://127.0.0.1/')\n"


@pytest.mark.parametrize(
    ("script", "problem"),
    [
        (GOOD_SCRIPT, None),
        ("async def run(page, *rest):\n    pass\n", None),
        ("import asyncio\n\nasync def run(page, context, variables, extra=None):\n    pass\n", None),
        ("def run(page, context, variables):\n    pass\n", "run() must be async"),
        ("async def run(page):\n    pass\n", "run() must take three arguments"),
        ("async def main(page, context, variables):\n    pass\n", "must define async def run"),
        ("async def run(page, context, variables)\n    pass\n", "line 1:"),
        ("x" * (256 * 1024 + 1), "larger than 256 KiB"),
    ],
)
def test_a_script_must_parse_and_define_async_run(script, problem):
    found = script_problem(script)
    if problem is None:
        assert found is None
    else:
        assert problem in found


def test_a_test_takes_its_script_as_text_or_base64_but_not_both():
    encoded = base64.b64encode(GOOD_SCRIPT.encode()).decode()
    assert SyntheticTestCreate(title="t", scriptBase64=encoded).script == GOOD_SCRIPT
    assert SyntheticTestCreate(title="t", script=GOOD_SCRIPT).script == GOOD_SCRIPT
    cases = [
        ({"title": "t"}, "script (or scriptBase64) is required"),
        ({"title": "t", "script": GOOD_SCRIPT, "scriptBase64": encoded}, "not both"),
        ({"title": "t", "scriptBase64": "not base64!"}, "scriptBase64: is not valid base64"),
        (
            {"title": "t", "scriptBase64": base64.b64encode(b"print(1)").decode()},
            "decoded script must define",
        ),
        ({"title": "t", "script": "def run(): pass"}, "script: run() must be async"),
        ({"title": "", "script": GOOD_SCRIPT}, "title:"),
    ]
    for body, message in cases:
        with pytest.raises(ApiError) as raised:
            parse(SyntheticTestCreate, body)
        assert message in raised.value.message, (body, raised.value.message)


def test_an_update_may_change_the_title_alone():
    update = SyntheticTestUpdate(title="renamed")
    assert (update.title, update.script) == ("renamed", None)


@pytest.mark.parametrize(
    ("name", "valid"),
    [("API_KEY", True), ("_x1", True), ("1abc", False), ("with-dash", False), ("", False), ("a" * 65, False)],
)
def test_variable_names_are_identifiers(name, valid):
    if valid:
        assert ProjectVariableCreate(name=name, value="v").name == name
    else:
        with pytest.raises(ValidationError):
            ProjectVariableCreate(name=name, value="v")


def monitor_body(**overrides) -> dict:
    return {"name": "Login", "type": "synthetic_test", "target": str(uuid.uuid4()), **overrides}


def test_a_synthetic_monitor_gets_the_seed_defaults_and_a_derived_hard_timeout():
    monitor = parse(MonitorCreate, monitor_body())
    assert monitor.frequency_minutes == 5
    assert monitor.config == {
        "testId": monitor.target,
        "playwrightOptions": {"headless": True, "timeout": 120_000, "retries": 0},
        "timeoutSeconds": 165,
    }
    # stored config validates again unchanged (updates re-validate the stored spec)
    again = parse(MonitorCreate, monitor_body(target=monitor.target, config=monitor.config))
    assert again.config == monitor.config


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"frequencyMinutes": 4}, "frequencyMinutes", "must be at least 5 for synthetic_test monitors"),
        ({"target": "login-test"}, "target", "must be the id (a UUID) of a synthetic test"),
        ({"config": {"testId": str(uuid.uuid4())}}, "config.testId", "must equal target"),
        (
            {"config": {"playwrightOptions": {"headless": False}}},
            "config.playwrightOptions.headless",
            "display",
        ),
        (
            {"config": {"playwrightOptions": {"timeout": 500}}},
            "config.playwrightOptions.timeout",
            "greater than or equal to 1000",
        ),
        (
            {"config": {"playwrightOptions": {"retries": 4}}},
            "config.playwrightOptions.retries",
            "less than or equal to 3",
        ),
        (
            {"config": {"playwrightOptions": {"timeout": 120_000, "retries": 2}}},
            "config.playwrightOptions",
            "at most 240000 ms",
        ),
        ({"config": {"browser": "firefox"}}, "config.browser", "is not a known field"),
    ],
)
def test_synthetic_monitor_config_errors_name_the_field(overrides, field, message):
    with pytest.raises(ApiError) as raised:
        parse(MonitorCreate, monitor_body(**overrides))
    assert raised.value.field == field
    assert message in raised.value.message


def test_other_monitor_types_keep_their_one_minute_minimum():
    monitor = parse(
        MonitorCreate,
        {"name": "h", "type": "http", "target": "http://monitored.example/", "frequencyMinutes": 1},
    )
    assert monitor.frequency_minutes == 1


def test_the_hard_timeout_covers_every_attempt_plus_start_up_and_artifacts():
    config = SyntheticConfig(target=str(uuid.uuid4()), playwrightOptions={"timeout": 60_000, "retries": 1})
    assert hard_timeout_seconds(60_000, 1) == 145
    assert config.timeout_seconds == 145 + 20


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("password is hunter2-x", "password is ****"),
        ('{"value":"quote\\"d"}', '{"value":"****"}'),  # the JSON-escaped form
        ("/login?p=a+b%26c", "/login?p=****"),  # the URL-encoded form
        ("nothing secret here", "nothing secret here"),
    ],
)
def test_scrub_masks_every_form_of_a_secret(text, expected):
    assert scrub(text, ["hunter2-x", 'quote"d', "a b&c", ""]) == expected


def test_scrub_zip_masks_text_members_and_leaves_images_alone(tmp_path):
    source, masked = tmp_path / "trace.zip", tmp_path / "masked.zip"
    with zipfile.ZipFile(source, "w") as archive:
        archive.writestr("trace.trace", '{"params":{"value":"hunter2-x"}}\n')
        archive.writestr("resources/abc.html", "<input value=hunter2-x>")
        archive.writestr("screencast/frame.jpeg", b"\xff\xd8hunter2-x")
    scrub_zip(source, masked, ["hunter2-x"])
    with zipfile.ZipFile(masked) as archive:
        assert archive.read("trace.trace") == b'{"params":{"value":"****"}}\n'
        assert archive.read("resources/abc.html") == b"<input value=****>"
        assert archive.read("screencast/frame.jpeg") == b"\xff\xd8hunter2-x"


def test_truncate_keeps_the_end():
    assert truncate("short") == "short"
    long = "a" * 600 + "the error"
    assert len(truncate(long)) == 500 and truncate(long).endswith("the error") and truncate(long)[0] == "…"


def test_steps_come_from_the_trace_in_call_order_with_errors():
    lines = [
        json.dumps({"type": "context-options", "version": 10}),
        json.dumps(
            {
                "type": "before",
                "callId": "c1",
                "startTime": 10.0,
                "class": "Frame",
                "method": "goto",
                "params": {"url": "http://127.0.0.1/login"},
            }
        ),
        json.dumps({"type": "after", "callId": "c1", "endTime": 42.5}),
        "not json",
        json.dumps(
            {
                "type": "before",
                "callId": "c2",
                "startTime": 50,
                "apiName": "page.click",
                "params": {"selector": "#nope"},
            }
        ),
        json.dumps(
            {
                "type": "after",
                "callId": "c2",
                "endTime": 1550,
                "error": {"error": {"message": "Timeout 1500ms exceeded."}},
            }
        ),
        json.dumps(
            {
                "type": "before",
                "callId": "c3",
                "startTime": 2000,
                "class": "Page",
                "method": "screenshot",
                "params": {},
            }
        ),
    ]
    assert steps_from_trace(lines) == [
        Step("Frame.goto", "http://127.0.0.1/login", 32.5, None),
        Step("page.click", "#nope", 1500.0, "Timeout 1500ms exceeded."),
        Step("Page.screenshot", "", None, None),
    ]


def test_the_report_escapes_everything_from_the_page():
    facts = ReportFacts(
        title="<Login>",
        status="failed",
        error="<script>alert(1)</script>",
        duration_ms=1234,
        attempts=1,
        steps=[Step("Frame.click", "button<b>", 3.0, "not <found>")],
        console_errors=[{"type": "console", "text": "<img src=x onerror=alert(2)>"}],
        failed_requests=[{"method": "GET", "url": "http://127.0.0.1/x?<y>", "failure": "HTTP 404"}],
        stdout="<out>",
        stderr="",
        artifact_links={"trace.zip": "http://s3/b/k/trace.zip?a=1&b=2"},
    )
    page = render_report(facts)
    assert "<script>alert" not in page and "<img src=x" not in page and "<Login>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert 'href="http://s3/b/k/trace.zip?a=1&amp;b=2"' in page
    assert "FAILED" in page and "1234 ms" in page and "button&lt;b&gt;" in page


def test_the_sandbox_environment_holds_nothing_of_the_functions(tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://secret@127.0.0.1/x")
    env = clean_environment(tmp_path)
    assert set(env) == {"PATH", "HOME", "TMPDIR", "LANG", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE"}
    assert env["HOME"] == str(tmp_path)


def test_a_configured_chromium_path_that_is_not_executable_is_reported_clearly(tmp_path):
    with pytest.raises(
        ChromiumNotFound, match="PLAYWRIGHT_CHROMIUM_PATH=/nowhere/chrome is not an executable"
    ):
        find_chromium("/nowhere/chrome")
    binary = tmp_path / "chrome"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    assert find_chromium(str(binary)) == str(binary)
