"""Alert messages (pure): titles, plain text, HTML and template variables for one alert, and {{variable}} templates.

Used by the alert function (shared/pipeline/alert.py), the API's "send test notification"
(shared/api/services/providers.py) and the webhook provider (its template, checked when a provider is saved).
"""

from __future__ import annotations

import html
import json
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

TITLES = {
    "failure": "Monitor Down - {name}",
    "recovery": "Monitor Recovered - {name}",
    "ssl_expiring": "SSL Certificate Expiring - {name}",
    "ssl_expired": "SSL Certificate Expired - {name}",
    "flapping_started": "Monitor Flapping - {name}",
    "flapping_stopped": "Monitor Stopped Flapping - {name}",
    "dns_changed": "DNS Records Changed - {name}",
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
    "deliveryKey",
    "eventAction",
    "reason",
)
SAMPLE_VARIABLES = {name: "x" for name in TEMPLATE_VARIABLES}
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_ACCENTS = {
    "failure": "#d92d20",
    "recovery": "#079455",
    "ssl_expiring": "#dc6803",
    "ssl_expired": "#d92d20",
    "dns_changed": "#dc6803",
    "flapping_started": "#dc6803",
    "flapping_stopped": "#079455",
}
# An incident per concern, as PagerDuty dedups: the certificate's and the flapping's are apart from the outage.
_DEDUP_SUFFIXES = {"ssl": "-ssl", "flapping": "-flapping"}
# Apprise NotifyType per kind; the rest are failures.
_NOTIFY_TYPES = {
    "recovery": "success",
    "ssl_expiring": "warning",
    "dns_changed": "warning",
    "test": "info",
    "flapping_started": "warning",
    "flapping_stopped": "info",
}


def json_escape(value: str) -> str:
    """A string as it goes between the quotes of a JSON string."""
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
    if payload.get("reason"):
        rows.append(("Reason", payload["reason"]))
    if kind.startswith("flapping") and (payload.get("flapping") or {}).get("changeRatePercent") is not None:
        rows.append(("Change rate", f"{payload['flapping']['changeRatePercent']}% of recent runs (weighted)"))
    if kind == "failure" and (payload.get("sequenceNumber") or 1) > 1:
        rows.append(("Reminder", f"{payload['sequenceNumber']} of 3; still down"))
    ssl = payload.get("ssl") or {}
    if kind.startswith("ssl"):
        days = ssl.get("daysUntilExpiry")
        left = "expired" if kind == "ssl_expired" else f"expires in {days} day{'s' if days != 1 else ''}"
        rows.append(("Certificate", left + (f" ({ssl['validTo']})" if ssl.get("validTo") else "")))
    for location, change in (
        sorted((payload.get("dnsChanges") or {}).items()) if kind == "dns_changed" else ()
    ):
        moved = [f"- {v}" for v in change.get("removed", [])] + [f"+ {v}" for v in change.get("added", [])]
        rows.append((f"Records at {location}", " ".join(moved)))
    rows += [("Time", time), ("Details", link or "")]
    return [(label, value) for label, value in rows if value not in ("", None)]


def build_message(
    kind: str,
    payload: Mapping[str, Any],
    custom_message: str | None = None,
    monitor_id: uuid.UUID | str | None = None,
    link: str | None = None,
    delivery_key: str | None = None,
) -> AlertMessage:
    """Title, plain text, HTML and template variables for one alert; customMessage replaces the default text.

    dedupKey names the incident (one per monitor, as PagerDuty's); deliveryKey names this one alert, the same
    on every retry of it, so a receiver can drop a duplicate delivery.
    """
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
        "dedupKey": f"supercheck-{monitor_id}" + _DEDUP_SUFFIXES.get(kind.split("_")[0], ""),
        "deliveryKey": delivery_key or "",
        "eventAction": "resolve" if kind in ("recovery", "flapping_stopped") else "trigger",
        "reason": payload.get("reason") or "",
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
    notify_type = _NOTIFY_TYPES.get(kind, "failure")
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
