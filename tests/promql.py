"""The PromQL that ships in docs/: the alert rules' and the Grafana dashboard's expressions, and the metric names
each selects (for the tests that check them against a real Prometheus and the real exposition)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
ALERT_RULES = ROOT / "docs" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "docs" / "grafana" / "supercheck.json"

# Grafana's variables, replaced by values of the right kind before Prometheus parses an expression.
GRAFANA_VARIABLES = {
    "__rate_interval": "1m",
    "__interval": "1m",
    "__range": "1d",
    "project": "x",
    "monitor": "x",
}
_KEYWORDS = {
    *(
        "and",
        "or",
        "unless",
        "bool",
        "offset",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ),
    *("inf", "nan"),
}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_NUMBER = re.compile(r"(?<![\w:])\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
_IDENTIFIER = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*(?!\s*\()(?![A-Za-z0-9_:])")


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects: identifiers left once strings, label matchers, ranges, grouping
    clauses, numbers, function calls and keywords are taken out."""
    text = _STRING.sub('""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = _GROUPING.sub(" ", text)
    text = _NUMBER.sub(" ", text)
    return {name for name in _IDENTIFIER.findall(text) if name not in _KEYWORDS}


def with_grafana_variables(expr: str, **values: str) -> str:
    """The expression as Grafana sends it, with `values` for the variables named (others: GRAFANA_VARIABLES)."""
    chosen = {**GRAFANA_VARIABLES, **values}
    return re.sub(r"\$\{?(\w+)\}?", lambda match: chosen[match.group(1)], expr)


def alert_rules() -> list[dict]:
    groups = yaml.safe_load(ALERT_RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def dashboard_panels() -> list[dict]:
    found = []
    for panel in dashboard()["panels"]:
        found.extend([panel, *panel.get("panels", [])])
    return [panel for panel in found if panel["type"] != "row"]


def row_expressions(row: str) -> list[tuple[str, str]]:
    """(panel title, expression) of the panels under one row (rows not collapsed: they follow it)."""
    found, current = [], None
    for panel in dashboard()["panels"]:
        if panel["type"] == "row":
            current = panel["title"]
        elif current == row:
            found.extend((panel["title"], target["expr"]) for target in panel["targets"])
    return found


def panel_expressions() -> list[tuple[str, str]]:
    return [(panel["title"], target["expr"]) for panel in dashboard_panels() for target in panel["targets"]]


def shipped_expressions() -> list[tuple[str, str]]:
    """(panel title or alert name, expression) for every panel target and alert rule."""
    return [*panel_expressions(), *((rule["alert"], rule["expr"]) for rule in alert_rules())]
