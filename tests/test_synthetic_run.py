"""Synthetic checks for real: headless Chromium against loopback pages, the sandbox, Postgres, and S3 through moto."""

from __future__ import annotations

import io
import json
import os
import shutil
import threading
import uuid
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import httpx
import pytest
from functions_framework.aio import create_asgi_app

from openfaas.local.stack import PROJECT_ROOT
from shared.api.requests import ProjectVariableCreate, SyntheticTestCreate
from shared.checks import run_check
from shared.models import CheckJob
from shared.settings import get_settings, reset_settings_cache
from shared.synthetic import store
from shared.synthetic.artifacts import ArtifactStore
from tests.factories import SYNTHETIC_BUCKET as BUCKET
from tests.factories import default_project, signed
from tests.factories import stored_synthetic_objects as stored_objects

# The journeys' sites are on loopback; tests/test_synthetic_isolation.py runs them with internal targets refused.
pytestmark = pytest.mark.usefixtures("internal_targets")

PASSWORD = "s3cr3t-Pa55w0rd"


class LoginSite:
    """A login form, a dashboard that logs a console error and requests a missing image, and a flaky page."""

    def __init__(self) -> None:
        self.flaky_calls = 0
        site = self

        class Handler(BaseHTTPRequestHandler):
            def _send(self, status: int, body: str, headers: dict | None = None) -> None:
                payload = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:
                if self.path == "/login":
                    self._send(
                        200,
                        """<form method=post action=/login><input id=username name=username>
                        <input id=password name=password type=password><button id=submit>Sign in</button></form>""",
                    )
                elif self.path == "/dashboard":
                    self._send(
                        200,
                        """<h1 id=welcome>Welcome, alice</h1><img src="/missing.png">
                        <script>console.error("widget failed to load")</script>""",
                    )
                elif self.path == "/flaky":
                    site.flaky_calls += 1
                    self._send(500 if site.flaky_calls == 1 else 200, f"<p id=call>{site.flaky_calls}</p>")
                else:
                    self._send(404, "not found")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode())
                if form.get("username") == ["alice"] and form.get("password") == [PASSWORD]:
                    self._send(303, "", {"Location": "/dashboard"})
                else:
                    self._send(200, "<p id=error>Invalid credentials</p>")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def site() -> Iterator[LoginSite]:
    served = LoginSite()
    yield served
    served.stop()


@pytest.fixture
def project_id(clean):
    return default_project(clean)


@pytest.fixture
def variables(aio, project_id, site):
    for body in (
        ProjectVariableCreate(name="BASE_URL", value=site.url),
        ProjectVariableCreate(name="USERNAME", value="alice"),
        ProjectVariableCreate(name="PASSWORD", value=PASSWORD, is_secret=True),
    ):
        aio.run(store.create_variable(project_id, body))


def create_test(aio, project_id, script: str, title: str = "Login journey") -> str:
    return str(aio.run(store.create_test(project_id, SyntheticTestCreate(title=title, script=script))).id)


def job_for(test_id: str, monitor_id: uuid.UUID | None = None, **options) -> CheckJob:
    now = datetime.now(UTC)
    return CheckJob(
        run_id=uuid.uuid4(),
        monitor_id=monitor_id or uuid.uuid4(),
        location="us-east",
        type="synthetic_test",
        target=test_id,
        config={"playwrightOptions": options} if options else {},
        scheduled_at=now,
        deadline=now,
    )


def run(aio, job: CheckJob):
    return aio.run(run_check(job), timeout=180)


LOGIN_SCRIPT = """
async def run(page, context, variables):
    await page.goto(variables["BASE_URL"] + "login")
    await page.fill("#username", variables["USERNAME"])
    await page.fill("#password", variables["PASSWORD"])
    await page.click("#submit")
    await page.wait_for_selector("#welcome")
    assert await page.text_content("#welcome") == "Welcome, alice"
    print("signed in as alice with", variables["PASSWORD"])
"""


def test_a_login_journey_passes_and_leaves_readable_artifacts_with_secrets_masked(
    aio, s3, project_id, variables
):
    test_id = create_test(aio, project_id, LOGIN_SCRIPT)
    job = job_for(test_id)
    outcome = run(aio, job)

    assert outcome.status == "up", outcome
    assert outcome.message == "Test execution successful"
    assert outcome.response_time_ms > 0
    details = outcome.details
    assert details["testTitle"] == "Login journey" and details["testId"] == test_id
    assert details["executionSummary"] == "signed in as alice with ****"
    assert details["consoleErrors"] >= 1 and details["failedRequests"] >= 1

    objects = stored_objects(s3, job)
    assert set(objects) == {"trace.zip", "screenshot.png", "report.html", "errors.json"}
    prefix = f"{os.environ['S3_ENDPOINT_URL']}/{BUCKET}/synthetic/{job.monitor_id}/{job.run_id}/us-east"
    assert details["reportUrl"] == f"{prefix}/report.html"
    assert details["artifacts"]["trace.zip"] == f"{prefix}/trace.zip"
    # The bucket is private: readers get a presigned link (the API can hand these out).
    assert httpx.get(details["reportUrl"]).status_code == 403
    store_ = ArtifactStore.from_settings(get_settings())
    report = httpx.get(store_.presigned_url(store_.key_of(details["reportUrl"])))
    assert report.status_code == 200 and "Login journey" in report.text
    assert report.headers["content-type"].startswith("text/html")

    assert objects["screenshot.png"].startswith(b"\x89PNG\r\n\x1a\n")
    with zipfile.ZipFile(io.BytesIO(objects["trace.zip"])) as trace:
        assert "trace.trace" in trace.namelist()
        for name in trace.namelist():
            if not name.endswith((".jpeg", ".png")):
                assert PASSWORD.encode() not in trace.read(name), name
    errors = json.loads(objects["errors.json"])
    assert "widget failed to load" in [e["text"] for e in errors["consoleErrors"]]
    assert ("missing.png", "HTTP 404") in [
        (r["url"].rsplit("/", 1)[-1], r["failure"]) for r in errors["failedRequests"]
    ]
    html = objects["report.html"].decode()
    assert "PASSED" in html and "Frame.goto" in html and "#password" in html and "Frame.click" in html
    for text in (html, json.dumps(outcome.model_dump())):
        assert PASSWORD not in text


def test_a_missing_element_is_down_with_the_error_and_a_screenshot(aio, s3, project_id, variables):
    script = """
async def run(page, context, variables):
    await page.goto(variables["BASE_URL"] + "login")
    await page.click("#forgot-password", timeout=1500)
"""
    job = job_for(create_test(aio, project_id, script))
    outcome = run(aio, job)

    assert outcome.status == "down"
    assert outcome.message.startswith("Test execution failed: ")
    assert "Timeout 1500ms exceeded" in outcome.details["errorMessage"]
    assert "#forgot-password" in outcome.details["errorMessage"]
    assert (
        'line 4, in run\n    await page.click("#forgot-password", timeout=1500)'
        in outcome.details["executionErrors"]
    )
    objects = stored_objects(s3, job)
    assert objects["screenshot.png"].startswith(b"\x89PNG")
    assert "FAILED" in objects["report.html"].decode()


def test_an_element_that_never_appears_is_down_before_the_script_runs_out_of_time(
    aio, s3, project_id, variables
):
    """No timeout of its own on the click: the default action timeout must end it before the script's budget."""
    script = """
async def run(page, context, variables):
    await page.goto(variables["BASE_URL"] + "login")
    await page.click("#forgot-password")
"""
    outcome = run(aio, job_for(create_test(aio, project_id, script), timeout=4000))
    assert outcome.status == "down", outcome.message
    assert "#forgot-password" in outcome.details["errorMessage"]
    assert "Timeout 3000ms exceeded" in outcome.details["errorMessage"]


@pytest.mark.parametrize(
    ("script_ms", "action_ms"),
    [(30_000, 27_000), (120_000, 30_000), (4_000, 3_000), (1_000, 500), (10_000, 9_000), (300_000, 30_000)],
)
def test_an_action_always_gives_up_before_its_script(script_ms, action_ms):
    from shared.synthetic.sandbox import action_timeout_ms

    assert action_timeout_ms(script_ms) == action_ms
    assert action_timeout_ms(script_ms) < script_ms


def test_a_script_past_its_timeout_is_a_timeout_and_still_has_its_artifacts(aio, s3, project_id, variables):
    script = """
import asyncio

async def run(page, context, variables):
    await page.goto(variables["BASE_URL"] + "login")
    await asyncio.sleep(60)
"""
    job = job_for(create_test(aio, project_id, script), timeout=2000)
    outcome = run(aio, job)

    assert outcome.status == "timeout"
    assert "Script exceeded its timeout of 2000 ms" in outcome.message
    assert {"trace.zip", "screenshot.png", "report.html"} <= set(stored_objects(s3, job))


def test_a_script_that_raises_is_down_with_its_exception(aio, s3, project_id, variables):
    script = """
async def run(page, context, variables):
    await page.goto(variables["BASE_URL"] + "login")
    print("typing", variables["PASSWORD"])
    raise RuntimeError("cart total was 0 for " + variables["PASSWORD"])
"""
    outcome = run(aio, job_for(create_test(aio, project_id, script)))

    assert outcome.status == "down"
    assert outcome.message == "Test execution failed: RuntimeError: cart total was 0 for ****"
    assert outcome.details["executionSummary"] == "typing ****"
    assert "RuntimeError" in outcome.details["executionErrors"]
    assert PASSWORD not in json.dumps(outcome.model_dump())


def test_retries_run_the_script_again_in_a_fresh_context(aio, s3, project_id, variables, site):
    script = """
async def run(page, context, variables):
    assert await context.cookies() == [], "cookies leaked from an earlier attempt"
    await context.add_cookies([{"name": "seen", "value": "1", "url": variables["BASE_URL"]}])
    response = await page.goto(variables["BASE_URL"] + "flaky")
    assert response.status == 200, f"status {response.status}"
"""
    outcome = run(aio, job_for(create_test(aio, project_id, script), retries=1))

    assert outcome.status == "up", outcome
    assert outcome.details["attempts"] == 2 and site.flaky_calls == 2
    assert "attempt 1 failed: AssertionError: status 500" in outcome.details["executionErrors"]


def test_checks_never_share_a_browser_nor_a_context(aio, s3, project_id, variables):
    writer = """
async def run(page, context, variables):
    await page.goto(variables["BASE_URL"] + "login")
    await page.evaluate("localStorage.setItem('left', 'behind')")
"""
    reader = """
async def run(page, context, variables):
    await page.goto(variables["BASE_URL"] + "login")
    assert await page.evaluate("localStorage.getItem('left')") is None
    assert len(context.pages) == 1
"""
    assert run(aio, job_for(create_test(aio, project_id, writer, "writer"))).status == "up"
    outcome = run(aio, job_for(create_test(aio, project_id, reader, "reader")))
    assert outcome.status == "up", outcome


def test_the_script_sees_none_of_the_functions_environment(aio, s3, project_id, variables):
    assert os.environ.get("DATABASE_URL") and os.environ.get("SC_CREDENTIAL_KEY")
    script = """
import os

async def run(page, context, variables):
    print(",".join(sorted(os.environ)))
"""
    outcome = run(aio, job_for(create_test(aio, project_id, script)))
    assert outcome.status == "up"
    assert (
        outcome.details["executionSummary"]
        == "HOME,LANG,PATH,PYTHONDONTWRITEBYTECODE,PYTHONUNBUFFERED,TMPDIR"
    )


def test_a_script_past_its_memory_limit_fails(aio, s3, project_id, variables):
    script = """
async def run(page, context, variables):
    hog = bytearray(8 * 1024 ** 3)
"""
    outcome = run(aio, job_for(create_test(aio, project_id, script)))
    assert outcome.status == "down"
    assert "MemoryError" in outcome.message


def test_a_script_that_blocks_its_event_loop_is_killed_at_the_hard_timeout(
    aio, s3, project_id, variables, monkeypatch
):
    monkeypatch.setattr("shared.synthetic.runner.STARTUP_AND_ARTIFACTS_SECONDS", 6)
    script = """
import time

async def run(page, context, variables):
    while True:
        time.sleep(0.1)
"""
    outcome = run(aio, job_for(create_test(aio, project_id, script), timeout=1000))
    assert outcome.status == "timeout"
    assert "Script killed after the hard timeout of 7s" in outcome.message


def test_a_test_of_another_project_is_not_run_for_a_monitor(aio, s3, clean, project_id):
    other = clean.sql("insert into projects (name) values ('other') returning id")[0][0]
    test_id = create_test(aio, other, "async def run(page, context, variables):\n    pass\n")
    monitor_id = clean.sql(
        """insert into monitors (project_id, name, type, target, frequency_minutes)
           values (%s, 'm', 'synthetic_test', %s, 5) returning id""",
        (project_id, test_id),
    )[0][0]
    outcome = run(aio, job_for(test_id, monitor_id))
    assert outcome.status == "error"
    assert "does not exist in this monitor's project" in outcome.message


def test_without_chromium_the_check_says_so(aio, s3, project_id, monkeypatch):
    test_id = create_test(aio, project_id, "async def run(page, context, variables):\n    pass\n")
    monkeypatch.setenv("PLAYWRIGHT_CHROMIUM_PATH", "/opt/no-such/chrome")
    reset_settings_cache()
    try:
        outcome = run(aio, job_for(test_id))
    finally:
        monkeypatch.delenv("PLAYWRIGHT_CHROMIUM_PATH")
        reset_settings_cache()
    assert outcome.status == "error"
    assert outcome.message.startswith(
        "PLAYWRIGHT_CHROMIUM_PATH=/opt/no-such/chrome is not an executable file"
    )


def test_without_a_bucket_the_check_runs_and_says_artifacts_were_not_kept(aio, s3, project_id, monkeypatch):
    test_id = create_test(aio, project_id, "async def run(page, context, variables):\n    pass\n")
    monkeypatch.delenv("S3_BUCKET")
    reset_settings_cache()
    try:
        outcome = run(aio, job_for(test_id))
    finally:
        monkeypatch.setenv("S3_BUCKET", BUCKET)
        reset_settings_cache()
    assert outcome.status == "up"
    assert outcome.details["reportUrl"] is None
    assert outcome.details["artifactsSkipped"] == "S3_BUCKET is not set"


def test_the_check_synthetic_function_runs_a_trial_through_its_http_app(aio, s3, project_id, variables):
    test_id = create_test(aio, project_id, LOGIN_SCRIPT)
    app = create_asgi_app(target="handle", source=str(PROJECT_ROOT / "functions/check_synthetic/main.py"))

    async def post(body):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway", timeout=120) as client:
            # signed, naming the project, as the API's trials are
            return await client.post(
                "/function/check-synthetic", **signed({**body, "projectId": str(project_id)})
            )

    response = aio.run(post({"type": "synthetic_test", "target": test_id}), timeout=180)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "up"
    assert response.json()["details"]["reportUrl"].endswith("/report.html")

    refused = aio.run(post({"type": "synthetic_test", "target": "not-a-test"}))
    assert refused.status_code == 400
    assert refused.json()["error"]["field"] == "target"


def test_a_script_past_its_cpu_limit_is_stopped(aio, infra, tmp_path):
    from shared.synthetic import isolation
    from shared.synthetic.browser import find_chromium
    from shared.synthetic.runner import SandboxLimits, SandboxOptions, run_in_sandbox, start_sandbox

    async def go():
        limits = SandboxLimits(cpu_seconds=3, memory_mb=1536)
        sandbox = await start_sandbox(SandboxOptions(limits, find_chromium(None), isolation.available()))
        try:
            return await run_in_sandbox(
                sandbox,
                script="async def run(page, context, variables):\n    while True:\n        pass\n",
                variables={},
                timeout_ms=60_000,
                retries=0,
            )
        finally:
            sandbox.discard()

    result = aio.run(go())
    shutil.rmtree(result.folder)
    assert (result.status, result.error) == ("error", "the script exceeded its CPU time limit")
