"""The one table of check types: each is an async function `(job) -> CheckOutcome` with its config model.
Used by every check function (through shared/pipeline/check.py), the API's monitor validation and schedule's timeouts."""

from __future__ import annotations

import asyncio
import importlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import ValidationError

from shared.checks.base import retry_delays
from shared.errors import describe_error
from shared.models import FAILED_STATUSES, CheckJob, CheckOutcome

if TYPE_CHECKING:
    from shared.checks.base import CheckConfig

CheckFn = Callable[[CheckJob], Awaitable[CheckOutcome]]


@dataclass(frozen=True)
class CheckType:
    """A check type names the module of its check function and config model, imported on first use: a function
    then loads only the checks it runs or validates (check-port never loads the browser runner or the HTTP
    client; routing a stream to its function needs no check module)."""

    name: str
    module: str
    run_name: str
    config_name: str
    function: str  # the OpenFaaS function that executes it
    # Most jobs the connector hands the function at once; browser journeys take minutes each.
    max_batch: int | None = None

    @property
    def run(self) -> CheckFn:
        return getattr(importlib.import_module(self.module), self.run_name)

    @property
    def config_model(self) -> type[CheckConfig]:
        return getattr(importlib.import_module(self.module), self.config_name)


CHECK_TYPES: dict[str, CheckType] = {
    "http_request": CheckType("http_request", "shared.checks.http", "check_http", "HttpConfig", "check-http"),
    "website": CheckType("website", "shared.checks.http", "check_http", "WebsiteConfig", "check-http"),
    "ping_host": CheckType("ping_host", "shared.checks.ping", "check_ping", "PingConfig", "check-ping"),
    "port_check": CheckType("port_check", "shared.checks.port", "check_port", "PortConfig", "check-port"),
    "dns": CheckType("dns", "shared.checks.dns", "check_dns", "DnsConfig", "check-dns"),
    "synthetic_test": CheckType(
        "synthetic_test",
        "shared.synthetic.check",
        "check_synthetic",
        "SyntheticConfig",
        "check-synthetic",
        max_batch=2,
    ),
}

# Slack the caller gives a check beyond its own timeout before declaring it hung.
_HARD_TIMEOUT_SLACK_SECONDS = 5.0


def configured_timeout(check_type: str, config: dict) -> float:
    """How long a check of this stored config may run (its timeout, plus e.g. a ping's send interval)."""
    return CHECK_TYPES[check_type].config_model.budget_seconds(config)


def time_allowed(job: CheckJob) -> float:
    """How long the caller lets a job's check run before declaring it hung: its budget and the slack."""
    return configured_timeout(job.type, job.config) + _HARD_TIMEOUT_SLACK_SECONDS


def _invalid_config(error: ValidationError) -> CheckOutcome:
    first = error.errors()[0]
    field = ".".join(str(part) for part in first["loc"])
    where = "target" if field == "target" else f"config.{field}"
    return CheckOutcome(status="error", message=f"Invalid monitor config: {where}: {describe_error(first)}")


async def run_check(job: CheckJob, limit: float | None = None) -> CheckOutcome:
    """Owns what every check shares: the hard timeout (at most `limit` seconds, if given), total timing, retries
    (config.retry: a failed attempt is tried again after its wait while the time allowed holds another), and
    turning crashes into results. With retries configured, details["attempts"] lists every attempt."""
    check_type = CHECK_TYPES[job.type]
    allowed = time_allowed(job) if limit is None else min(time_allowed(job), limit)
    ends_at = time.perf_counter() + allowed
    delays = retry_delays(job.config.get("retry")) if isinstance(job.config.get("retry"), dict) else []
    one_attempt = _attempt_seconds(job) + _HARD_TIMEOUT_SLACK_SECONDS
    outcome, retryable = await _attempt(check_type, job, min(one_attempt, allowed))
    attempts = [outcome]
    for delay in delays:
        if not retryable or outcome.status not in FAILED_STATUSES:
            break
        if ends_at - time.perf_counter() - delay <= 0:
            break  # no room for another attempt inside the time allowed: report what we have
        await asyncio.sleep(delay)
        outcome, retryable = await _attempt(check_type, job, min(one_attempt, ends_at - time.perf_counter()))
        attempts.append(outcome)
    if delays:
        outcome.details = {
            **outcome.details,
            "attempts": [_attempt_record(n, a) for n, a in enumerate(attempts, 1)],
        }
    return outcome


def _attempt_seconds(job: CheckJob) -> float:
    model = CHECK_TYPES[job.type].config_model
    measure = getattr(model, "attempt_seconds", model.budget_seconds)
    return measure(job.config)


def _attempt_record(number: int, outcome: CheckOutcome) -> dict:
    failed = outcome.status in FAILED_STATUSES
    return {
        "attempt": number,
        "status": outcome.status,
        "responseTimeMs": outcome.response_time_ms,
        "error": outcome.message if failed else None,
    }


async def _attempt(check_type: CheckType, job: CheckJob, allowed: float) -> tuple[CheckOutcome, bool]:
    """One attempt and whether a failure of it is worth another: an invalid config fails every time."""
    started = time.perf_counter()
    retryable = True
    try:
        async with asyncio.timeout(max(allowed, 0)):
            outcome = await check_type.run(job)
    except TimeoutError:
        outcome = CheckOutcome(status="timeout", message="Check exceeded its timeout")
    except ValidationError as error:  # validated on save; this catches settings changed since then
        outcome, retryable = _invalid_config(error), False
    except Exception as error:  # a check must always produce a result, never lose the job
        outcome = CheckOutcome(status="error", message=f"Check failed: {type(error).__name__}: {error}")
    if outcome.response_time_ms is None:
        outcome.response_time_ms = round((time.perf_counter() - started) * 1000)
    return outcome, retryable
