"""Notification providers: config validation, message building (pure), and delivery through Apprise."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import apprise

from shared import db
from shared.models import AlertEvent
from shared.security import key_ring, mask
from shared.settings import get_settings

log = logging.getLogger(__name__)
SEND_ATTEMPTS = 3
RETRY_BACKOFF_SECONDS = (0.5, 2.0)
CLAIM_EXPIRY = "2 minutes"  # a 'sending' row older than this belongs to a crashed invocation


def _validate_http_url(url: object, field: str = "config.url") -> str:
    if not isinstance(url, str) or not url:
        raise ValueError(f"{field}: is required")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{field}: must be an http:// or https:// URL with a host")
    return url


def validate_provider_config(provider_type: str, config: dict) -> dict:
    if provider_type == "webhook":
        unknown = set(config) - {"url"}
        if unknown:
            raise ValueError(f"config.{sorted(unknown)[0]}: is not a known field")
        return {"url": _validate_http_url(config.get("url"))}
    if provider_type == "apprise":
        url = config.get("url")
        if not isinstance(url, str) or apprise.Apprise.instantiate(url) is None:
            raise ValueError("config.url: is not a URL that Apprise understands")
        return {"url": url}
    raise ValueError(f"type: unknown provider type '{provider_type}'")


def masked_config(config: dict) -> dict:
    """What API reads show: scheme and host stay readable, anything that could carry a token is masked."""
    parts = urlsplit(config["url"])
    shown = f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}"
    hidden = parts.path + (f"?{parts.query}" if parts.query else "")
    return {"url": shown + (mask(hidden) if hidden.strip("/") else hidden)}


def apprise_url(provider_type: str, config: dict) -> str:
    if provider_type != "webhook":
        return config["url"]
    parts = urlsplit(config["url"])
    scheme = "jsons" if parts.scheme == "https" else "json"
    auth = ""
    if parts.username:
        auth = (
            quote(parts.username, safe="")
            + (f":{quote(parts.password or '', safe='')}" if parts.password else "")
            + "@"
        )
    port = f":{parts.port}" if parts.port else ""
    # Apprise forwards query parameters prefixed with '-' as the receiver's own GET parameters.
    query = urlencode([(f"-{key}", value) for key, value in parse_qsl(parts.query, keep_blank_values=True)])
    return f"{scheme}://{auth}{parts.hostname}{port}{parts.path or '/'}" + (f"?{query}" if query else "")


@dataclass(frozen=True)
class AlertMessage:
    title: str
    body: str
    notify_type: str


TITLES = {
    "failure": "Monitor Down - {name}",
    "recovery": "Monitor Recovered - {name}",
    "ssl_expiring": "SSL Certificate Expiring - {name}",
    "ssl_expired": "SSL Certificate Expired - {name}",
}


def build_message(kind: str, payload: dict, custom_message: str | None = None) -> AlertMessage:
    title = TITLES[kind].format(name=payload["monitorName"])
    lines = [
        f"Monitor: {payload['monitorName']} ({payload['monitorType']})",
        f"Status: {payload['status'].upper()}",
        f"Locations down: {payload['locationsDown']}/{payload['locationsTotal']}",
        f"Target: {payload['target']}",
        f"Time: {payload['time']}",
    ]
    if payload.get("link"):
        lines.append(f"Details: {payload['link']}")
    body = custom_message or "\n".join(lines)
    return AlertMessage(title, body, "success" if kind == "recovery" else "failure")


async def send(url: str, message: AlertMessage) -> tuple[bool, str | None]:
    """One delivery with retries; returns (sent, error text). Errors never include the URL's secrets."""
    notifier = apprise.Apprise()
    if not notifier.add(url):
        return False, "provider URL is not valid for Apprise"
    error = None
    for attempt in range(SEND_ATTEMPTS):
        with apprise.LogCapture(level=logging.WARNING) as captured:
            ok = await asyncio.to_thread(
                notifier.notify, body=message.body, title=message.title, notify_type=message.notify_type
            )
        if ok:
            return True, None
        error = (captured.getvalue().strip().splitlines() or ["delivery failed"])[-1][:500]
        if attempt < len(RETRY_BACKOFF_SECONDS):
            await asyncio.sleep(RETRY_BACKOFF_SECONDS[attempt])
    return False, error


async def deliver(events: list[AlertEvent]) -> dict[str, int]:
    """Sends each alert event to each of its monitor's providers once, recording alert_history rows."""
    counts = {"sent": 0, "failed": 0, "skipped": 0}
    for event in events:
        for outcome in await asyncio.gather(
            *(_deliver_one(event, provider) for provider in await _providers_for(event))
        ):
            counts[outcome] += 1
    return counts


async def _providers_for(event: AlertEvent) -> list[dict]:
    async with db.transaction() as conn:
        return await (
            await conn.execute(
                """
                select p.id, p.type, p.config_encrypted, e.payload, e.kind, m.alert_config
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


async def _deliver_one(event: AlertEvent, provider: dict) -> str:
    payload = {
        **provider["payload"],
        "link": f"{get_settings().public_base_url}/function/api/monitors/{event.monitor_id}",
    }
    message = build_message(provider["kind"], payload, (provider["alert_config"] or {}).get("customMessage"))
    claim_id = await _claim(event, provider["id"], message)
    if claim_id is None:
        return "skipped"
    config = json.loads(key_ring().decrypt(provider["config_encrypted"]))
    sent, error = await send(apprise_url(provider["type"], config), message)
    async with db.transaction() as conn:
        await conn.execute(
            """update alert_history set status = %s, error = %s, attempts = attempts + %s,
                   sent_at = case when %s then now() end where id = %s""",
            ("sent" if sent else "failed", error, 1 if sent else SEND_ATTEMPTS, sent, claim_id),
        )
    if not sent:
        log.warning("alert %s to provider %s failed: %s", event.alert_event_id, provider["id"], error)
    return "sent" if sent else "failed"


async def _claim(event: AlertEvent, provider_id: uuid.UUID, message: AlertMessage) -> int | None:
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
                message.body,
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
