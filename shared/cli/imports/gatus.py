"""Gatus config.yaml → supercheck monitors: each endpoint's URL, method, interval, headers, body and conditions
([STATUS], [BODY] paths, [RESPONSE_TIME], [CERTIFICATE_EXPIRATION], [CONNECTED]); the rest is listed, not lost."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from shared.cli.imports import (
    Conversion,
    Keys,
    Problem,
    clipped_name,
    frequency_minutes,
    headers_without_secrets,
    timeout_seconds,
)

DEFAULT_INTERVAL_SECONDS = 60  # Gatus' default
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_DURATION_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
_CONDITION = re.compile(
    r"^\s*(?P<len>len\(\s*)?\[(?P<placeholder>[A-Z_]+)\](?P<path>[^\s)]*)(?(len)\s*\))\s*"
    r"(?P<op>==|!=|<=|>=|<|>)\s*(?P<value>.*?)\s*$"
)
_HTTP_METHODS = {"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"}
_SECTIONS_NOT_IMPORTED = {
    "alerting": "alert providers hold secrets: add notificationProviders by hand (or `supercheck export` them)",
    "external-endpoints": "pushed results have no counterpart in a checked monitor",
    "maintenance": "add a maintenanceWindows entry by hand",
}


class Unconvertible(ValueError):
    """One part of an endpoint that has no counterpart; the message says why."""


def duration_seconds(text: Any) -> float:
    """A Go duration (30s, 5m, 1h30m, 500ms) in seconds."""
    value = str(text).strip()
    parts = _DURATION.findall(value)
    if not parts or "".join(number + unit for number, unit in parts) != value:
        raise Unconvertible(f"'{value}' is not a duration such as 30s, 5m or 1h")
    return sum(float(number) * _DURATION_SECONDS[unit] for number, unit in parts)


@dataclass
class _Monitor:
    """The monitor being built from one endpoint."""

    type: str
    config: dict
    alert_config: dict


def _status_spec(op: str, value: str) -> str:
    """[STATUS] compared to a code, or == any(200, 201), as our expectedStatusCodes ranges."""
    if op == "==" and value.startswith("any(") and value.endswith(")"):
        codes = [code.strip() for code in value[4:-1].split(",")]
    else:
        codes = [value]
    if not all(code.isdigit() and 100 <= int(code) <= 599 for code in codes):
        raise Unconvertible("only status codes from 100 to 599 can be compared")
    if op == "==":
        return ",".join(codes)
    code = int(codes[0])
    ranges = {
        "<": [(100, code - 1)],
        "<=": [(100, code)],
        ">": [(code + 1, 599)],
        ">=": [(code, 599)],
        "!=": [(100, code - 1), (code + 1, 599)],
    }[op]
    kept = [(low, high) for low, high in ranges if low <= high]
    if not kept:
        raise Unconvertible("no status code satisfies it")
    return ",".join(str(low) if low == high else f"{low}-{high}" for low, high in kept)


def _json_literal(value: str) -> str:
    """A Gatus value as a JSON literal: numbers and booleans stay, anything else is a string (Gatus compares
    strings unquoted: [BODY].status == UP)."""
    text = value.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text
    try:
        parsed = json.loads(text)
    except ValueError:
        return json.dumps(text)
    return text if isinstance(parsed, int | float | bool) or parsed is None else json.dumps(text)


def _json_path(path: str) -> str:
    """Gatus' [BODY].data[0].id as a JSON path ($.data[0].id); Gatus allows no filters there."""
    return "$" + (path if path.startswith((".", "[")) else "." + path)


KEYWORD_NOTE = "the keyword matches ignoring case (Gatus' pattern heeds it)"


def _body_condition(monitor: _Monitor, path: str, op: str, value: str, is_length: bool) -> str | None:
    if value.startswith(("pat(", "any(")) or value.startswith("has("):
        if not path and not is_length and op == "==" and value.startswith("pat(*") and value.endswith("*)"):
            keyword = value[5:-2]
            if keyword and "*" not in keyword and "keywordInBody" not in monitor.config:
                monitor.config["keywordInBody"] = keyword
                return KEYWORD_NOTE
        raise Unconvertible(
            "patterns and any() over a body have no counterpart but a *word* pattern on [BODY]"
        )
    if not path:
        raise Unconvertible(
            "an exact match of the whole body has no counterpart (a keyword or JSON path has)"
        )
    if "jsonPathAssertion" in monitor.config:
        raise Unconvertible("a monitor holds one JSON path assertion; this endpoint's first is kept")
    subject = _json_path(path) + (".length()" if is_length else "")
    literal = value.strip() if is_length else _json_literal(value)
    monitor.config["jsonPathAssertion"] = f"{subject} {op} {literal}"
    return None


def _certificate_condition(monitor: _Monitor, op: str, value: str) -> str:
    if op not in (">", ">="):
        raise Unconvertible("only a lower bound on the certificate's remaining validity converts")
    days = max(1, min(365, math.ceil(duration_seconds(value) / 86400)))
    monitor.config["enableSslCheck"] = True
    monitor.config["sslDaysUntilExpirationWarning"] = days
    monitor.alert_config["alertOnSslExpiration"] = True
    return (
        f"an expiring certificate (under {days} days) sends an ssl_expiring alert and leaves the monitor up; "
        "an expired one is down"
    )


def _response_time_condition(monitor: _Monitor, op: str, value: str) -> str:
    if op not in ("<", "<=") or not value.isdigit():
        raise Unconvertible("only an upper bound in milliseconds converts")
    limit = int(value) - (1 if op == "<" else 0)
    if limit < 1:
        raise Unconvertible("the bound must be at least 1 ms")
    monitor.config["degradedAfterMs"] = limit
    return f"a slower answer makes the monitor degraded (degradedAfterMs: {limit}), not down"


def apply_condition(monitor: _Monitor, condition: str) -> str | None:
    """Puts one condition into the monitor; returns a note when the meaning changes, raises when it cannot."""
    match = _CONDITION.match(condition)
    if not match:
        raise Unconvertible("not a condition this importer reads")
    placeholder, path, op, value = match["placeholder"], match["path"], match["op"], match["value"]
    is_length = bool(match["len"])
    if placeholder == "STATUS" and not path and not is_length and monitor.type == "http_request":
        monitor.config["expectedStatusCodes"] = _status_spec(op, value)
        return None
    if placeholder == "BODY" and monitor.type == "http_request":
        return _body_condition(monitor, path.removeprefix("."), op, value, is_length)
    if placeholder == "RESPONSE_TIME" and monitor.type == "http_request":
        return _response_time_condition(monitor, op, value)
    if placeholder == "CERTIFICATE_EXPIRATION" and monitor.type == "http_request":
        return _certificate_condition(monitor, op, value)
    if placeholder == "CONNECTED" and op == "==" and value in ("true", "false"):
        if value == "false" and monitor.type != "port_check":
            raise Unconvertible("only a port check can expect no connection")
        if value == "false":
            monitor.config["expectClosed"] = True
        return None
    raise Unconvertible(f"[{placeholder}] has no counterpart in {monitor.type} monitors")


def _kind_of(url: str) -> tuple[str, str, dict]:
    """(type, target, config) from the endpoint's URL scheme."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        return "http_request", url, {}
    if scheme in ("tcp", "udp"):
        try:
            port = parts.port
        except ValueError:
            port = None
        if not parts.hostname or not port:
            raise Unconvertible(f"a {scheme}:// URL needs a host and a port")
        return "port_check", parts.hostname, {"port": port, "protocol": scheme}
    if scheme == "icmp":
        host = parts.hostname or url.removeprefix("icmp://").strip("/")
        return "ping_host", host, {}
    if not scheme:
        raise Unconvertible("a URL without a scheme (a DNS endpoint?) has no counterpart")
    raise Unconvertible(f"{scheme}:// endpoints have no counterpart (http, https, tcp, udp and icmp convert)")


def _http_request_parts(
    monitor: _Monitor, endpoint: dict, conversion: Conversion, key: str, label: str
) -> list[Problem]:
    problems = []
    method = str(endpoint.get("method", "GET")).upper()
    if method not in _HTTP_METHODS:
        problems.append(Problem(label, f"method {method}", "not a method our HTTP check sends"))
    elif method != "GET":
        monitor.config["method"] = method
    if endpoint.get("headers"):
        monitor.config["headers"] = headers_without_secrets(conversion, endpoint["headers"], key, "gatus")
    if endpoint.get("body") not in (None, ""):
        monitor.config["body"] = str(endpoint["body"])
    if endpoint.get("graphql"):
        problems.append(
            Problem(label, "graphql", "the body is sent as given, not wrapped as a GraphQL query")
        )
    return problems


def _client_parts(monitor: _Monitor, client: Any, key: str, minutes: int) -> list[Problem]:
    problems = []
    if not isinstance(client, dict):
        return problems
    for name, value in client.items():
        if name == "timeout":
            seconds, note = timeout_seconds(duration_seconds(value), minutes)
            monitor.config["timeoutSeconds"] = seconds
            if note:
                problems.append(Problem(key, "client.timeout", note))
        else:
            problems.append(
                Problem(key, f"client.{name}", "client settings other than timeout have no counterpart")
            )
    return problems


def _endpoint_problems(endpoint: dict, key: str) -> list[Problem]:
    skipped = {
        "alerts": "alerts refer to Gatus' alerting section: set alertConfig and notificationProviders by hand",
        "ssh": "SSH endpoints have no counterpart",
        "ui": "display settings have no counterpart",
        "maintenance-windows": "add a maintenanceWindows entry by hand",
    }
    return [Problem(key, name, reason) for name, reason in skipped.items() if endpoint.get(name)]


def convert_endpoint(endpoint: dict, keys: Keys, conversion: Conversion, where: str) -> dict | None:
    name = clipped_name(str(endpoint.get("name") or endpoint.get("url") or ""))
    group = endpoint.get("group")
    key = keys.key_for(str(group) if group else None, name)
    label = f"{where} '{name}'"
    try:
        if endpoint.get("dns"):
            return _dns_endpoint(endpoint, key, name, label, conversion)
        check_type, target, config = _kind_of(str(endpoint.get("url") or ""))
    except Unconvertible as error:
        conversion.problems.append(Problem(label, "endpoint not imported", str(error)))
        return None
    monitor = _Monitor(check_type, config, {})
    minutes, note = frequency_minutes(
        duration_seconds(endpoint.get("interval") or f"{DEFAULT_INTERVAL_SECONDS}s")
    )
    problems = [Problem(label, "interval", note)] if note else []
    problems += _endpoint_problems(endpoint, label) + _client_parts(
        monitor, endpoint.get("client"), label, minutes
    )
    if check_type == "http_request":
        problems += _http_request_parts(monitor, endpoint, conversion, key, label)
    for position, condition in enumerate(endpoint.get("conditions") or []):
        try:
            note = apply_condition(monitor, str(condition))
        except Unconvertible as error:
            problems.append(Problem(label, f"conditions[{position}] '{condition}' not converted", str(error)))
            continue
        if note:
            problems.append(
                Problem(label, f"conditions[{position}] '{condition}' converted approximately", note)
            )
    conversion.problems += problems
    item = {"key": key, "name": name, "type": check_type, "target": target, "frequencyMinutes": minutes}
    if endpoint.get("enabled") is False:
        item["enabled"] = False
    item["config"] = monitor.config
    if monitor.alert_config:
        item["alertConfig"] = monitor.alert_config
    item["tags"] = [str(group)] if group else []
    return item


_DNS_CONDITION = re.compile(r"^\[(DNS_RCODE|BODY)\]\s*==\s*(.+)$")


def _dns_endpoint(endpoint: dict, key: str, name: str, label: str, conversion: Conversion) -> dict:
    """A Gatus DNS endpoint: its url is the resolver, dns.query-name the target; [DNS_RCODE] == X and
    [BODY] == value (any of the answers) convert, other conditions are listed."""
    query = endpoint["dns"] if isinstance(endpoint["dns"], dict) else {}
    config: dict[str, Any] = {"recordType": str(query.get("query-type") or "A").upper()}
    resolver = str(endpoint.get("url") or "").strip()
    if resolver:
        config["resolvers"] = [resolver]
    values = []
    for position, condition in enumerate(endpoint.get("conditions") or []):
        match = _DNS_CONDITION.match(str(condition).strip())
        if match and match.group(1) == "DNS_RCODE":
            config["expectedRcode"] = match.group(2).strip().upper()
        elif match:
            values.append(match.group(2).strip())
        else:
            conversion.problems.append(
                Problem(
                    label,
                    f"conditions[{position}] '{condition}' not converted",
                    "DNS checks compare the rcode and answers",
                )
            )
    if values:
        config["expectedValues"], config["match"] = values, "any"
    minutes, note = frequency_minutes(
        duration_seconds(endpoint.get("interval") or f"{DEFAULT_INTERVAL_SECONDS}s")
    )
    if note:
        conversion.problems.append(Problem(label, "interval", note))
    item = {"key": key, "name": name, "type": "dns", "target": str(query.get("query-name") or "").rstrip(".")}
    item.update({"frequencyMinutes": minutes, "config": config, "tags": []})
    if endpoint.get("group"):
        item["tags"] = [str(endpoint["group"])]
    if endpoint.get("enabled") is False:
        item["enabled"] = False
    return item


def convert(config: Any) -> Conversion:
    """A parsed Gatus config (its YAML as Python values) as our monitors, with what did not convert."""
    conversion = Conversion()
    if not isinstance(config, dict):
        conversion.problems.append(
            Problem("file", "not imported", "a Gatus config is a mapping with endpoints")
        )
        return conversion
    for section, value in config.items():
        if section != "endpoints" and value:
            reason = _SECTIONS_NOT_IMPORTED.get(section, "it configures Gatus itself, not what it monitors")
            conversion.problems.append(Problem(str(section), "section not imported", reason))
    endpoints = config.get("endpoints") or []
    if not isinstance(endpoints, list):
        conversion.problems.append(Problem("endpoints", "not imported", "endpoints is a list"))
        return conversion
    keys = Keys()
    for position, endpoint in enumerate(endpoints):
        where = f"endpoints[{position}]"
        if not isinstance(endpoint, dict):
            conversion.problems.append(Problem(where, "not imported", "an endpoint is a mapping"))
            continue
        try:
            item = convert_endpoint(endpoint, keys, conversion, where)
        except Unconvertible as error:  # an interval that is no duration
            conversion.problems.append(Problem(where, "endpoint not imported", str(error)))
            continue
        if item is not None:
            conversion.monitors.append(item)
    return conversion
