"""Notification providers: config validation, message building (pure), and delivery through Apprise."""

from __future__ import annotations

import asyncio
import html
import json
import logging
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Literal
from urllib.parse import quote, urlencode, urlsplit

from pydantic import Field, ValidationError, field_validator, model_validator

from shared import db, ssrf
from shared.errors import ApiError, FieldError, PrefixedValidationError
from shared.models import AlertEnvelope, ApiModel
from shared.redis import publish_live_events
from shared.security import key_ring, mask
from shared.settings import get_settings

log = logging.getLogger(__name__)
SEND_ATTEMPTS = 3
RETRY_BACKOFF_SECONDS = (0.5, 2.0)  # before the 2nd and 3rd attempt
WEBHOOK_TIMEOUT_SECONDS = (5.0, 10.0)  # connect, read
CLAIM_EXPIRY = "2 minutes"  # a 'sending' row older than this belongs to a crashed invocation
MAX_RECIPIENTS = 20


# --- provider configs: validated on save, encrypted at rest (shared/api/services/providers.py), masked on read ---------


def _check_destination(url: str) -> str:
    """SSRF rules (shared/ssrf.py) for where alerts go: the single call site for webhook and custom URLs."""
    return str(ssrf.check_url_target(url, allow_userinfo=True))


class WebhookConfig(ApiModel):
    url: str = Field(max_length=2048)
    # JSON with {{var}} placeholders (see TEMPLATE_VARIABLES); without one the body is every variable as JSON.
    template: str | None = Field(default=None, max_length=20_000)

    @field_validator("url")
    @classmethod
    def _safe_url(cls, url: str) -> str:
        _check_destination(url)
        return url

    @field_validator("template", mode="before")
    @classmethod
    def _json_template(cls, template: Any) -> Any:
        if isinstance(template, dict | list):
            template = json.dumps(template)
        if isinstance(template, str):
            try:
                json.loads(render_template(template, SAMPLE_VARIABLES, escape=_json_escape))
            except ValueError as error:
                raise ValueError(f"is not JSON once its {{{{variables}}}} are filled in ({error})") from None
        return template


class EmailConfig(ApiModel):
    smtp_host: str = Field(max_length=253)
    smtp_port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str | None = Field(default=None, max_length=320)
    password: str | None = Field(default=None, max_length=1024)
    sender: str = Field(alias="from", max_length=320)
    to: list[str] = Field(min_length=1, max_length=MAX_RECIPIENTS)

    @field_validator("smtp_host")
    @classmethod
    def _safe_host(cls, host: str) -> str:
        ssrf.check_hostname_syntax(host)
        ssrf.check_literal_host(host)
        return host

    @field_validator("sender")
    @classmethod
    def _sender_address(cls, address: str) -> str:
        return _email_address(address)

    @field_validator("to")
    @classmethod
    def _recipient_addresses(cls, addresses: list[str]) -> list[str]:
        cleaned = [_email_address(a) for a in addresses]
        if len({a.lower() for a in cleaned}) != len(cleaned):
            raise ValueError("recipients must not repeat")
        return cleaned

    @model_validator(mode="after")
    def _login_pair(self) -> EmailConfig:
        if bool(self.username) != bool(self.password):
            raise ValueError("username and password go together")
        return self


_EMAIL = re.compile(r"^[^@\s,;<>\"]+@[^@\s,;<>\"]+\.[^@\s,;<>\"]+$|^[^@\s,;<>\"]+@localhost$")


def _email_address(address: str) -> str:
    if not _EMAIL.match(address.strip()):
        raise ValueError(f"'{address}' is not an email address")
    return address.strip()


class ChatWebhookConfig(ApiModel):
    """Slack, Discord and Teams (Power Automate workflow) incoming-webhook URLs, as the service hands them out."""

    webhook_url: str = Field(max_length=2048)


class TelegramConfig(ApiModel):
    bot_token: str = Field(pattern=r"^\d{3,}:[A-Za-z0-9_-]{20,}$", max_length=200)
    chat_id: str = Field(pattern=r"^(-?\d{1,20}|@[A-Za-z0-9_]{4,64})$")


class AppriseConfig(ApiModel):
    """Any of Apprise's 100+ service URLs (ntfy://, pover://, mmosts://, ...)."""

    url: str = Field(max_length=4096)


PROVIDER_CONFIGS: dict[str, type[ApiModel]] = {
    "webhook": WebhookConfig,
    "email": EmailConfig,
    "slack": ChatWebhookConfig,
    "discord": ChatWebhookConfig,
    "teams": ChatWebhookConfig,
    "telegram": TelegramConfig,
    "apprise": AppriseConfig,
}
# The Apprise plugin a chat webhook URL must resolve to (Teams' Office 365 connectors are retired by Microsoft).
CHAT_PLUGINS = {"slack": {"NotifySlack"}, "discord": {"NotifyDiscord"}, "teams": {"NotifyWorkflows"}}
SERVICE_NAMES = {
    "slack": "Slack webhook",
    "discord": "Discord webhook",
    "teams": "Teams (Power Automate workflow)",
}
# Apprise's own http(s) services: their host is a destination that SSRF rules apply to.
APPRISE_HTTP_SCHEMES = {"json", "jsons", "xml", "xmls", "form", "forms"}


def validate_provider_config(provider_type: str, config: dict) -> dict:
    """The stored form of a provider's config; raises a ValueError naming the field (config.<field>)."""
    model = PROVIDER_CONFIGS.get(provider_type)
    if model is None:
        raise ValueError(
            f"type: unknown provider type '{provider_type}'; expected one of: {', '.join(PROVIDER_CONFIGS)}"
        )
    if not isinstance(config, dict):
        raise ValueError("config: must be an object")
    try:
        parsed = model.model_validate(config)
    except ValidationError as error:
        raise PrefixedValidationError(error, prefix=("config",)) from None
    stored = parsed.model_dump(by_alias=True, exclude_none=True)
    if provider_type in CHAT_PLUGINS:
        _require_plugin(
            stored["webhookUrl"],
            CHAT_PLUGINS[provider_type],
            "config.webhookUrl",
            SERVICE_NAMES[provider_type],
        )
    if provider_type == "apprise":
        _require_plugin(stored["url"], None, "config.url", None)
        parts = urlsplit(stored["url"])
        if parts.scheme.lower() in APPRISE_HTTP_SCHEMES:
            try:
                _check_destination(f"{'https' if parts.scheme.endswith('s') else 'http'}://{parts.netloc}/")
            except ValueError as error:
                raise FieldError("config.url", str(error)) from None
    return stored


def _require_plugin(url: str, plugin_names: set[str] | None, field_name: str, service: str | None) -> None:
    plugin = _apprise().Apprise.instantiate(url)
    if plugin is None or (plugin_names and type(plugin).__name__ not in plugin_names):
        what = f"a {service} URL" if service else "a URL that Apprise understands"
        raise FieldError(field_name, f"is not {what}")


_SECRET_KEYS = {"password", "botToken", "template"}
_URL_KEYS = {"url", "webhookUrl"}


def masked_config(config: dict) -> dict:
    """What API reads show: hosts and addresses stay readable, anything that could carry a token is masked."""
    masked: dict[str, Any] = {}
    for key, value in config.items():
        if key in _URL_KEYS and isinstance(value, str):
            masked[key] = _masked_url(value)
        elif key in _SECRET_KEYS and value:
            masked[key] = mask(str(value))
        else:
            masked[key] = value
    return masked


def _masked_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        rest = url[len(parts.scheme) + 3 :] if "://" in url else url
        return f"{parts.scheme}://{mask(rest)}"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    shown = f"{parts.scheme}://{parts.hostname or ''}{port}"
    hidden = parts.path + (f"?{parts.query}" if parts.query else "")
    return shown + (mask(hidden) if hidden.strip("/") else hidden)


def _secrets_in(config: Mapping[str, Any]) -> list[str]:
    """Substrings of a config that must never reach an error text: passwords, tokens, URL paths and queries."""
    found: list[str] = []
    for key, value in config.items():
        if not isinstance(value, str) or not value:
            continue
        if key in _SECRET_KEYS:
            found.append(value)
        if key in _URL_KEYS:
            parts = urlsplit(value)
            found += [p for p in re.split(r"[/?&=:@]", value.split("://", 1)[-1]) if len(p) >= 6]
            found += [p for p in (parts.password, parts.path.strip("/"), parts.query) if p and len(p) >= 6]
    return sorted(set(found), key=len, reverse=True)


def _redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "****")
    return text


# --- messages (pure) -------------------------------------------------------------------------------


TITLES = {
    "failure": "Monitor Down - {name}",
    "recovery": "Monitor Recovered - {name}",
    "ssl_expiring": "SSL Certificate Expiring - {name}",
    "ssl_expired": "SSL Certificate Expired - {name}",
    "test": "Test Notification - {name}",
}
TEMPLATE_VARIABLES = (
    "title",
    "message",
    "status",
    "monitorName",
    "target",
    "locationsDown",
    "responseTime",
    "time",
    "dedupKey",
    "eventAction",
)
SAMPLE_VARIABLES = {name: "x" for name in TEMPLATE_VARIABLES}
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_ACCENTS = {"failure": "#d92d20", "recovery": "#079455", "ssl_expiring": "#dc6803", "ssl_expired": "#d92d20"}


def _json_escape(value: str) -> str:
    return json.dumps(value)[1:-1]


def render_template(template: str, variables: Mapping[str, Any], escape: Callable[[str], str] = str) -> str:
    """{{name}} becomes the variable's value (None: empty); unknown names stay as written, for PagerDuty-style bodies."""

    def substitute(match: re.Match) -> str:
        name = match.group(1)
        if name not in variables:
            return match.group(0)
        value = variables[name]
        return escape("" if value is None else str(value))

    return _PLACEHOLDER.sub(substitute, template)


@dataclass(frozen=True)
class AlertMessage:
    title: str
    text: str
    html: str
    notify_type: str  # one of Apprise's NotifyType values: info, success, warning, failure
    variables: dict[str, Any] = field(default_factory=dict)


def _utc_iso(value: str | None) -> str:
    try:
        moment = datetime.fromisoformat(value) if value else datetime.now(UTC)
    except ValueError:
        moment = datetime.now(UTC)
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _details(kind: str, payload: Mapping[str, Any], time: str, link: str | None) -> list[tuple[str, str]]:
    """The rows every channel shows, in order: (label, value)."""
    down, total = payload.get("locationsDown", 0), payload.get("locationsTotal", 0)
    missing = payload.get("missingLocations") or []
    rows = [
        ("Project", payload.get("projectName") or ""),
        ("Monitor", payload.get("monitorName", "")),
        ("Type", payload.get("monitorType", "")),
        ("Status", str(payload.get("status", "")).upper()),
        (
            "Locations down",
            f"{down}/{total}" + (f" (no report from {', '.join(missing)})" if missing else ""),
        ),
        (
            "Response time",
            f"{payload['responseTimeMs']} ms" if payload.get("responseTimeMs") is not None else "",
        ),
        ("Target", payload.get("target", "")),
    ]
    if kind == "failure" and payload.get("reason"):
        rows.append(("Reason", payload["reason"]))
    if kind == "failure" and (payload.get("sequenceNumber") or 1) > 1:
        rows.append(("Reminder", f"{payload['sequenceNumber']} of 3; still down"))
    ssl = payload.get("ssl") or {}
    if kind.startswith("ssl"):
        days = ssl.get("daysUntilExpiry")
        left = "expired" if kind == "ssl_expired" else f"expires in {days} day{'s' if days != 1 else ''}"
        rows.append(("Certificate", left + (f" ({ssl['validTo']})" if ssl.get("validTo") else "")))
    rows += [("Time", time), ("Details", link or "")]
    return [(label, value) for label, value in rows if value not in ("", None)]


def build_message(
    kind: str,
    payload: Mapping[str, Any],
    custom_message: str | None = None,
    monitor_id: uuid.UUID | str | None = None,
    link: str | None = None,
) -> AlertMessage:
    """Title, plain text, HTML and template variables for one alert; customMessage replaces the default text."""
    name = payload.get("monitorName", "")
    title = TITLES[kind].format(name=name)
    time = _utc_iso(payload.get("time"))
    rows = _details(kind, payload, time, link)
    variables: dict[str, Any] = {
        "title": title,
        "status": payload.get("status", ""),
        "monitorName": name,
        "monitorType": payload.get("monitorType", ""),
        "projectName": payload.get("projectName") or "",
        "target": payload.get("target", ""),
        "locationsDown": f"{payload.get('locationsDown', 0)}/{payload.get('locationsTotal', 0)}",
        "responseTime": payload.get("responseTimeMs"),
        "time": time,
        "dedupKey": f"supercheck-{monitor_id}" + ("-ssl" if kind.startswith("ssl") else ""),
        "eventAction": "resolve" if kind == "recovery" else "trigger",
        "kind": kind,
        "link": link or "",
    }
    if custom_message:
        text = render_template(custom_message, variables)
        body_html = f"<p>{html.escape(text).replace(chr(10), '<br>')}</p>"
    else:
        text = "\n".join(f"{label}: {value}" for label, value in rows)
        body_html = _html_table(rows)
    variables["message"] = text
    notify_type = {"recovery": "success", "ssl_expiring": "warning", "test": "info"}.get(kind, "failure")
    return AlertMessage(
        title, text, _html_page(title, body_html, _ACCENTS.get(kind, "#444ce7"), link), notify_type, variables
    )


def _html_table(rows: list[tuple[str, str]]) -> str:
    # Rows of inline spans rather than a <table>: Apprise derives the plain-text part from this HTML, and
    # spans keep "Label: value" on one line there.
    return "".join(
        '<div style="padding:5px 0;font-size:14px;color:#101828">'
        f'<span style="display:inline-block;min-width:140px;color:#667085">{html.escape(label)}:</span> '
        f"<span>{_html_value(label, value)}</span></div>"
        for label, value in rows
    )


def _html_value(label: str, value: str) -> str:
    if label == "Details" and value.startswith(("http://", "https://")):
        return f'<a href="{html.escape(value, quote=True)}">{html.escape(value)}</a>'
    return html.escape(value)


def _html_page(title: str, body: str, accent: str, link: str | None) -> str:
    button = (
        f'<p style="margin:20px 0 0"><a href="{html.escape(link, quote=True)}" style="background:{accent};color:#fff;'
        f'padding:8px 14px;border-radius:6px;text-decoration:none">Open monitor</a></p>'
        if link
        else ""
    )
    return (
        '<!DOCTYPE html><html><body style="margin:0;padding:24px;background:#f9fafb;'
        'font-family:-apple-system,Segoe UI,Roboto,Helvetica,Arial,sans-serif">'
        f'<div style="max-width:600px;margin:0 auto;background:#fff;border-radius:8px;border-top:4px solid {accent};'
        'padding:20px 24px">'
        f'<h2 style="margin:0 0 16px;font-size:18px;color:{accent}">{html.escape(title)}</h2>'
        f"{body}{button}"
        '<p style="margin:24px 0 0;font-size:12px;color:#98a2b3">Sent by Supercheck</p>'
        "</div></body></html>"
    )


def webhook_body(config: Mapping[str, Any], message: AlertMessage) -> str:
    template = config.get("template")
    if template:
        return render_template(template, message.variables, escape=_json_escape)
    return json.dumps(message.variables)


# --- sending through Apprise -------------------------------------------------------------------------

# Each notify() call captures its own log at DEBUG (SMTP replies live there) for classify_failure(); those
# lines can carry service URLs, so they stay out of the process's log: we log our own redacted summary.
_apprise_log = logging.getLogger("apprise")
_apprise_log.setLevel(logging.DEBUG)
_apprise_log.propagate = False


@lru_cache(maxsize=1)
def _apprise():
    """Apprise loads on the first send through it or provider check, not with this module: every function
    imports the models here, and only alert and the API's provider endpoints send or validate. Its first use
    then imports all of its ~100 service plugins (about 300 ms and 25 MB)."""
    import apprise

    return apprise


def _post_webhook(url: str, body: str) -> Failure | None:
    """Generic webhooks: our own JSON body (a template's, or every variable), POSTed as Apprise's json:// would.

    Sent without Apprise, which would load every service plugin for a plain POST; the outcome reads as an
    Apprise log would, so classify_failure decides retries the same way for every channel.
    """
    import requests

    try:
        response = requests.post(
            url,
            data=body.encode(),
            headers={"Content-Type": "application/json", "User-Agent": "Supercheck-Alerts/1"},
            timeout=WEBHOOK_TIMEOUT_SECONDS,
            allow_redirects=False,
        )
    except requests.Timeout:
        return classify_failure([("WARNING", "Webhook request timed out.")])
    except requests.RequestException as error:
        return classify_failure(
            [("WARNING", f"A Connection error occurred sending the webhook ({type(error).__name__}).")]
        )
    if not 200 <= response.status_code < 300:
        return classify_failure(
            [
                (
                    "WARNING",
                    f"Failed to send webhook notification: {response.reason}, error={response.status_code}.",
                )
            ]
        )
    return None


@dataclass(frozen=True)
class Target:
    url: str  # an Apprise URL; for a webhook, the URL it POSTs to
    recipient: str | None = None  # email: one target per address, so each is delivered and retried alone
    guard_host: tuple[str, int | None] | None = None  # resolved before sending: SSRF rules at send time
    webhook: bool = False  # POSTed by _post_webhook, not through Apprise


def delivery_targets(provider_type: str, config: Mapping[str, Any]) -> list[Target]:
    if provider_type == "webhook":
        parts = urlsplit(config["url"])
        return [Target(config["url"], guard_host=(parts.hostname or "", parts.port), webhook=True)]
    if provider_type == "email":
        return [
            Target(_email_url(config, address), address, (config["smtpHost"], config["smtpPort"]))
            for address in config["to"]
        ]
    if provider_type == "telegram":
        return [Target(f"tgram://{config['botToken']}/{config['chatId']}/")]
    if provider_type in CHAT_PLUGINS:
        return [Target(config["webhookUrl"])]
    return [Target(config["url"])]


def _email_url(config: Mapping[str, Any], recipient: str) -> str:
    security = config.get("security", "starttls")
    scheme = "mailtos" if security == "ssl" else "mailto"
    mode = {"starttls": "starttls", "ssl": "ssl", "none": "insecure"}[security]
    auth = ""
    if config.get("username"):
        auth = f"{quote(config['username'], safe='')}:{quote(config.get('password') or '', safe='')}@"
    host = config["smtpHost"]
    host = f"[{host}]" if ":" in host else host
    query = urlencode(
        {
            "smtp": config["smtpHost"],
            "from": config["from"],
            "to": recipient,
            "mode": mode,
            "format": "html",
            "name": "Supercheck",
        }
    )
    return f"{scheme}://{auth}{host}:{config['smtpPort']}/?{query}"


@dataclass(frozen=True)
class Failure:
    transient: bool
    reason: str


_HTTP_CODE = re.compile(r"error=(\d{3})")
_SMTP_REPLY = re.compile(r"\((\d{3}), b?['\"]([^'\"]*)")
_GENERIC_FAILURE = re.compile(r"^Failed to send .* notification\.?$")
_TRANSIENT_WORDS = re.compile(
    r"timed? ?out|connection error|connection refused|reset by peer|temporar|try again", re.IGNORECASE
)


def classify_failure(log_lines: list[tuple[str, str]]) -> Failure:
    """From Apprise's log of one failed attempt: retry 429, 5xx, SMTP 4xx, timeouts and connection errors."""
    text = "\n".join(message for _, message in log_lines)
    warnings = [message.strip() for level, message in log_lines if level in ("WARNING", "ERROR", "CRITICAL")]
    specific = [w for w in warnings if not _GENERIC_FAILURE.match(w)]
    if match := _HTTP_CODE.search(text):
        code = int(match.group(1))
        reason = next((w for w in warnings if match.group(0) in w), None) or f"HTTP {code}"
        return Failure(code in (408, 425, 429) or code >= 500, reason[:500])
    if match := _SMTP_REPLY.search(text):
        code = int(match.group(1))
        return Failure(400 <= code < 500, f"SMTP {code} {match.group(2)}".strip()[:500])
    reason = (specific or warnings or ["delivery failed"])[0][:500]
    return Failure(bool(_TRANSIENT_WORDS.search(text)), reason)


@dataclass
class TargetResult:
    ok: bool
    attempts: int
    error: str | None = None


async def _send_target(
    target: Target, title: str, body: str, body_format: str | None, notify_type
) -> TargetResult:
    if not target.webhook and _apprise().Apprise.instantiate(target.url) is None:
        return TargetResult(False, 0, "provider URL is not valid for Apprise")
    failure = Failure(False, "delivery failed")
    for attempt in range(1, SEND_ATTEMPTS + 1):
        failure = await _attempt(target, title, body, body_format, notify_type)
        if failure is None:
            return TargetResult(True, attempt)
        if not failure.transient or attempt == SEND_ATTEMPTS:
            return TargetResult(False, attempt, failure.reason)
        await asyncio.sleep(RETRY_BACKOFF_SECONDS[min(attempt - 1, len(RETRY_BACKOFF_SECONDS) - 1)])
    return TargetResult(False, SEND_ATTEMPTS, failure.reason)


async def _attempt(
    target: Target, title: str, body: str, body_format: str | None, notify_type
) -> Failure | None:
    if target.guard_host is not None:
        try:
            await ssrf.resolve_target(*target.guard_host)
        except ssrf.BlockedTarget as error:
            return Failure(False, f"blocked: {error}")
        except ssrf.UnresolvableTarget as error:
            return Failure(True, str(error))
    if target.webhook:
        return await asyncio.to_thread(_post_webhook, target.url, body)
    # A fresh Apprise object per attempt: a reused plugin throttles itself (5.5 s for email), and our backoff
    # is the one that should decide how long a retry waits.
    apprise = _apprise()
    notifier = apprise.Apprise()
    notifier.add(target.url)
    result = await asyncio.to_thread(
        notifier.notify,
        body=body,
        title=title,
        notify_type=apprise.NotifyType(notify_type),
        body_format=apprise.NotifyFormat(body_format) if body_format else None,
        log_level=logging.DEBUG,
    )
    if result:
        return None
    return classify_failure(
        [(entry.level, entry.message) for service in result.results for entry in service.logs()]
    )


@dataclass
class DeliveryResult:
    status: Literal["sent", "partial", "failed"]
    attempts: int
    error: str | None = None
    recipients: dict[str, str] | None = None


async def send_to_provider(
    provider_type: str, config: Mapping[str, Any], message: AlertMessage
) -> DeliveryResult:
    """One message to one provider: each target retried on transient failures; errors carry no secrets."""
    if provider_type == "webhook":
        body, body_format = webhook_body(config, message), None
    elif provider_type == "email":
        body, body_format = message.html, "html"  # Apprise's NotifyFormat values
    else:
        body, body_format = message.text, "text"
    targets = delivery_targets(provider_type, config)
    results = await asyncio.gather(
        *(_send_target(target, message.title, body, body_format, message.notify_type) for target in targets)
    )
    secrets = _secrets_in(config)
    delivered = sum(result.ok for result in results)
    status = "sent" if delivered == len(results) else "failed" if delivered == 0 else "partial"
    failures = [
        (f"{target.recipient}: " if target.recipient else "")
        + _redact(result.error or "delivery failed", secrets)
        for target, result in zip(targets, results, strict=True)
        if not result.ok
    ]
    recipients = None
    if provider_type == "email":
        recipients = {
            target.recipient: "sent" if result.ok else f"failed: {_redact(result.error or '', secrets)}"
            for target, result in zip(targets, results, strict=True)
        }
    return DeliveryResult(
        status,
        max((result.attempts for result in results), default=0),
        "; ".join(failures)[:2000] or None,
        recipients,
    )


# --- alert events: the alert function's work ---------------------------------------------------------


def monitor_link(monitor_id: uuid.UUID | str) -> str:
    return f"{get_settings().public_base_url}/function/api/monitors/{monitor_id}"


async def deliver(events: list[AlertEnvelope]) -> dict[str, int]:
    """Sends each alert event to each of its monitor's providers once, recording alert_history rows.

    Monitors are served concurrently, so one slow monitor's providers do not hold up the batch; one monitor's
    events go out in order, so a flap's "Down" never arrives after its "Recovered".
    """
    counts = {"sent": 0, "partial": 0, "failed": 0, "suppressed": 0, "skipped": 0}
    by_monitor: dict[uuid.UUID, list[AlertEnvelope]] = {}
    for event in events:
        by_monitor.setdefault(event.monitor_id, []).append(event)

    async def one_monitor(monitor_events: list[AlertEnvelope]) -> None:
        for event in monitor_events:
            providers = await _providers_for(event)
            outcomes = await asyncio.gather(
                *(_deliver_one(event, provider) for provider in providers), return_exceptions=True
            )
            for provider, outcome in zip(providers, outcomes, strict=True):
                if isinstance(outcome, BaseException):
                    # Recorded as failed where possible; one broken provider never stops the others.
                    log.error(
                        "alert %s to provider %s raised %r", event.alert_event_id, provider["id"], outcome
                    )
                    counts["failed"] += 1
                else:
                    counts[outcome] += 1

    await asyncio.gather(*(one_monitor(monitor_events) for monitor_events in by_monitor.values()))
    return counts


async def _providers_for(event: AlertEnvelope) -> list[dict]:
    async with db.transaction() as conn:
        return await (
            await conn.execute(
                """
                select p.id, p.type, p.config_encrypted, e.payload, e.kind, e.suppressed_reason, m.alert_config
                from alert_events e
                join monitors m on m.id = e.monitor_id
                join notification_providers p on p.project_id = m.project_id and p.enabled
                where e.id = %s and (
                    p.id::text in (select jsonb_array_elements_text(m.alert_config -> 'notificationProviders'))
                    or p.id in (select provider_id from monitor_notification_settings s where s.monitor_id = m.id))
                """,
                (event.alert_event_id,),
            )
        ).fetchall()


async def _deliver_one(event: AlertEnvelope, provider: dict) -> str:
    message = build_message(
        provider["kind"],
        provider["payload"],
        (provider["alert_config"] or {}).get("customMessage"),
        event.monitor_id,
        monitor_link(event.monitor_id),
    )
    if provider["suppressed_reason"]:
        return await _record_suppressed(event, provider["id"], message, provider["suppressed_reason"])
    claim_id = await _claim(event, provider["id"], message)
    if claim_id is None:
        return "skipped"
    try:
        config = json.loads(key_ring().decrypt(provider["config_encrypted"]))
        result = await send_to_provider(provider["type"], config, message)
    except Exception as error:  # an undecryptable or stale config is this provider's failure, not the batch's
        log.exception("alert %s to provider %s could not be attempted", event.alert_event_id, provider["id"])
        result = DeliveryResult("failed", 0, f"could not be attempted: {type(error).__name__}")
    async with db.transaction() as conn:
        await conn.execute(
            """update alert_history set status = %s, error = %s, attempts = attempts + %s, recipients = %s,
                   sent_at = case when %s then now() end
               where id = %s""",
            (
                result.status,
                result.error,
                result.attempts,
                json.dumps(result.recipients) if result.recipients is not None else None,
                result.status != "failed",
                claim_id,
            ),
        )
    if result.status != "sent":
        log.warning(
            "alert %s to provider %s %s: %s",
            event.alert_event_id,
            provider["id"],
            result.status,
            result.error,
        )
    await _publish_alert_event(event, provider["id"], result.status)
    return result.status


async def _record_suppressed(
    event: AlertEnvelope, provider_id: uuid.UUID, message: AlertMessage, reason: str
) -> str:
    async with db.transaction() as conn:
        row = await (
            await conn.execute(
                """insert into alert_history
                       (alert_event_id, monitor_id, run_id, provider_id, kind, status, title, message, reason)
                   values (%s, %s, %s, %s, %s, 'suppressed', %s, %s, %s)
                   on conflict (run_id, provider_id, kind) do nothing returning id""",
                (
                    event.alert_event_id,
                    event.monitor_id,
                    event.run_id,
                    provider_id,
                    event.alert_kind,
                    message.title,
                    message.text,
                    reason,
                ),
            )
        ).fetchone()
    return "suppressed" if row else "skipped"


async def _claim(event: AlertEnvelope, provider_id: uuid.UUID, message: AlertMessage) -> int | None:
    """Exactly one invocation gets to send (run, provider, kind); a crashed sender's claim expires."""
    async with db.transaction() as conn:
        await conn.execute(
            """insert into alert_history (alert_event_id, monitor_id, run_id, provider_id, kind, status, title, message)
               values (%s, %s, %s, %s, %s, 'pending', %s, %s)
               on conflict (run_id, provider_id, kind) do nothing""",
            (
                event.alert_event_id,
                event.monitor_id,
                event.run_id,
                provider_id,
                event.alert_kind,
                message.title,
                message.text,
            ),
        )
        row = await (
            await conn.execute(
                f"""update alert_history set status = 'sending', claimed_at = now()
                    where run_id = %s and provider_id = %s and kind = %s
                      and (status = 'pending' or (status = 'sending' and claimed_at < now() - interval '{CLAIM_EXPIRY}'))
                    returning id""",
                (event.run_id, provider_id, event.alert_kind),
            )
        ).fetchone()
    return row["id"] if row else None


async def _publish_alert_event(event: AlertEnvelope, provider_id: uuid.UUID, status: str) -> None:
    try:
        await publish_live_events(
            [
                {
                    "type": "alert",
                    "monitorId": event.monitor_id,
                    "runId": event.run_id,
                    "kind": event.alert_kind,
                    "providerId": provider_id,
                    "status": status,
                    "at": datetime.now(UTC).isoformat(),
                }
            ]
        )
    except Exception:  # live events are best effort; the delivery is already recorded
        log.warning("live event for alert %s not published", event.alert_event_id, exc_info=True)


# --- the API's "send test notification" -------------------------------------------------------------


async def send_test_notification(project_id: uuid.UUID, provider_id: uuid.UUID) -> dict[str, Any]:
    """Sends a sample alert through one provider now (with retries) and reports how it went; records nothing."""
    async with db.transaction() as conn:
        row = await (
            await conn.execute(
                """select p.type, p.name, p.config_encrypted, pr.name as project_name
                   from notification_providers p join projects pr on pr.id = p.project_id
                   where p.id = %s and p.project_id = %s""",
                (provider_id, project_id),
            )
        ).fetchone()
    if row is None:
        raise ApiError(404, "not_found", "notification provider not found")
    payload = {
        "projectName": row["project_name"],
        "monitorName": row["name"],
        "monitorType": "test",
        "target": "this provider",
        "status": "up",
        "locationsDown": 0,
        "locationsTotal": 0,
        "time": datetime.now(UTC).isoformat(),
    }
    message = build_message("test", payload, monitor_id=f"test-{provider_id}")
    config = json.loads(key_ring().decrypt(row["config_encrypted"]))
    result = await send_to_provider(row["type"], config, message)
    answer: dict[str, Any] = {"status": result.status, "attempts": result.attempts, "error": result.error}
    if result.recipients is not None:
        answer["recipients"] = result.recipients
    return answer
