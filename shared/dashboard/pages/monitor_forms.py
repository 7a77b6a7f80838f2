"""The monitor set-up forms: create and edit a monitor of any check type, and try its config before saving.

The per-type fields are generated from each check type's pydantic config model (its JSON schema gives the
kinds, limits, defaults and choices); LABELS and HINTS tune what the schema's field names cannot say. The
forms write through the API door (POST /monitors, PATCH /monitors/{id}, POST /monitors/test), so every rule
and every message is the API's.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from shared.checks import CHECK_TYPES
from shared.checks.credentials import is_sensitive_header
from shared.dashboard.web import BASE_PATH, PageContext, as_uuid_or_none, page
from shared.errors import ApiError
from shared.models import AlertConfig, LocationConfig
from shared.security import SECRET_FIELD_NAMES

TYPE_LABELS = {
    "http_request": "HTTP request",
    "website": "Website",
    "ping_host": "Ping (ICMP)",
    "port_check": "TCP/UDP port",
    "dns": "DNS record",
    "synthetic_test": "Synthetic test (Playwright)",
}
STRATEGIES = (
    ("majority", "Majority: more than half up"),
    ("all", "All: every location up"),
    ("any", "Any: one location up"),
    ("custom", "Custom: the threshold's share up"),
)

# The target field's label and hint per type; synthetic_test chooses its test from a list instead.
TARGETS = {
    "http_request": ("URL", "Sent exactly as given, e.g. https://api.example.com/health"),
    "website": ("URL", "e.g. https://www.example.com/"),
    "ping_host": ("Host", "A host name or an IPv4/IPv6 address"),
    "port_check": ("Host", "A host name or an IPv4/IPv6 address"),
    "dns": ("Name", "The name to resolve, e.g. example.com (an IP address for PTR records)"),
}

# Config fields a person does not set: derived by the model, fixed, or named by the target already.
NOT_ASKED = {
    "target",
    "synthetic_test:timeoutSeconds",  # derived from playwrightOptions
    "synthetic_test:testId",  # must equal the target
    "synthetic_test:testTitle",
    "synthetic_test:playwrightOptions.headless",  # must be true
}

LABELS = {
    "timeoutSeconds": "Timeout (seconds)",
    "expectedStatusCodes": "Expected status codes",
    "keywordInBody": "Keyword in the body",
    "keywordInBodyShouldBePresent": "The keyword must be present",
    "enableSslCheck": "Check the SSL certificate",
    "sslDaysUntilExpirationWarning": "Certificate warning (days before expiry)",
    "degradedAfterMs": "Degraded after (ms)",
    "maxRedirects": "Redirects to follow",
    "maxResponseSizeMb": "Largest response read (MB)",
    "jsonPathAssertion": "JSON path assertion",
    "method": "Method",
    "headers": "Headers",
    "body": "Request body",
    "auth.type": "Scheme",
    "auth.username": "Username",
    "auth.password": "Password",
    "auth.token": "Bearer token",
    "count": "Pings per check",
    "intervalSeconds": "Interval between pings (seconds)",
    "maxPacketLossPercent": "Down from packet loss (%)",
    "port": "Port",
    "protocol": "Protocol",
    "expectClosed": "Expect the port to be closed (TCP)",
    "udpPayload": "UDP payload",
    "requireReply": "Require a reply (UDP)",
    "playwrightOptions.timeout": "Timeout per attempt (ms)",
    "playwrightOptions.retries": "Retries",
}
HINTS = {
    "resolvers": 'A JSON list of addresses, e.g. ["9.9.9.9", "[2620:fe::fe]:53"]; empty: the system resolver',
    "expectedValues": 'A JSON list, e.g. ["192.0.2.10"]; compared as a set, as the match mode says',
    "expectedStatusCodes": "e.g. 200, 2xx or 200-299,404; empty means 200–299",
    "keywordInBodyShouldBePresent": "Unchecked: the check fails when the keyword is found",
    "jsonPathAssertion": 'e.g. $.status == "ok" or $.items.length() > 0',
    "degradedAfterMs": "Slower answers mark the check degraded; empty: never",
    "maxRedirects": "0: do not follow redirects",
    "headers": "One per line, as Name: value",
    "body": "JSON or text; the content type is detected. Not with GET or HEAD",
    "intervalSeconds": "count × interval + timeout must be at most 60 s",
    "maxPacketLossPercent": "100: any reply counts as up",
    "udpPayload": "Sent as the datagram (UDP only)",
    "requireReply": "Without it, UDP silence counts as up (unconfirmed)",
    "playwrightOptions.timeout": "timeout × (retries + 1) must be at most 240000 ms",
}
# website monitors take basic auth only (WebsiteConfig refuses bearer tokens).
CHOICES = {"website:auth.type": ("none", "basic")}
KEEP_HINT = "Leave blank to keep the stored value"


@dataclass(frozen=True)
class FormField:
    """One input of a type's config: `name` is its dotted path in the monitor's JSON (config.auth.password)."""

    name: str
    label: str
    control: str  # text, number, checkbox, select, textarea, password, headers
    kind: str = ""  # app.js's data-kind: how the browser reads the value into JSON
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    step: str | None = None
    options: tuple[str, ...] = ()
    hint: str = ""
    nullable: bool = False  # a blank input is sent as null (so an edit clears it rather than keeping it)
    # the auth fieldset's fields show only for the auth types they belong to
    shown_for_auth: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return self.name.removeprefix("config.")

    @property
    def secret(self) -> bool:
        return self.control == "password"


def _humanised(key: str) -> str:
    last = key.split(".")[-1]
    words = re.sub(r"(?<!^)(?=[A-Z])", " ", last).lower()
    return words[:1].upper() + words[1:]


def _nullable(spec: dict) -> tuple[dict, bool]:
    """The non-null branch of an `X | None` property, and whether null is allowed."""
    branches = spec.get("anyOf")
    if not branches:
        return spec, False
    real = [branch for branch in branches if branch.get("type") != "null"]
    return (real[0] if len(real) == 1 else spec), len(real) < len(branches)


AUTH_FIELDS_FOR = {"username": ("basic",), "password": ("basic",), "token": ("bearer",)}


def _field_of(check_type: str, key: str, spec: dict, default: Any) -> FormField:
    """The input for one schema property: its kind from the JSON type, its limits and choices from the schema."""
    spec, nullable = _nullable(spec)
    label = LABELS.get(key) or _humanised(key)
    hint = HINTS.get(key) or spec.get("description", "")
    common = {"name": f"config.{key}", "label": label, "default": default, "hint": hint, "nullable": nullable}
    if key.startswith("auth."):
        common["shown_for_auth"] = AUTH_FIELDS_FOR.get(key.split(".")[-1], ())
    if key.split(".")[-1].lower() in SECRET_FIELD_NAMES:  # the names the API masks are the secrets
        # blank means "no change" on an edit (the stored secret is kept), so it is left out, never sent as null
        return FormField(**{**common, "nullable": False}, control="password", kind="optional")
    if "enum" in spec:
        options = CHOICES.get(f"{check_type}:{key}") or tuple(spec["enum"])
        return FormField(**common, control="select", options=options)
    kind = spec.get("type")
    if kind == "boolean":
        return FormField(**common, control="checkbox", kind="boolean")
    if kind in ("integer", "number"):
        return FormField(
            **common,
            control="number",
            kind="number",
            minimum=spec.get("minimum"),
            maximum=spec.get("maximum"),
            step="1" if kind == "integer" else "any",
        )
    if kind == "object" and spec.get("additionalProperties", {}).get("type") == "string":
        return FormField(**common, control="headers", kind="headers")
    if kind == "string" and key == "body":
        return FormField(**common, control="textarea")
    if kind == "string":
        return FormField(**common, control="text")
    return FormField(**common, control="textarea", kind="json")


def _properties(schema: dict, node: dict, prefix: str = "") -> list[tuple[str, dict, Any]]:
    """(dotted key, property schema, default) for every leaf, nested models walked into."""
    found = []
    for name, spec in node.get("properties", {}).items():
        target, _ = _nullable(spec)
        reference = target.get("$ref") or (target.get("allOf") or [{}])[0].get("$ref")
        if reference:
            nested = schema["$defs"][reference.rsplit("/", 1)[-1]]
            found += _properties(schema, nested, f"{prefix}{name}.")
        else:
            found.append((f"{prefix}{name}", spec, spec.get("default")))
    return found


# What a person decides first comes first; the rest keep the model's order (inherited fields lead there).
FIRST_FIELDS = (
    "method",
    "port",
    "protocol",
    "expectedStatusCodes",
    "keywordInBody",
    "keywordInBodyShouldBePresent",
    "jsonPathAssertion",
    "count",
    "intervalSeconds",
    "maxPacketLossPercent",
)


def _order(field: FormField) -> int:
    return FIRST_FIELDS.index(field.key) if field.key in FIRST_FIELDS else len(FIRST_FIELDS)


@cache
def config_fields(check_type: str) -> tuple[FormField, ...]:
    """The inputs of one check type's config: what the model's JSON schema names, minus what is not asked."""
    schema = CHECK_TYPES[check_type].config_model.model_json_schema(by_alias=True)
    fields = [
        _field_of(check_type, key, spec, default)
        for key, spec, default in _properties(schema, schema)
        if key not in NOT_ASKED and f"{check_type}:{key}" not in NOT_ASKED
    ]
    auth_types = next((f.options for f in fields if f.key == "auth.type"), ())
    # an auth field no offered auth type shows (website: no bearer token) is left out
    fields = [f for f in fields if not f.shown_for_auth or set(f.shown_for_auth) & set(auth_types)]
    return tuple(sorted(fields, key=_order))


def _lookup(data: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
    return data


def _utc_minutes(value: str | None) -> str:
    """A stored instant as <input type="datetime-local"> shows it, in UTC (the API reads a zoneless time as UTC)."""
    if not value:
        return ""
    return datetime.fromisoformat(value).astimezone(UTC).strftime("%Y-%m-%dT%H:%M")


def _headers_text(headers: dict) -> str:
    return "\n".join(f"{name}: {value}" for name, value in headers.items() if not is_sensitive_header(name))


def config_values(check_type: str, config: dict) -> dict[str, Any]:
    """Each config input's value for a stored (masked) config; secrets are always left blank."""
    values: dict[str, Any] = {}
    for field in config_fields(check_type):
        stored = _lookup(config, field.key)
        if field.secret:
            values[field.name] = ""
        elif field.control == "headers":
            values[field.name] = _headers_text(stored or {})
        elif stored is None:
            values[field.name] = field.default
        else:
            values[field.name] = stored
    return values


def _default_values(check_type: str) -> dict[str, Any]:
    return {
        field.name: ("" if field.control == "headers" else field.default)
        for field in config_fields(check_type)
    }


def _way_back(ctx: PageContext, fallback: str) -> str:
    """Cancel leads back to the dashboard page the user came from (same origin only), else to `fallback`."""
    referer = ctx.request.headers.get("referer", "")
    parts = urlsplit(referer)
    own_host = ctx.request.headers.get("x-forwarded-host") or ctx.request.headers.get("host", "")
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    inside = parts.netloc == own_host and path.startswith(BASE_PATH + "/") and "//" not in path
    here = ctx.request.url.path
    if inside and not path.removeprefix(BASE_PATH).startswith(here.removeprefix(BASE_PATH)):
        return path
    return BASE_PATH + fallback


async def _choices(ctx: PageContext) -> dict[str, Any]:
    """What the form offers to choose from: locations, notification providers, synthetic tests."""
    regions, providers, tests = await asyncio.gather(
        ctx.api.get("/regions", {"hours": 1}),
        ctx.api.get("/notification-providers"),
        ctx.api.get("/synthetic-tests"),
    )
    return {
        "locations": [{"code": r["location"], "name": r["name"], "city": r["city"]} for r in regions["data"]],
        "providers": providers,
        "synthetic_tests": [{"id": test["id"], "title": test["title"]} for test in tests],
    }


def _form_values(monitor: dict | None, chosen_type: str) -> dict[str, Any]:
    """The values of every type's config inputs: the stored ones for the monitor's own type, defaults elsewhere."""
    return {
        check_type: config_values(check_type, monitor["config"])
        if monitor and monitor["type"] == check_type
        else _default_values(check_type)
        for check_type in CHECK_TYPES
    }


def _stored_secret_headers(monitor: dict | None) -> list[str]:
    if not monitor:
        return []
    return [name for name in (monitor["config"].get("headers") or {}) if is_sensitive_header(name)]


def _has_stored_secrets(monitor: dict | None) -> bool:
    if not monitor:
        return False
    auth = monitor["config"].get("auth") or {}
    return bool(_stored_secret_headers(monitor)) or auth.get("type", "none") != "none"


def _grouped(fields: tuple[FormField, ...]) -> dict[str, list[FormField]]:
    """The authentication fields apart: they sit in their own fieldset, shown by the chosen auth type."""
    return {
        "plain": [field for field in fields if not field.key.startswith("auth.")],
        "auth": [field for field in fields if field.key.startswith("auth.")],
    }


def _render(ctx: PageContext, monitor: dict | None, chosen_type: str, choices: dict, back: str):
    # the models' defaults under what is stored, so a new form shows what the API would apply
    location_config = {
        **LocationConfig().model_dump(mode="json", by_alias=True),
        **(monitor or {}).get("locationConfig", {}),
    }
    alert_config = {
        **AlertConfig().model_dump(mode="json", by_alias=True),
        **(monitor or {}).get("alertConfig", {}),
    }
    return ctx.render(
        "monitor_forms/form.html",
        monitor=monitor,
        chosen_type=chosen_type,
        check_types=[(name, TYPE_LABELS.get(name, name)) for name in CHECK_TYPES],
        fields={name: _grouped(config_fields(name)) for name in CHECK_TYPES},
        values=_form_values(monitor, chosen_type),
        targets=TARGETS,
        # the target's label and hint follow the chosen type (app.js reads these on a type change)
        targets_json_labels=json.dumps({name: label for name, (label, _) in TARGETS.items()}),
        targets_json_hints=json.dumps({name: hint for name, (_, hint) in TARGETS.items()}),
        strategies=STRATEGIES,
        location_config=location_config,
        alert_config=alert_config,
        muted_until=_utc_minutes(alert_config.get("mutedUntil")),
        secret_headers=_stored_secret_headers(monitor),
        has_stored_secrets=_has_stored_secrets(monitor),
        stored_auth_type=((monitor or {}).get("config", {}).get("auth") or {}).get("type", "none"),
        keep_hint=KEEP_HINT,
        back=back,
        nav="/",
        **choices,
    )


@page("/monitors/new")
async def new_monitor(ctx: PageContext):
    chosen_type = ctx.query("type").get("type", "http_request")
    if chosen_type not in CHECK_TYPES:
        chosen_type = "http_request"
    return _render(ctx, None, chosen_type, await _choices(ctx), _way_back(ctx, "/"))


@page("/monitors/{monitor_id}/edit")
async def edit_monitor(ctx: PageContext, monitor_id: str):
    if as_uuid_or_none(monitor_id) is None:
        raise ApiError(404, "not_found", "no such monitor")
    monitor, choices = await asyncio.gather(ctx.api.get(f"/monitors/{monitor_id}"), _choices(ctx))
    chosen_type = monitor["type"] if monitor["type"] in CHECK_TYPES else "http_request"
    return _render(ctx, monitor, chosen_type, choices, _way_back(ctx, f"/monitors/{monitor['id']}"))
