"""Reads stack.yml the way faas-cli does, for the local gateway and cron emulator."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_STACK = PROJECT_ROOT / "stack.yml"
_ENV_REFERENCE = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")


def expand_env(text: str) -> str:
    """faas-cli's ${VAR:-default} substitution."""
    return _ENV_REFERENCE.sub(lambda m: os.environ.get(m.group(1)) or (m.group(2) or ""), text)


@dataclass(frozen=True)
class StackFunction:
    name: str
    handler: Path
    lang: str
    annotations: dict = field(default_factory=dict)
    environment: dict = field(default_factory=dict)
    labels: dict = field(default_factory=dict)

    @property
    def min_replicas(self) -> int:
        """The processes the local runtime starts: OpenFaaS's own minimum for the function (1 unless set)."""
        return int(self.labels.get("com.openfaas.scale.min", 1))

    @property
    def source(self) -> Path:
        return self.handler / "main.py"

    @property
    def cron_schedule(self) -> str | None:
        if self.annotations.get("topic") == "cron-function":
            return self.annotations.get("schedule")
        return None


def load_stack(path: Path = DEFAULT_STACK) -> dict:
    return yaml.safe_load(expand_env(path.read_text()))


def stack_functions(path: Path = DEFAULT_STACK) -> list[StackFunction]:
    stack = load_stack(path)
    return [
        StackFunction(
            name=name,
            handler=(path.parent / spec["handler"]).resolve(),
            lang=spec.get("lang", ""),
            annotations={k: str(v) for k, v in (spec.get("annotations") or {}).items()},
            environment={k: str(v) for k, v in (spec.get("environment") or {}).items()},
            labels={k: str(v) for k, v in (spec.get("labels") or {}).items()},
        )
        for name, spec in (stack.get("functions") or {}).items()
    ]
