"""The synthetic_test check: load the test, run it in an isolated sandbox with its own browser, mask, report,
upload. Used by the check-synthetic function, through the check table."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import shutil
import uuid
import weakref
from pathlib import Path
from typing import ClassVar

from pydantic import Field, ValidationInfo, field_validator, model_validator

from shared.checks.base import ConfigModel
from shared.models import CheckJob, CheckOutcome
from shared.settings import Settings, get_settings
from shared.synthetic import isolation, store
from shared.synthetic.artifacts import ArtifactStore, run_prefix
from shared.synthetic.browser import ChromiumNotFound, find_chromium
from shared.synthetic.pool import SandboxPool
from shared.synthetic.report import (
    ReportFacts,
    render_report,
    scrub,
    scrub_zip,
    steps_from_trace_zip,
    truncate,
)
from shared.synthetic.runner import (
    SandboxLimits,
    SandboxOptions,
    SandboxResult,
    hard_timeout_seconds,
    run_in_sandbox,
)

DEFAULT_TIMEOUT_MS = 120_000
MAX_TOTAL_TIMEOUT_MS = 240_000
UPLOAD_SLACK_SECONDS = 20
STATUS_BY_RESULT = {"passed": "up", "failed": "down", "timeout": "timeout", "error": "error"}
REPORT_FILE, ERRORS_FILE = "report.html", "errors.json"
log = logging.getLogger(__name__)
_reported_browser_sandbox: set[str] = set()


class PlaywrightOptions(ConfigModel):
    headless: bool = True
    timeout: int = Field(
        default=DEFAULT_TIMEOUT_MS, ge=1_000, le=300_000, description="milliseconds per attempt"
    )
    retries: int = Field(default=0, ge=0, le=3)

    @field_validator("headless")
    @classmethod
    def _headless_only(cls, headless: bool) -> bool:
        if not headless:
            raise ValueError("must be true: check functions run without a display")
        return headless

    @model_validator(mode="after")
    def _fits_one_call(self) -> PlaywrightOptions:
        # Every attempt must fit in one function call (the connector and gateway wait about 5 minutes).
        if self.timeout * (self.retries + 1) > MAX_TOTAL_TIMEOUT_MS:
            raise ValueError(f"timeout × (retries + 1) must be at most {MAX_TOTAL_TIMEOUT_MS} ms")
        return self


def _uuid_text(value: str) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise ValueError("must be the id (a UUID) of a synthetic test") from None


def _check_timeout_seconds(options: PlaywrightOptions) -> int:
    return math.ceil(hard_timeout_seconds(options.timeout, options.retries)) + UPLOAD_SLACK_SECONDS


class SyntheticConfig(ConfigModel):
    """`target` is the test id (as in the seed); `testId`, if given, must match it."""

    # Playwright journeys take seconds to minutes; running them more often than this would overlap.
    min_frequency_minutes: ClassVar[int] = 5

    target: str
    test_id: str | None = None
    test_title: str | None = Field(default=None, max_length=200)
    playwright_options: PlaywrightOptions = Field(default_factory=PlaywrightOptions)
    # Derived from playwrightOptions (any given value is replaced): the check table's hard timeout for this job.
    timeout_seconds: int = _check_timeout_seconds(PlaywrightOptions())

    @field_validator("target")
    @classmethod
    def _target_is_test_id(cls, target: str) -> str:
        return _uuid_text(target)

    @field_validator("test_id")
    @classmethod
    def _same_as_target(cls, test_id: str | None, info: ValidationInfo) -> str | None:
        if test_id is None:
            return None
        test_id = _uuid_text(test_id)
        if "target" in info.data and test_id != info.data["target"]:
            raise ValueError("must equal target (both name the synthetic test)")
        return test_id

    @classmethod
    def budget_seconds(cls, config: dict) -> float:
        """The check table's hard timeout for a stored config: every attempt, start-up, artifacts, upload."""
        options = config.get("playwrightOptions") or {}
        return float(
            _check_timeout_seconds(
                PlaywrightOptions.model_construct(
                    timeout=options.get("timeout", DEFAULT_TIMEOUT_MS), retries=options.get("retries", 0)
                )
            )
        )

    @model_validator(mode="after")
    def _derived(self) -> SyntheticConfig:
        self.test_id = self.target
        self.timeout_seconds = _check_timeout_seconds(self.playwright_options)
        return self


# Idle sandboxes kept (each bound to a project): as many as run at once.
_pool = SandboxPool(max_idle=lambda: get_settings().synthetic_concurrency)
_slots_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


def _sandbox_slots() -> asyncio.Semaphore:
    """Bounds concurrent scripts per function process: each is a Python, a Node driver and browser tabs."""
    loop = asyncio.get_running_loop()
    if loop not in _slots_by_loop:
        _slots_by_loop[loop] = asyncio.Semaphore(get_settings().synthetic_concurrency)
    return _slots_by_loop[loop]


def _sandbox_options(settings: Settings) -> SandboxOptions:
    """Raises ChromiumNotFound, or PermissionError when scripts may not run here (no isolation, not allowed)."""
    chromium = find_chromium(settings.playwright_chromium_path)
    available = isolation.available()
    if not available.available and not isolation.unisolated_allowed():
        raise PermissionError(available.why_unavailable())
    return SandboxOptions(
        limits=SandboxLimits(
            # Per process, and the same for every job so a standby fits any: the wall-clock timeout is tighter.
            cpu_seconds=math.ceil(hard_timeout_seconds(MAX_TOTAL_TIMEOUT_MS, 0)),
            memory_mb=settings.synthetic_memory_limit_mb,
        ),
        chromium=chromium,
        isolation=available if available.available else None,
    )


async def check_synthetic(job: CheckJob) -> CheckOutcome:
    config = SyntheticConfig.model_validate({**job.config, "target": job.target})
    test = await store.load_runnable_test(uuid.UUID(config.test_id), job.project_id, job.monitor_id)
    if test is None:
        return CheckOutcome(
            status="error",
            message=f"Synthetic test {config.test_id} does not exist in this monitor's project",
            details={"testId": config.test_id, "testTitle": config.test_title},
        )
    options = config.playwright_options
    try:
        sandbox_options = _sandbox_options(get_settings())
    except (ChromiumNotFound, PermissionError) as error:
        return CheckOutcome(
            status="error", message=str(error), details={"testId": config.test_id, "testTitle": test.title}
        )
    async with _sandbox_slots():
        sandbox = await _pool.take(sandbox_options, test.project_id)
        try:
            result = await run_in_sandbox(
                sandbox,
                script=test.script,
                variables=test.variables,
                timeout_ms=options.timeout,
                retries=options.retries,
                trace_screenshots=get_settings().synthetic_trace_screenshots,
            )
        finally:
            _pool.give_back(sandbox)
    _report_browser_sandbox(result.chromium_sandbox)
    try:
        return await _outcome(job, test, result, ArtifactStore.from_settings(get_settings()))
    finally:
        shutil.rmtree(result.folder, ignore_errors=True)


def _report_browser_sandbox(state: str | None) -> None:
    """Logged once per reason: Chromium without its own sandbox is weaker, and the operator should know why."""
    if state and state != "on" and state not in _reported_browser_sandbox:
        _reported_browser_sandbox.add(state)
        log.warning("synthetic scripts' Chromium runs without its own sandbox: %s", state)


def _verdict(result: SandboxResult) -> tuple[str, str | None]:
    """A connection the proxy refused fails the check, whatever the script made of it, and says why."""
    if not result.blocked:
        return result.status, result.error
    error = result.blocked[0]
    if result.error:
        error = f"{error} (the script then failed: {result.error})"
    return "failed", error


async def _outcome(
    job: CheckJob, test: store.RunnableTest, result: SandboxResult, artifacts: ArtifactStore | None
) -> CheckOutcome:
    secrets = test.secrets
    result.status, result.error = _verdict(result)
    error = scrub(result.error, secrets) if result.error else None
    stdout, stderr = scrub(result.stdout, secrets), scrub(result.stderr, secrets)
    console_errors = json.loads(scrub(json.dumps(result.console_errors), secrets))
    failed_requests = json.loads(scrub(json.dumps(result.failed_requests), secrets))
    status = STATUS_BY_RESULT.get(result.status, "error")
    details: dict = {
        "testId": str(test.id),
        "testTitle": test.title,
        "testType": "browser",
        "attempts": result.attempts,
        "executionSummary": truncate(stdout),
        "executionErrors": truncate(stderr),
        "consoleErrors": len(console_errors),
        "failedRequests": len(failed_requests),
        "reportUrl": None,
    }
    if result.blocked:
        details["blockedRequests"] = [truncate(scrub(message, secrets)) for message in result.blocked]
    if error:
        details["errorMessage"] = truncate(error)

    outbox = result.folder / "outbox"
    outbox.mkdir()
    files: list[Path] = []
    if result.trace:
        scrub_zip(result.trace, outbox / result.trace.name, secrets)
        files.append(outbox / result.trace.name)
    if result.screenshot:
        files.append(result.screenshot.rename(outbox / result.screenshot.name))
    (outbox / ERRORS_FILE).write_text(
        json.dumps({"consoleErrors": console_errors, "failedRequests": failed_requests}, indent=1)
    )
    prefix = run_prefix(job.monitor_id, job.run_id, job.location)
    links = {path.name: artifacts.url_for(f"{prefix}/{path.name}") for path in files} if artifacts else {}
    if artifacts:
        links[ERRORS_FILE] = artifacts.url_for(f"{prefix}/{ERRORS_FILE}")
    report = render_report(
        ReportFacts(
            title=test.title,
            status=result.status,
            error=error,
            duration_ms=result.duration_ms,
            attempts=result.attempts,
            steps=steps_from_trace_zip(outbox / "trace.zip"),
            console_errors=console_errors,
            failed_requests=failed_requests,
            stdout=stdout[-20_000:],
            stderr=stderr[-20_000:],
            artifact_links=links,
        )
    )
    (outbox / REPORT_FILE).write_text(report)
    files += [outbox / REPORT_FILE, outbox / ERRORS_FILE]
    if artifacts is None:
        details["artifactsSkipped"] = "S3_BUCKET is not set"
    else:
        try:
            urls = await asyncio.to_thread(artifacts.upload, prefix, files)
            details["reportUrl"] = urls[REPORT_FILE]
            details["artifacts"] = urls
        except Exception as upload_error:  # the verdict stands without its artifacts
            details["artifactsError"] = truncate(f"{type(upload_error).__name__}: {upload_error}")
    message = {
        "up": "Test execution successful",
        "down": f"Test execution failed: {error}",
        "timeout": f"Test timed out: {error}",
    }.get(status, f"Test could not run: {error}")
    return CheckOutcome(
        status=status, message=truncate(message), response_time_ms=result.duration_ms, details=details
    )
