"""HTTP request and website checks: configs validated on save, facts gathered, then judged by pure functions.
Used by the check-http function, through the check table."""

from __future__ import annotations

import asyncio
import json
import re
import ssl
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import httpx
from cryptography.exceptions import InvalidTag
from pydantic import Field, ValidationInfo, field_validator, model_validator

from shared.checks import body_budget, certificates
from shared.checks.base import CheckConfig, ConfigModel
from shared.checks.body_budget import BodyOverBudget
from shared.checks.credentials import (
    basic_auth_header,
    header_field,
    is_sensitive_header,
    redact,
    reveal,
    seal,
    sealed_secret,
    sealing_of,
)
from shared.checks.fetch import (
    EXCERPT_BYTES,
    Exchange,
    HttpFacts,
    PhaseTimer,
    TooManyRedirects,
    fetch,
    ssl_error_of,
)
from shared.checks.spec import TRIAL_LOCATION  # a trial leaves no certificate note behind
from shared.models import CheckJob, CheckOutcome
from shared.rules.matchers import (
    DEFAULT_STATUS_SPEC,
    json_path_verdict,
    keyword_verdict,
    parse_json_path_assertion,
    parse_status_spec,
    status_matches,
)
from shared.security import CredentialKeyError, is_encrypted
from shared.ssrf import BlockedTarget, UnresolvableTarget, check_url_target

MAX_HEADER_BYTES = 8 * 1024
MAX_BODY_CHARS = 1024 * 1024
EXCERPT_CHARS = 300
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_HEADER_VALUE_FORBIDDEN = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_CLIENT_MANAGED_HEADERS = {"host", "content-length", "transfer-encoding", "connection"}


class AuthConfig(ConfigModel):
    type: Literal["none", "basic", "bearer"] = "none"
    username: str | None = Field(default=None, max_length=256)
    password: sealed_secret("config.auth.password") = None
    token: sealed_secret("config.auth.token") = None

    @model_validator(mode="after")
    def _fields_fit_type(self) -> AuthConfig:
        if self.type == "basic":
            if not self.username or not self.password:
                raise ValueError("basic auth needs a username and a password")
            if ":" in self.username or _HEADER_VALUE_FORBIDDEN.search(self.username):
                raise ValueError("username must not contain ':' or control characters")
            self.token = None
        elif self.type == "bearer":
            if not self.token:
                raise ValueError("bearer auth needs a token")
            self.username = self.password = None
        else:
            self.username = self.password = self.token = None
        return self


class _HttpCommon(CheckConfig):
    expected_status_codes: str = DEFAULT_STATUS_SPEC
    keyword_in_body: str | None = Field(default=None, min_length=1, max_length=1000)
    keyword_in_body_should_be_present: bool = True
    auth: AuthConfig | None = None
    enable_ssl_check: bool = False
    ssl_days_until_expiration_warning: int = Field(default=certificates.DEFAULT_WARNING_DAYS, ge=1, le=365)
    degraded_after_ms: int | None = Field(default=None, ge=1, le=300_000)
    max_redirects: int = Field(default=5, ge=0, le=20)
    max_response_size_mb: int = Field(default=10, ge=1, le=100)

    @field_validator("target")
    @classmethod
    def _http_url(cls, target: str) -> str:
        check_url_target(target)
        return target

    @field_validator("expected_status_codes")
    @classmethod
    def _valid_spec(cls, spec: str) -> str:
        parse_status_spec(spec)
        return spec.strip() or DEFAULT_STATUS_SPEC


class WebsiteConfig(_HttpCommon):
    """A GET expecting 2xx, with keyword, basic auth and the SSL certificate check (on by default)."""

    expected_status_codes: str = "2xx"
    enable_ssl_check: bool = True

    @field_validator("auth")
    @classmethod
    def _basic_only(cls, auth: AuthConfig | None) -> AuthConfig | None:
        if auth and auth.type == "bearer":
            raise ValueError("website monitors support basic auth only; use http_request for bearer tokens")
        return auth

    @property
    def method(self) -> str:
        return "GET"

    @property
    def headers(self) -> dict[str, str]:
        return {}

    @property
    def body(self) -> None:
        return None

    @property
    def json_path_assertion(self) -> None:
        return None


class HttpConfig(_HttpCommon):
    """Any method, headers and body; the SSL check is opt-in (`enableSslCheck`)."""

    method: Literal["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"] = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    body: str | None = Field(default=None, max_length=MAX_BODY_CHARS)
    json_path_assertion: str | None = Field(default=None, max_length=1000)

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, method: Any) -> Any:
        return method.upper() if isinstance(method, str) else method

    @field_validator("headers")
    @classmethod
    def _valid_headers(cls, headers: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        size = 0
        for name, value in headers.items():
            if not _TOKEN.match(name):
                raise ValueError(f"'{name[:60]}' is not a valid header name")
            if name.lower() in _CLIENT_MANAGED_HEADERS:
                raise ValueError(f"'{name}' is set by the client and cannot be overridden")
            if _HEADER_VALUE_FORBIDDEN.search(value):
                raise ValueError(f"the value of '{name}' contains CR, LF or another control character")
            size += len(name.encode()) + 4 + (0 if is_encrypted(value) else len(value.encode()))
        if size > MAX_HEADER_BYTES:
            raise ValueError(f"headers total {size} bytes; at most {MAX_HEADER_BYTES} bytes are allowed")
        sealing = sealing_of(info)
        return {
            name: seal(value, header_field(name), sealing) if is_sensitive_header(name) else value
            for name, value in headers.items()
        }

    @field_validator("body", mode="before")
    @classmethod
    def _blank_is_none(cls, body: Any) -> Any:
        return None if body == "" else body

    @field_validator("json_path_assertion")
    @classmethod
    def _valid_assertion(cls, text: str | None) -> str | None:
        if text is not None:
            parse_json_path_assertion(text)
        return text

    @field_validator("body")
    @classmethod
    def _body_fits_method(cls, body: str | None, info: ValidationInfo) -> str | None:
        method = info.data.get("method")
        if body is not None and method in ("GET", "HEAD"):
            raise ValueError(f"a {method} request cannot carry a body; choose POST, PUT or PATCH")
        return body


def detect_content_type(body: str) -> str:
    """JSON when the body parses as a JSON object or array, text otherwise."""
    try:
        if isinstance(json.loads(body), dict | list):
            return "application/json"
    except ValueError:
        pass
    return "text/plain; charset=utf-8"


@dataclass
class Judgement:
    status: str
    message: str
    warnings: list[str] = field(default_factory=list)


def judge_response(facts: HttpFacts, config: WebsiteConfig, elapsed_ms: int) -> Judgement:
    """Status first; keyword and JSON path only once the status passed; then the degraded threshold."""
    spec = config.expected_status_codes
    if not status_matches(facts.status_code, parse_status_spec(spec)):
        return Judgement("down", f"Received status code: {facts.status_code}, expected: {spec}")
    cap_note = f" (read only the first {config.max_response_size_mb} MB)" if facts.body_truncated else ""
    if config.keyword_in_body or config.json_path_assertion:
        text = facts.text()
        failure = None
        if config.keyword_in_body:
            failure = keyword_verdict(text, config.keyword_in_body, config.keyword_in_body_should_be_present)
        if failure is None and config.json_path_assertion:
            failure = json_path_verdict(text, parse_json_path_assertion(config.json_path_assertion))
        if failure:
            return Judgement("down", failure + cap_note)
    if config.degraded_after_ms and elapsed_ms > config.degraded_after_ms:
        return Judgement(
            "degraded", f"Response took {elapsed_ms} ms, over the {config.degraded_after_ms} ms threshold"
        )
    return Judgement("up", f"Received status code: {facts.status_code}" + cap_note)


def build_exchange(config: WebsiteConfig, project_id: uuid.UUID | None) -> tuple[Exchange, list[str]]:
    """The request to send, with credentials revealed; also every secret, to scrub from what we report.

    project_id: the monitor's project; a ciphertext sealed for another project does not decrypt (InvalidTag).
    """
    headers = {
        name: reveal(value, project_id, header_field(name)) if is_sensitive_header(name) else value
        for name, value in config.headers.items()
    }
    secrets = [value for name, value in headers.items() if is_sensitive_header(name)]
    auth = config.auth
    if auth and auth.type == "basic":
        password = reveal(auth.password, project_id, "config.auth.password")
        headers["Authorization"] = basic_auth_header(auth.username, password)
        secrets += [password, headers["Authorization"].split(" ", 1)[1]]
    elif auth and auth.type == "bearer":
        token = reveal(auth.token, project_id, "config.auth.token")
        headers["Authorization"] = f"Bearer {token}"
        secrets.append(token)
    content = config.body.encode() if config.body is not None else None
    if content is not None and not any(name.lower() == "content-type" for name in headers):
        headers["Content-Type"] = detect_content_type(config.body)
    exchange = Exchange(
        method=config.method,
        url=check_url_target(config.target),
        headers=headers,
        content=content,
        timeout_seconds=config.timeout_seconds,
        max_redirects=config.max_redirects,
        max_body_bytes=config.max_response_size_mb * 1024 * 1024,
        origin_bound_headers=frozenset(n.lower() for n in headers if is_sensitive_header(n)),
        keeps_body=bool(config.keyword_in_body or config.json_path_assertion),
    )
    return exchange, secrets


CONFIG_MODELS: dict[str, type[_HttpCommon]] = {"http_request": HttpConfig, "website": WebsiteConfig}


def _describe_http_error(error: httpx.HTTPError) -> str:
    cause = error.__cause__ or error.__context__
    text = str(error) or (str(cause) if cause else "") or type(error).__name__
    return f"{type(error).__name__}: {text}"


async def _failed_handshake(config: _HttpCommon, error: httpx.HTTPError, details: dict) -> tuple[str, str]:
    ssl_error = ssl_error_of(error)
    if not isinstance(ssl_error, ssl.SSLCertVerificationError):
        return "down", f"TLS handshake failed: {ssl_error.reason or ssl_error}"
    if config.enable_ssl_check and error._request is not None:  # report the facts of the rejected certificate
        url = error.request.url
        der = await certificates.fetch_unverified_certificate(
            url.host, url.port or 443, error.request.extensions.get("sni_hostname", ""), within_seconds=5
        )
        if der:
            details["ssl"] = certificates.certificate_facts(der, certificates.now_utc()).as_details()
    return "down", certificates.describe_verification_error(ssl_error)


async def _judge_certificate(
    job: CheckJob, config: _HttpCommon, der: bytes, details: dict
) -> Judgement | None:
    """The adaptive certificate check: runs when due, notes when it ran, and may turn the verdict down."""
    now = certificates.now_utc()
    warning_days = config.ssl_days_until_expiration_warning
    noted = job.location != TRIAL_LOCATION
    last = await certificates.load_state(job.monitor_id, job.location) if noted else None
    if not certificates.certificate_check_due(last, warning_days, now):
        details["ssl"] = {"checked": False, "lastCheckedAt": last["checkedAt"]}
        return None
    facts = certificates.certificate_facts(der, now)
    details["ssl"] = {"checked": True, **facts.as_details()}
    if noted:
        await certificates.save_state(job.monitor_id, job.location, facts.days_until_expiry, now)
    valid_from = datetime.fromisoformat(facts.valid_from)
    status, message, warning = certificates.certificate_verdict(facts, valid_from, now, warning_days)
    if warning:
        details["ssl"]["expiringSoon"] = True
    return Judgement(status, message or "", [warning] if warning else [])


async def _judge_fetched(
    job: CheckJob,
    config: WebsiteConfig,
    facts: HttpFacts,
    elapsed_ms: int,
    secrets: list[str],
    timer: PhaseTimer,
    details: dict,
) -> CheckOutcome:
    """The outcome of a complete response: its assertions, then its certificate when asked for."""
    judgement = judge_response(facts, config, elapsed_ms)
    details.update(
        finalUrl=str(facts.url),
        address=facts.address,
        httpVersion=facts.http_version,
        redirects=facts.redirects,
        bodyBytes=facts.body_bytes,
        bodyTruncated=facts.body_truncated,
    )
    if config.enable_ssl_check and facts.peer_certificate:
        verdict = await _judge_certificate(job, config, facts.peer_certificate, details)
        if verdict and verdict.status == "down":
            judgement = verdict
        elif verdict and verdict.warnings:
            judgement.warnings += verdict.warnings
            judgement.message = "; ".join([judgement.message, *verdict.warnings])
    if judgement.status != "up":
        details["bodyExcerpt"] = redact(facts.text(EXCERPT_BYTES)[:EXCERPT_CHARS], secrets)
    if judgement.warnings:
        details["warnings"] = judgement.warnings
    return CheckOutcome(
        status=judgement.status,
        message=redact(judgement.message, secrets),
        status_code=facts.status_code,
        response_time_ms=elapsed_ms,
        details=details,
        **timer.as_outcome_fields(),
    )


async def check_http(job: CheckJob) -> CheckOutcome:
    config = CONFIG_MODELS[job.type].model_validate({**job.config, "target": job.target})
    try:
        exchange, secrets = build_exchange(config, job.project_id)
    except (CredentialKeyError, ValueError, InvalidTag) as error:
        return CheckOutcome(
            status="error", message=f"Stored credentials cannot be decrypted ({type(error).__name__})"
        )
    async with body_budget.process_budget().lease() as lease:
        exchange.lease = lease
        return await _fetch_and_judge(job, config, exchange, secrets)


async def _fetch_and_judge(
    job: CheckJob, config: WebsiteConfig, exchange: Exchange, secrets: list[str]
) -> CheckOutcome:
    timer, details = PhaseTimer(), {}
    started = time.perf_counter()
    try:
        async with asyncio.timeout(config.timeout_seconds):
            facts = await fetch(exchange, timer)
    except TimeoutError:
        status, message = "timeout", f"No complete response within {config.timeout_seconds}s"
    except BlockedTarget as error:
        status, message = "error", f"Target blocked: {error}"
    except BodyOverBudget as error:
        status, message = "error", f"Response body not read: {error}"
    except (UnresolvableTarget, TooManyRedirects) as error:
        status, message = "down", str(error)
    except httpx.TimeoutException as error:
        status, message = "timeout", f"Timed out after {config.timeout_seconds}s ({type(error).__name__})"
    except httpx.HTTPError as error:
        if ssl_error_of(error):
            status, message = await _failed_handshake(config, error, details)
        else:
            status, message = "down", f"Request failed: {_describe_http_error(error)}"
    else:
        elapsed_ms = _elapsed_ms(started, exchange)
        return await _judge_fetched(job, config, facts, elapsed_ms, secrets, timer, details)
    return CheckOutcome(
        status=status,
        message=redact(message, secrets),
        response_time_ms=_elapsed_ms(started, exchange),
        details=details,
        **timer.as_outcome_fields(),
    )


def _elapsed_ms(started: float, exchange: Exchange) -> int:
    """The response time, without the time spent waiting for room in the process's body buffer."""
    waited = exchange.lease.waited_seconds if exchange.lease else 0.0
    return round((time.perf_counter() - started - waited) * 1000)
