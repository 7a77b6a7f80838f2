"""Uptime Kuma backup JSON → supercheck monitors: http, keyword, json-query, port, ping and dns monitors with their
status codes, keyword, JSON query, timeout, basic auth (as ${ENV} references) and tags; the rest is listed."""

from __future__ import annotations

import json
from typing import Any

from shared.cli.imports import (
    Conversion,
    Keys,
    Problem,
    clipped_name,
    frequency_minutes,
    headers_without_secrets,
    secret_reference,
    timeout_seconds,
)

_HTTP_TYPES = {"http", "keyword", "json-query"}
_HTTP_METHODS = {"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"}
_DEFAULT_PACKET_SIZE = 56
_OPERATORS = ("==", "!=", "<", "<=", ">", ">=")
_MAX_REDIRECTS = 20
# Fields of a Kuma monitor with no counterpart here, listed when set (their "unset" values differ per field).
_UNSUPPORTED_FIELDS = {
    "description": "monitors have no description",
    "ignoreTls": "certificates are always verified",
    "proxyId": "checks use no proxy",
    "mtls": "client certificates are not supported",
    "resendInterval": "set alertConfig.reminderInterval by hand (it counts runs, not minutes)",
    "httpBodyEncoding": None,  # handled below: json and form bodies are sent as given
}


class Unconvertible(ValueError):
    """A monitor, or one of its settings, with no counterpart; the message says why."""


def _json_object(text: Any, what: str) -> dict:
    if not text:
        return {}
    if isinstance(text, dict):
        return text
    try:
        parsed = json.loads(text)
    except ValueError:
        raise Unconvertible(f"{what} is not JSON") from None
    if not isinstance(parsed, dict):
        raise Unconvertible(f"{what} is not a JSON object")
    return parsed


def _json_query(query: str, expected: Any, operator: Any = None) -> str:
    """Kuma's JSONata query, when it is a plain path (a.b[0].c or $.a.b), as our JSON path assertion; Kuma
    compares as text, so a number or boolean stays a number or boolean only when it reads as one."""
    path = query.strip()
    if not path or any(char in path for char in "()&|?:+*/\"' ") and not path.startswith("$."):
        raise Unconvertible(f"the JSONata expression '{query}' is not a plain path")
    subject = path if path.startswith("$") else "$." + path
    op = operator or "=="
    if op not in _OPERATORS:
        raise Unconvertible(f"the operator '{op}' has no counterpart (== != < <= > >= do)")
    text = "" if expected is None else str(expected)
    try:
        literal = json.loads(text)
        shown = text if isinstance(literal, int | float | bool) else json.dumps(text)
    except ValueError:
        shown = json.dumps(text)
    return f"{subject} {op} {shown}"


def _status_codes(codes: Any) -> str:
    given = [str(code).strip() for code in codes or [] if str(code).strip()]
    return ",".join(given) or "200-299"


def _auth(conversion: Conversion, monitor: dict, key: str) -> dict | None:
    method = monitor.get("authMethod")
    if method in (None, "", "none") and not monitor.get("basic_auth_user"):
        return None
    if method not in (None, "", "basic"):
        raise Unconvertible(f"{method} authentication is not supported (basic and bearer are)")
    password = str(monitor.get("basic_auth_pass") or "")
    if not password or not monitor.get("basic_auth_user"):
        raise Unconvertible("basic authentication needs a username and a password")
    return {
        "type": "basic",
        "username": str(monitor["basic_auth_user"]),
        "password": secret_reference(conversion, password, "kuma", key, "password"),
    }


def _body_assertion(monitor: dict) -> dict:
    """A keyword monitor's keyword, a json-query monitor's query, as our HTTP config's body assertion."""
    if monitor.get("type") == "keyword":
        if not monitor.get("keyword"):
            raise Unconvertible("a keyword monitor without a keyword")
        return {
            "keywordInBody": str(monitor["keyword"]),
            "keywordInBodyShouldBePresent": not monitor.get("invertKeyword"),
        }
    if monitor.get("type") == "json-query":
        query = str(monitor.get("jsonPath") or "")
        return {
            "jsonPathAssertion": _json_query(
                query, monitor.get("expectedValue"), monitor.get("jsonPathOperator")
            )
        }
    return {}


def _http_config(conversion: Conversion, monitor: dict, key: str, where: str) -> dict:
    config: dict[str, Any] = {"expectedStatusCodes": _status_codes(monitor.get("accepted_statuscodes"))}
    method = str(monitor.get("method") or "GET").upper()
    if method not in _HTTP_METHODS:
        raise Unconvertible(f"method {method} is not one our HTTP check sends")
    if method != "GET":
        config["method"] = method
    headers = _json_object(monitor.get("headers"), "headers")
    if headers:
        config["headers"] = headers_without_secrets(conversion, headers, key, "kuma")
    if monitor.get("body"):
        config["body"] = str(monitor["body"])
    config.update(_body_assertion(monitor))
    if "keywordInBody" in config:
        conversion.problems.append(
            Problem(where, "keyword converted approximately", "it matches ignoring case (Kuma's heeds it)")
        )
    if monitor.get("maxredirects") is not None:
        redirects = int(monitor["maxredirects"])
        config["maxRedirects"] = min(redirects, _MAX_REDIRECTS)
        if redirects > _MAX_REDIRECTS:
            conversion.problems.append(
                Problem(where, "maxredirects", f"at most {_MAX_REDIRECTS} redirects are followed")
            )
    if monitor.get("expiryNotification"):
        config["enableSslCheck"] = True
    auth = _auth(conversion, monitor, key)
    if auth:
        config["auth"] = auth
    return config


def _port_config(monitor: dict) -> dict:
    if not monitor.get("port"):
        raise Unconvertible("a port monitor needs a port")
    config: dict[str, Any] = {"port": int(monitor["port"])}
    if monitor.get("upsideDown"):
        config["expectClosed"] = True
    return config


def _ping_config(conversion: Conversion, monitor: dict, where: str) -> dict:
    size = monitor.get("packetSize")
    if size not in (None, _DEFAULT_PACKET_SIZE):
        conversion.problems.append(Problem(where, f"packetSize {size}", "pings are sent at the default size"))
    return {}


def _kind(conversion: Conversion, monitor: dict, key: str, where: str) -> tuple[str, str, dict]:
    kind = monitor.get("type")
    if kind in _HTTP_TYPES:
        if monitor.get("upsideDown"):
            raise Unconvertible("upside-down mode applies to port monitors only here")
        return "http_request", str(monitor.get("url") or ""), _http_config(conversion, monitor, key, where)
    if kind == "port":
        return "port_check", str(monitor.get("hostname") or ""), _port_config(monitor)
    if kind == "ping":
        if monitor.get("upsideDown"):
            raise Unconvertible("upside-down mode applies to port monitors only here")
        return "ping_host", str(monitor.get("hostname") or ""), _ping_config(conversion, monitor, where)
    if kind == "dns":
        if monitor.get("upsideDown"):
            raise Unconvertible("upside-down mode applies to port monitors only here")
        return "dns", str(monitor.get("hostname") or ""), _dns_config(monitor)
    if kind == "group":
        raise Unconvertible(
            "groups have no counterpart: their monitors are imported with the group's name as a tag"
        )
    raise Unconvertible(
        f"'{kind}' monitors have no counterpart (http, keyword, json-query, port, ping and dns convert)"
    )


def _dns_config(monitor: dict) -> dict:
    """Kuma's record type and resolver(s) (comma-separated, on its port); Kuma checks only that an answer comes."""
    config: dict[str, Any] = {"recordType": str(monitor.get("dns_resolve_type") or "A").upper()}
    port = int(monitor.get("port") or 53)
    servers = [s.strip() for s in str(monitor.get("dns_resolve_server") or "").split(",") if s.strip()]
    if servers:
        config["resolvers"] = [
            (f"[{s}]:{port}" if ":" in s else f"{s}:{port}") if port != 53 else s for s in servers
        ]
    return config


def _tags(monitor: dict, groups: dict[Any, str]) -> list[str]:
    tags = []
    for tag in monitor.get("tags") or []:
        name = str(tag.get("name") if isinstance(tag, dict) else tag).strip()
        value = str(tag.get("value") or "").strip() if isinstance(tag, dict) else ""
        tags.append(f"{name}:{value}" if value else name)
    if monitor.get("parent") in groups:
        tags.append(groups[monitor["parent"]])
    return list(dict.fromkeys(tag for tag in tags if tag))[:20]


def _unsupported(conversion: Conversion, monitor: dict, where: str) -> None:
    for field, reason in _UNSUPPORTED_FIELDS.items():
        if reason and monitor.get(field):
            conversion.problems.append(Problem(where, field, reason))
    encoding = monitor.get("httpBodyEncoding")
    if monitor.get("body") and encoding not in (None, "", "json"):
        conversion.problems.append(
            Problem(where, f"httpBodyEncoding {encoding}", "the body is sent as given")
        )


def convert_monitor(
    monitor: dict, keys: Keys, conversion: Conversion, groups: dict, where: str
) -> dict | None:
    name = clipped_name(str(monitor.get("name") or ""))
    label = f"{where} '{name}'"
    key = keys.key_for(name)
    try:
        check_type, target, config = _kind(conversion, monitor, key, label)
    except Unconvertible as error:
        conversion.problems.append(Problem(label, "monitor not imported", str(error)))
        return None
    _unsupported(conversion, monitor, label)
    minutes, note = frequency_minutes(float(monitor.get("interval") or 60))
    if note:
        conversion.problems.append(Problem(label, "interval", note))
    if monitor.get("timeout") and check_type != "ping_host":  # Kuma's ping keeps its own timeout
        config["timeoutSeconds"], note = timeout_seconds(float(monitor["timeout"]), minutes)
        if note:
            conversion.problems.append(Problem(label, "timeout", note))
    item: dict[str, Any] = {"key": key, "name": name, "type": check_type, "target": target}
    item["frequencyMinutes"] = minutes
    if monitor.get("active") in (False, 0):
        item["enabled"] = False
    item["config"] = config
    retries = int(monitor.get("maxretries") or 0)
    if retries:
        # Kuma retries before calling a monitor down; here, failures in a row before an alert
        item["alertConfig"] = {"failureThreshold": min(retries + 1, 10)}
    item["tags"] = _tags(monitor, groups)
    return item


def convert(backup: Any) -> Conversion:
    """A parsed Uptime Kuma backup (its JSON as Python values) as our monitors, with what did not convert."""
    conversion = Conversion()
    if not isinstance(backup, dict) or not isinstance(backup.get("monitorList"), list):
        conversion.problems.append(
            Problem("file", "not imported", "a Kuma backup is an object with a monitorList")
        )
        return conversion
    for notification in backup.get("notificationList") or []:
        name = notification.get("name") if isinstance(notification, dict) else notification
        conversion.problems.append(
            Problem(
                f"notificationList '{name}'",
                "notification not imported",
                "its secrets are in the backup in plain text: add it as a notificationProvider by hand",
            )
        )
    monitors = backup["monitorList"]
    groups = {
        m.get("id"): str(m.get("name")) for m in monitors if isinstance(m, dict) and m.get("type") == "group"
    }
    keys = Keys()
    for position, monitor in enumerate(monitors):
        where = f"monitorList[{position}]"
        if not isinstance(monitor, dict):
            conversion.problems.append(Problem(where, "not imported", "a monitor is an object"))
            continue
        try:
            item = convert_monitor(monitor, keys, conversion, groups, where)
        except (Unconvertible, ValueError, TypeError) as error:  # a number field that holds no number
            conversion.problems.append(Problem(where, "monitor not imported", str(error)))
            continue
        if item is not None:
            conversion.monitors.append(item)
    return conversion
