"""`supercheck import`: pure converters from other tools' configs (Gatus, Uptime Kuma) to a supercheck.yaml,
and what they share: stable keys, intervals, secrets turned into ${ENV} references, the list of what was left."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from shared.checks.credentials import is_sensitive_header

MAX_KEY_LENGTH = 100  # shared/cli/document.py's KEY_PATTERN
MAX_NAME_LENGTH = 200
MAX_TIMEOUT_SECONDS = 60  # shared/checks/base.py's MAX_CHECK_SECONDS
MAX_FREQUENCY_MINUTES = 1440
# The API's default RUN_DEADLINE_GRACE_SECONDS: a check's timeout must leave it free in every interval.
DEADLINE_GRACE_SECONDS = 30
MAX_TAGS = 20
_NOT_KEY = re.compile(r"[^a-z0-9._-]+")
_ENV_NAME = re.compile(r"[^A-Z0-9]+")
_ENV_REFERENCE = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}")


@dataclass(frozen=True)
class Problem:
    """Something of the source that is not in the output as it was: where, what, and why."""

    where: str
    what: str
    reason: str

    def line(self, source: str) -> str:
        return f"{source}: {self.where}: {self.what}: {self.reason}"


@dataclass
class Conversion:
    """A supercheck.yaml's monitors, and every part of the source they do not carry (or carry approximately)."""

    monitors: list[dict] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    # ${NAME} references the output holds instead of a secret the source had in plain text
    variables: list[str] = field(default_factory=list)

    def document(self) -> dict:
        return {"monitors": self.monitors}

    def yaml_text(self, header: str) -> str:
        comments = [f"# {header}"]
        if self.variables:
            comments.append(
                "# Secrets are referenced, not copied: set these variables before `supercheck apply`:"
            )
            comments += [f"#   {name}" for name in self.variables]
        body = yaml.safe_dump(self.document(), sort_keys=False, allow_unicode=True, width=110)
        return "\n".join(comments) + "\n" + body


class Keys:
    """Stable keys from names: lower-case, other characters as '-', a numeric suffix where two names meet."""

    def __init__(self) -> None:
        self._taken: set[str] = set()

    def key_for(self, *parts: str | None) -> str:
        text = "-".join(part for part in parts if part).lower()
        base = _NOT_KEY.sub("-", text).strip("._-")[:MAX_KEY_LENGTH].strip("._-") or "monitor"
        key, number = base, 1
        while key in self._taken:
            number += 1
            suffix = f"-{number}"
            key = base[: MAX_KEY_LENGTH - len(suffix)].strip("._-") + suffix
        self._taken.add(key)
        return key


def frequency_minutes(seconds: float) -> tuple[int, str | None]:
    """Our schedule's unit is the minute: (minutes, why it differs from the source, or None)."""
    minutes = min(max(1, math.ceil(seconds / 60)), MAX_FREQUENCY_MINUTES)
    if minutes * 60 == seconds:
        return minutes, None
    return minutes, f"every {seconds:g} s becomes every {minutes} min (monitors run once a minute at most)"


def timeout_seconds(seconds: float, minutes: int) -> tuple[int, str | None]:
    """A timeout in whole seconds that lets a run every `minutes` report in time (shared/rules/deadlines.py)."""
    room = int(minutes * 60 - DEADLINE_GRACE_SECONDS)
    whole = min(max(1, math.ceil(seconds)), MAX_TIMEOUT_SECONDS, room)
    if whole == seconds:
        return whole, None
    return whole, (
        f"a timeout of {seconds:g} s becomes {whole} s (whole seconds, at most {MAX_TIMEOUT_SECONDS}, and "
        f"{DEADLINE_GRACE_SECONDS} s under the {minutes} min frequency for the result to be reported)"
    )


def env_name(*parts: str) -> str:
    return _ENV_NAME.sub("_", "_".join(parts).upper()).strip("_")


def is_reference(value: str) -> bool:
    """A value that is already a ${VAR} reference (both Gatus and our files resolve them)."""
    return bool(_ENV_REFERENCE.fullmatch(value.strip()))


def secret_reference(conversion: Conversion, value: str, *name_parts: str) -> str:
    """A secret as the file may hold it: a ${VAR} reference, never the value (which the source had in plain text)."""
    if is_reference(value):
        return value.strip()
    name = env_name(*name_parts)
    if name not in conversion.variables:
        conversion.variables.append(name)
    return "${" + name + "}"


def headers_without_secrets(conversion: Conversion, headers: dict[str, Any], key: str, source: str) -> dict:
    """Headers with every sensitive value (Authorization, X-Api-Key...) replaced by a ${VAR} reference."""
    kept = {}
    for name, value in headers.items():
        text = str(value)
        kept[str(name)] = (
            secret_reference(conversion, text, source, key, name) if is_sensitive_header(str(name)) else text
        )
    return kept


def clipped_name(name: str) -> str:
    return name.strip()[:MAX_NAME_LENGTH] or "unnamed"
