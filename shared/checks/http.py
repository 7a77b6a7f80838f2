"""HTTP and website checks: gather the response facts, then judge them with pure matchers."""

from __future__ import annotations

import ssl
import time
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from shared.checks.matchers import DEFAULT_STATUS_SPEC, parse_status_spec, status_matches
from shared.models import CheckJob, CheckOutcome

USER_AGENT = "supercheck-faas/0.1 (+uptime monitor)"
_TLS_CONTEXT = ssl.create_default_context()  # built once; creating one per check costs milliseconds


class HttpConfig(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    target: str
    expected_status_codes: str = DEFAULT_STATUS_SPEC
    timeout_seconds: int = Field(default=30, ge=1, le=300)

    @field_validator("target")
    @classmethod
    def _http_url(cls, target: str) -> str:
        parts = urlsplit(target)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        return target

    @field_validator("expected_status_codes")
    @classmethod
    def _valid_spec(cls, spec: str) -> str:
        parse_status_spec(spec)
        return spec.strip() or DEFAULT_STATUS_SPEC


class WebsiteConfig(HttpConfig):
    pass


def judge_http(status_code: int, status_spec: str) -> tuple[str, str]:
    if status_matches(status_code, parse_status_spec(status_spec)):
        return "up", f"Received status code: {status_code}"
    return "down", f"Received status code: {status_code}, expected: {status_spec}"


async def check_http(job: CheckJob) -> CheckOutcome:
    config = HttpConfig.model_validate({**job.config, "target": job.target})
    started = time.perf_counter()
    try:
        async with httpx.AsyncClient(
            verify=_TLS_CONTEXT,
            timeout=config.timeout_seconds,
            follow_redirects=True,
            headers={"User-Agent": USER_AGENT},
        ) as client:
            response = await client.get(job.target)
    except httpx.TimeoutException as error:
        return CheckOutcome(
            status="timeout", message=f"Timed out after {config.timeout_seconds}s ({type(error).__name__})"
        )
    except httpx.HTTPError as error:
        return CheckOutcome(status="down", message=f"Request failed: {error or type(error).__name__}")
    elapsed_ms = round((time.perf_counter() - started) * 1000)
    status, message = judge_http(response.status_code, config.expected_status_codes)
    return CheckOutcome(
        status=status,
        message=message,
        status_code=response.status_code,
        response_time_ms=elapsed_ms,
        details={"finalUrl": str(response.url), "httpVersion": response.http_version},
    )
