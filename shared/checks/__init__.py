"""The one table of check types: each is an async function `(job) -> CheckOutcome` with its config model."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from pydantic import BaseModel

from shared.checks.http import HttpConfig, WebsiteConfig, check_http
from shared.models import CheckJob, CheckOutcome

CheckFn = Callable[[CheckJob], Awaitable[CheckOutcome]]


@dataclass(frozen=True)
class CheckType:
    name: str
    run: CheckFn
    config_model: type[BaseModel]
    function: str  # the OpenFaaS function that executes it


CHECK_TYPES: dict[str, CheckType] = {
    "http_request": CheckType("http_request", check_http, HttpConfig, "check-http"),
    "website": CheckType("website", check_http, WebsiteConfig, "check-http"),
}

# Slack the caller gives a check beyond its own timeout before declaring it hung.
_HARD_TIMEOUT_SLACK_SECONDS = 5.0


def configured_timeout(check_type: str, config: dict) -> float:
    return float(
        config.get("timeoutSeconds")
        or CHECK_TYPES[check_type].config_model.model_fields["timeout_seconds"].default
    )


async def run_check(job: CheckJob) -> CheckOutcome:
    """Owns what every check shares: the hard timeout, total timing, and turning crashes into results."""
    check_type = CHECK_TYPES[job.type]
    started = time.perf_counter()
    try:
        async with asyncio.timeout(configured_timeout(job.type, job.config) + _HARD_TIMEOUT_SLACK_SECONDS):
            outcome = await check_type.run(job)
    except TimeoutError:
        outcome = CheckOutcome(status="timeout", message="Check exceeded its timeout")
    except Exception as error:  # a check must always produce a result, never lose the job
        outcome = CheckOutcome(status="error", message=f"Check failed: {type(error).__name__}: {error}")
    if outcome.response_time_ms is None:
        outcome.response_time_ms = round((time.perf_counter() - started) * 1000)
    return outcome
