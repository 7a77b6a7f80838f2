"""`supercheck export [-o FILE]`: the live project written as a supercheck.yaml, so a set-up made by hand can
be adopted: keys from the state where managed, else from names (stable); masked secrets become ${VAR}s."""

from __future__ import annotations

import io
import re
import sys
from typing import Any

import click

from shared.cli import resources
from shared.cli.client import ApiClient
from shared.rules.managed_plan import IDENTITY_FIELD, KINDS, Live, compact, with_keys

MASK = "****"


def key_from_name(name: str) -> str:
    """A key made from a name: lower case, runs of anything else than a-z0-9 as one '-' (pure)."""
    key = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:90].strip("-")
    return key or "resource"


def assign_keys(live: list[Live], managed: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """Per kind, id -> key: the state's key where managed, else one from its name, made unique by a suffix
    in the order of (name, id), so exporting twice gives the same keys (pure)."""
    key_of: dict[str, dict[str, str]] = {kind: dict(managed.get(kind, {})) for kind in KINDS}
    for kind in KINDS:
        used = set(key_of[kind].values())
        pending = [item for item in live if item.kind == kind and item.id not in key_of[kind]]
        for item in sorted(pending, key=lambda i: (str(i.display.get(IDENTITY_FIELD[kind]) or ""), i.id)):
            base = key_from_name(str(item.display.get(IDENTITY_FIELD[kind]) or kind))
            key, n = base, 2
            while key in used:
                key, n = f"{base}-{n}", n + 1
            used.add(key)
            key_of[kind][item.id] = key
    return key_of


def variable_name(key: str, path: tuple) -> str:
    return re.sub(r"[^A-Z0-9]+", "_", "_".join([key, *map(str, path)]).upper()).strip("_")


def with_references(value: Any, key: str, path: tuple, found: list[str]) -> Any:
    """Masked values (a secret as reads show it) replaced by ${VAR}s named after key and field."""
    if isinstance(value, dict):
        return {name: with_references(item, key, (*path, name), found) for name, item in value.items()}
    if isinstance(value, list):
        return [with_references(item, key, (*path, i), found) for i, item in enumerate(value)]
    if isinstance(value, str) and MASK in value:
        found.append(variable_name(key, path))
        return "${" + found[-1] + "}"
    return value


def document(live: list[Live], key_of: dict[str, dict[str, str]]) -> tuple[dict, list[str]]:
    variables: list[str] = []
    data: dict[str, list] = {}
    for kind in KINDS:
        items = []
        for item in sorted((i for i in live if i.kind == kind), key=lambda i: key_of[kind][i.id]):
            key = key_of[kind][item.id]
            shown = compact(with_keys(kind, item.display, key_of))
            items.append({"key": key, **with_references(shown, key, (), variables)})
        if items:
            data[kind] = items
    return data, variables


def dump_yaml(data: dict) -> str:
    from ruamel.yaml import YAML

    writer = YAML(typ="safe", pure=True)
    writer.default_flow_style = False
    writer.sort_base_mapping_type_on_output = False
    out = io.StringIO()
    writer.dump(data, out)
    return out.getvalue()


@click.command("export")
@click.option(
    "-o", "--output", default=None, type=click.Path(dir_okay=False), help="file to write (default stdout)"
)
def command(output: str | None) -> None:
    """Write the live project as a file; masked secrets become ${VAR}s to set before apply."""
    with ApiClient() as client:
        state = resources.managed_state(client)
        live = resources.live_resources(client)
    managed: dict[str, dict[str, str]] = {kind: {} for kind in KINDS}
    for entry in state.applied:
        managed[entry.kind][entry.resource_id] = entry.key
    data, variables = document(live, assign_keys(live, managed))
    text = "# supercheck.yaml, exported from the live project\n" + dump_yaml(data)
    if output:
        with open(output, "w", encoding="utf-8") as handle:
            handle.write(text)
    else:
        sys.stdout.write(text)
    if variables:
        click.echo(f"secrets are ${{VAR}} references; set before apply: {', '.join(variables)}", err=True)
