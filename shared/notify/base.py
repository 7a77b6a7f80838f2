"""The provider interface and the send loop every provider shares: targets, retries, failure classification.

Used by the alert function (shared/pipeline/alert.py) and the API's provider endpoints (validation and "send
test notification"), through shared.notify.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from shared import ssrf
from shared.errors import FieldError
from shared.notify.destinations import plugin_destination, run_pinned, unpinnable_reason, vet_host_on_save
from shared.notify.masking import redact, secrets_in

if TYPE_CHECKING:
    from shared.models import ApiModel
    from shared.notify.message import AlertMessage

SEND_ATTEMPTS = 3
RETRY_BACKOFF_SECONDS = (0.5, 2.0)  # before the 2nd and 3rd attempt

# Each notify() call captures its own log at DEBUG (SMTP replies live there) for classify_failure(); those
# lines can carry service URLs, so they stay out of the process's log: we log our own redacted summary.
_apprise_log = logging.getLogger("apprise")
_apprise_log.setLevel(logging.DEBUG)
_apprise_log.propagate = False


@lru_cache(maxsize=1)
def load_apprise():
    """Apprise loads on the first send through it or provider check, not with this package: every function
    imports the models here, and only alert and the API's provider endpoints send or validate. Its first use
    then imports all of its ~100 service plugins (about 300 ms and 25 MB)."""
    import apprise

    return apprise


@dataclass(frozen=True)
class Failure:
    transient: bool
    reason: str


# Sends a body itself instead of through Apprise (the generic webhook); reports as an Apprise log would.
Post = Callable[[str, str], Failure | None]


@dataclass(frozen=True)
class Target:
    url: str  # an Apprise URL; for a webhook, the URL it POSTs to
    recipient: str | None = None  # email: one target per address, so each is sent and retried alone
    # Resolved and vetted before sending, and the send pinned to those addresses; every other host the send
    # looks up is vetted and pinned as it goes (shared/notify/destinations.py).
    guard_host: tuple[str, int | None] | None = None
    post: Post | None = None  # sends (url, body) without Apprise


class Provider:
    """One notification provider type: its config model, its checks beyond that model, its targets, its body.

    A provider is one module of this package holding one instance, and one line in shared.notify.PROVIDERS.
    """

    config_model: ClassVar[type[ApiModel]]
    body_format: ClassVar[str | None] = "text"  # Apprise's NotifyFormat value for body(), None: the raw body
    # Config keys (camelCase) that are never shown and are cut from every error text.
    secret_fields: ClassVar[frozenset[str]] = frozenset()
    # URLs whose scheme and host may be shown, but whose path and query may carry a token.
    url_fields: ClassVar[frozenset[str]] = frozenset()

    def validate(self, stored: dict) -> None:
        """Checks on the stored form beyond the config model's; raises a FieldError naming config.<field>."""

    def targets(self, config: Mapping[str, Any]) -> list[Target]:
        raise NotImplementedError

    def body(self, config: Mapping[str, Any], message: AlertMessage) -> str:
        return message.text


def check_destination(url: str) -> str:
    """SSRF rules (shared/ssrf.py) for where alerts go: the single call site for webhook and custom URLs.
    The host is resolved now too, so a name that answers with an internal address is refused on save."""
    parsed = ssrf.check_url_target(url, allow_userinfo=True)
    vet_host_on_save(parsed.host)
    return str(parsed)


def require_plugin(url: str, plugin_names: set[str] | None, field_name: str, service: str | None) -> None:
    """The URL must be one Apprise understands, and (given plugin_names) resolve to one of those plugins;
    the host it sends to, where the URL chooses one, must not be internal."""
    plugin = load_apprise().Apprise.instantiate(url)
    if plugin is None or (plugin_names and type(plugin).__name__ not in plugin_names):
        what = f"a {service} URL" if service else "a URL that Apprise understands"
        raise FieldError(field_name, f"is not {what}")
    host = plugin_destination(plugin)
    try:
        if host is not None:
            vet_host_on_save(host)
    except ValueError as error:  # BlockedTarget, or a host that is no valid address
        raise FieldError(field_name, str(error)) from None
    if reason := unpinnable_reason(plugin):
        raise FieldError(field_name, reason)


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
    # "delivery failed" is the stored error text alert_history rows already carry; kept as it is.
    reason = (specific or warnings or ["delivery failed"])[0][:500]
    return Failure(bool(_TRANSIENT_WORDS.search(text)), reason)


@dataclass
class TargetResult:
    ok: bool
    attempts: int
    error: str | None = None


@dataclass
class SendResult:
    status: Literal["sent", "partial", "failed"]
    attempts: int
    error: str | None = None
    recipients: dict[str, str] | None = None  # per address, for providers whose targets name recipients


async def send(provider: Provider, config: Mapping[str, Any], message: AlertMessage) -> SendResult:
    """One message to one provider: each target retried on transient failures; errors carry no secrets."""
    body = provider.body(config, message)
    targets = provider.targets(config)
    results = await asyncio.gather(
        *(
            _send_target(target, message.title, body, provider.body_format, message.notify_type)
            for target in targets
        )
    )
    secrets = secrets_in(config, provider.secret_fields, provider.url_fields)
    sent = sum(result.ok for result in results)
    status = "sent" if sent == len(results) else "failed" if sent == 0 else "partial"
    failures = [
        (f"{target.recipient}: " if target.recipient else "")
        + redact(result.error or "delivery failed", secrets)
        for target, result in zip(targets, results, strict=True)
        if not result.ok
    ]
    recipients = None
    if targets and all(target.recipient for target in targets):
        recipients = {
            target.recipient: "sent" if result.ok else f"failed: {redact(result.error or '', secrets)}"
            for target, result in zip(targets, results, strict=True)
        }
    return SendResult(
        status,
        max((result.attempts for result in results), default=0),
        "; ".join(failures)[:2000] or None,
        recipients,
    )


async def _send_target(
    target: Target, title: str, body: str, body_format: str | None, notify_type
) -> TargetResult:
    if target.post is None:
        plugin = load_apprise().Apprise.instantiate(target.url)
        if plugin is None:
            return TargetResult(False, 0, "provider URL is not valid for Apprise")
        if reason := unpinnable_reason(plugin):
            return TargetResult(False, 0, f"destination blocked: {reason}")
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
    """One try, pinned: the guard host to the addresses vetted here, any other host as the send resolves it."""
    vetted: dict[str, list[ssrf.IPAddress]] = {}
    if target.guard_host is not None:
        try:
            vetted[target.guard_host[0]] = await ssrf.resolve_target(*target.guard_host)
        except ssrf.BlockedTarget as error:
            return Failure(False, f"destination blocked: {error}")
        except ssrf.UnresolvableTarget as error:
            return Failure(True, str(error))
    if target.post is not None:
        failure, blocked = await asyncio.to_thread(run_pinned, vetted, target.post, target.url, body)
        return Failure(False, f"destination blocked: {blocked}") if blocked else failure
    # A fresh Apprise object per attempt: a reused plugin throttles itself (5.5 s for email), and our backoff
    # is the one that should decide how long a retry waits.
    apprise = load_apprise()
    notifier = apprise.Apprise()
    notifier.add(target.url)
    result, blocked = await asyncio.to_thread(
        run_pinned,
        vetted,
        notifier.notify,
        body=body,
        title=title,
        notify_type=apprise.NotifyType(notify_type),
        body_format=apprise.NotifyFormat(body_format) if body_format else None,
        log_level=logging.DEBUG,
    )
    if blocked:
        return Failure(False, f"destination blocked: {blocked}")
    if result:
        return None
    return classify_failure(
        [(entry.level, entry.message) for service in result.results for entry in service.logs()]
    )
