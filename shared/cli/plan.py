"""`supercheck plan -f FILE`: what an apply would change, field by field, with drift and unmanaged resources."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import click

from shared.cli import environment, files, resources
from shared.cli.client import ApiClient
from shared.cli.validate import FILE_OPTION
from shared.rules.managed_plan import Action, Plan, build_plan

MAX_SHOWN = 80  # characters of a value shown in a change line


@dataclass
class Planned:
    """A plan with what it was computed from, so apply acts on exactly what was shown."""

    plan: Plan
    items: dict[tuple[str, str], resources.FileItem]
    state: resources.ManagedState
    loaded: files.Loaded

    def place(self, kind: str, key: str, field: str | None) -> str:
        """FILE:LINE:COLUMN: path of an item's field (or of the item), for errors that point into the file."""
        index = next(i for i, item in enumerate(self.loaded.data.get(kind) or []) if item.get("key") == key)
        parts = tuple(int(p) if p.isdigit() else p for p in field.split(".")) if field else ()
        problem = self.loaded.problem((kind, index, *parts), "")
        return f"{problem.file}:{problem.line}:{problem.column}: {problem.field}"


def compute(file: str, client: ApiClient) -> Planned:
    loaded = files.load_valid(file, environment.variables(), require_env=True)
    items = resources.file_items(loaded, environment.variables())
    state = resources.managed_state(client)
    plan = build_plan([item.desired for item in items], state.applied, resources.live_resources(client))
    return Planned(plan, {(item.desired.kind, item.desired.key): item for item in items}, state, loaded)


def _shown(value: Any) -> str:
    text = json.dumps(value, sort_keys=True) if value is not None else "(absent)"
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 3] + "..."


def _change_lines(action: Action) -> list[str]:
    return [
        f"      {change.path}: {_shown(change.before)} -> {_shown(change.after)}" for change in action.changes
    ]


def _action_lines(action: Action, prune: bool, created: dict) -> list[str]:
    name = f"{action.kind}.{action.key}"
    lines = []
    for change in action.drift:
        lines.append(
            f"  ! DRIFT {name}: {change.path} changed live since the last apply: "
            f"{_shown(change.before)} -> {_shown(change.after)}"
        )
    if action.action == "create":
        gone = " (deleted live since the last apply)" if action.live_gone else ""
        lines.append(f"  + {name} will be created{gone}")
        lines += [
            f"      {field}: {_shown(value)}"
            for field, value in created.items()
            if value not in (None, [], {})
        ]
    elif action.action == "update":
        lines += [f"  ~ {name} will be updated in place", *_change_lines(action)]
    elif action.action == "adopt":
        what = "and updated" if action.changes else "with no changes"
        lines += [f"  = {name} will be adopted (live {action.resource_id}) {what}", *_change_lines(action)]
    elif action.action == "delete":
        when = "will be deleted" if prune else "is no longer in the file; deleted only with --prune"
        lines.append(f"  - {name} {when}")
    return lines


def render(planned: Planned, prune: bool) -> str:
    plan = planned.plan
    lines = [
        line
        for action in plan.actions
        for line in _action_lines(action, prune, _created_fields(planned, action))
    ]
    for item in plan.unmanaged:
        label = item.display.get("name") or item.display.get("slug")
        lines.append(
            f"  ? unmanaged {item.kind} {label!r} ({item.id}): no key; `supercheck export` adopts it"
        )
    creates, updates = (
        len(plan.of("create")),
        len(plan.of("update")) + len([a for a in plan.of("adopt") if a.changes]),
    )
    deletes = len(plan.of("delete")) if prune else 0
    adopts = len(plan.of("adopt"))
    if not (creates or updates or deletes or adopts):
        lines.append("No changes. The live project matches the file.")
    else:
        summary = f"Plan: {creates} to create, {updates} to update, {deletes} to delete"
        lines.append(summary + (f", {adopts} to adopt." if adopts else "."))
    return "\n".join(lines)


def _created_fields(planned: Planned, action: Action) -> dict:
    item = planned.items.get((action.kind, action.key))
    return item.desired.display if item and action.action == "create" else {}


@click.command("plan")
@FILE_OPTION
@click.option("--prune", is_flag=True, help="show deletes of managed resources no longer in the file as such")
def command(file: str, prune: bool) -> None:
    """Compare the file with the live project: creates, updates field by field, deletes, drift, unmanaged."""
    with ApiClient() as client:
        planned = compute(file, client)
    click.echo(render(planned, prune))
