"""`supercheck test`, `trigger` and `import` against the real local stack and loopback targets: their exit codes
(0, 1, 2, 3), the JUnit/JSON/GitHub reports, and the real console script run as a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from shared.cli.main import cli
from tests.check_servers import RouteServer, closed_port
from tests.factories import make_project

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
VENV_BIN = Path("/work/main/.venv/bin")


@pytest.fixture
def target():
    server = RouteServer().start()
    yield server
    server.stop()


@pytest.fixture
def key(stack, clean, aio, internal_targets):
    """A project's key; loopback targets allowed here too, since the CLI validates the file as the API does."""
    return make_project(aio, "cli")


def supercheck(stack, key: str, *args: str, env: dict | None = None):
    runner = CliRunner()
    environment = {"SUPERCHECK_URL": stack.gateway_url, "SUPERCHECK_API_KEY": key, **(env or {})}
    return runner.invoke(cli, list(args), env=environment, catch_exceptions=False)


def write_file(tmp_path: Path, monitors: list[dict]) -> str:
    path = tmp_path / "supercheck.yaml"
    path.write_text(yaml.safe_dump({"monitors": monitors}, sort_keys=False))
    return str(path)


def http_monitor(key: str, url: str, **extra) -> dict:
    return {"key": key, "name": f"{key} check", "type": "http_request", "target": url, **extra}


def test_a_failing_target_exits_1_with_one_junit_failure_and_stores_nothing(
    stack, key, target, tmp_path, clean
):
    file = write_file(
        tmp_path,
        [
            http_monitor("home", target.url("/"), tags=["smoke"]),
            http_monitor("broken", target.url("/status/503"), tags=["smoke"]),
        ],
    )
    junit, report, summary = tmp_path / "junit.xml", tmp_path / "report.json", tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    result = supercheck(
        stack,
        key,
        "test",
        "-f",
        file,
        "--junit",
        str(junit),
        "--json",
        str(report),
        "--github",
        env={"GITHUB_STEP_SUMMARY": str(summary)},
    )
    assert result.exit_code == 1, result.output
    assert "2 checks: 1 passed, 1 failed" in result.output
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite.get("name") == file and suite.get("tests") == "2" and suite.get("failures") == "1"
    cases = {case.get("name"): case for case in suite.findall("testcase")}
    assert set(cases) == {"home @ direct", "broken @ direct"}
    assert cases["home @ direct"].find("failure") is None
    failure = cases["broken @ direct"].find("failure")
    assert failure.get("message") == "Received status code: 503, expected: 200-299"
    assert float(cases["broken @ direct"].get("time")) > 0
    document = json.loads(report.read_text())
    assert document["passed"] is False and document["summary"]["failed"] == 1
    text = summary.read_text()
    assert text.startswith("earlier step\n## supercheck test: checks failed"), "appended, not overwritten"
    assert clean.sql("select count(*) from monitors") == [(0,)]
    assert clean.sql("select count(*) from monitor_results") == [(0,)]


def test_passing_checks_exit_0_at_each_location_asked_and_tags_select(stack, key, target, tmp_path):
    file = write_file(
        tmp_path,
        [
            http_monitor(
                "home", target.url("/json"), tags=["smoke"], config={"jsonPathAssertion": '$.status == "ok"'}
            ),
            http_monitor("broken", target.url("/status/500"), tags=["nightly"]),
        ],
    )
    junit = tmp_path / "junit.xml"
    result = supercheck(
        stack,
        key,
        "test",
        "-f",
        file,
        "--tag",
        "smoke",
        "--location",
        "us-east",
        "--location",
        "eu-central",
        "--junit",
        str(junit),
    )
    assert result.exit_code == 0, result.output
    names = [case.get("name") for case in ET.parse(junit).getroot().iter("testcase")]
    assert names == ["home @ us-east", "home @ eu-central"]
    assert supercheck(stack, key, "test", "-f", file, "--tag", "absent").exit_code == 2


def test_a_location_the_platform_lacks_is_an_invalid_file_not_a_failed_check(stack, key, target, tmp_path):
    file = write_file(tmp_path, [http_monitor("home", target.url("/"))])
    result = supercheck(stack, key, "test", "-f", file, "--location", "mars")
    assert result.exit_code == 2, result.output
    assert "INVALID" in result.output and "'mars' is not a location here" in result.output


def _deployed(stack, key, name: str, url: str, tag: str) -> str:
    import httpx

    response = httpx.post(
        f"{stack.gateway_url}/function/api/monitors",
        json={"name": name, "type": "http", "target": url, "enabled": False, "tags": [tag]},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_trigger_wait_exits_0_when_the_runs_end_up_and_1_when_one_ends_down(stack, key, target):
    _deployed(stack, key, "Storefront", target.url("/"), "smoke")
    down_id = _deployed(stack, key, "Payments", target.url("/status/502"), "payments")
    up = supercheck(
        stack, key, "trigger", "--tag", "smoke", "--wait", "--timeout", "120", "--poll-interval", "0.5"
    )
    assert up.exit_code == 0, up.output
    assert "Storefront: up" in up.output and "1 run ended up" in up.output
    down = supercheck(
        stack, key, "trigger", "--id", down_id, "--wait", "--timeout", "120", "--poll-interval", "0.5"
    )
    assert down.exit_code == 1, down.output
    assert "Payments: down" in down.output and "us-east down: Received status code: 502" in down.output
    started = supercheck(stack, key, "trigger", "--tag", "smoke")
    assert started.exit_code == 0 and "started 1 run: Storefront" in started.output
    assert supercheck(stack, key, "trigger", "--tag", "nobody").exit_code == 2


def test_a_trigger_timeout_names_the_runs_still_open(stack, key, target):
    _deployed(stack, key, "Slow", target.url("/slow?seconds=8"), "slow")
    result = supercheck(
        stack, key, "trigger", "--tag", "slow", "--wait", "--timeout", "1", "--poll-interval", "0.2"
    )
    assert result.exit_code == 1, result.output
    assert "timed out waiting for: Slow (run " in result.output


def test_an_unreachable_server_or_a_refused_key_is_exit_3(stack, key, target, tmp_path):
    file = write_file(tmp_path, [http_monitor("home", target.url("/"))])
    closed = {"SUPERCHECK_URL": f"http://127.0.0.1:{closed_port()}"}
    assert supercheck(stack, key, "test", "-f", file, env=closed).exit_code == 3
    assert supercheck(stack, key, "trigger", "--tag", "smoke", "--wait", env=closed).exit_code == 3
    refused = supercheck(stack, "sck_not-a-key", "trigger", "--tag", "smoke")
    assert refused.exit_code == 3 and "authentication failed" in refused.output


def _console_script(tmp_path: Path) -> str:
    """The installed `supercheck` entry point; where the shared venv has not been reinstalled since the script
    was declared, the same wrapper pip writes for pyproject's [project.scripts] entry."""
    installed = shutil.which("supercheck", path=str(VENV_BIN))
    if installed:
        return installed
    import tomllib

    module, function = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"][
        "supercheck"
    ].split(":")
    wrapper = tmp_path / "supercheck"
    wrapper.write_text(
        f"#!{sys.executable}\nimport sys\nfrom {module} import {function}\nsys.exit({function}())\n"
    )
    wrapper.chmod(0o755)
    return str(wrapper)


@pytest.mark.parametrize("tool, fixture", [("gatus", "gatus-config.yaml"), ("kuma", "kuma-backup.json")])
def test_the_console_script_imports_a_file_that_validates(tool, fixture, tmp_path):
    script = _console_script(tmp_path)
    env = {**os.environ, "PATH": f"{VENV_BIN}:{os.environ['PATH']}", "PYTHONPATH": str(ROOT)}
    out = tmp_path / "supercheck.yaml"
    imported = subprocess.run(
        [script, "import", tool, str(FIXTURES / fixture), "-o", str(out)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert imported.returncode == 0, imported.stderr
    assert "not imported" in imported.stderr, "what did not convert is listed on stderr"
    assert "7 monitors converted" in imported.stderr
    validated = subprocess.run([script, "validate", "-f", str(out)], env=env, capture_output=True, text=True)
    assert validated.returncode == 0, validated.stdout + validated.stderr
    assert "valid (7 monitors" in validated.stdout
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    refused = subprocess.run([script, "import", tool, str(garbage)], env=env, capture_output=True, text=True)
    assert refused.returncode == 2


def test_an_unset_variable_is_exit_2_before_anything_is_sent(tmp_path, monkeypatch):
    monkeypatch.delenv("SC_TEST_UNSET_TOKEN", raising=False)
    file = write_file(
        tmp_path,
        [
            http_monitor(
                "home",
                "https://a.example.net/",
                config={"headers": {"Authorization": "${SC_TEST_UNSET_TOKEN}"}},
            )
        ],
    )
    result = CliRunner().invoke(
        cli,
        ["test", "-f", file],
        env={"SUPERCHECK_URL": f"http://127.0.0.1:{closed_port()}"},
        catch_exceptions=False,
    )
    assert result.exit_code == 2, result.output  # 3 would mean it tried the (closed) server
    assert "${SC_TEST_UNSET_TOKEN} is not set" in result.output
