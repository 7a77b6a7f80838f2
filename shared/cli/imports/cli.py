"""`supercheck import gatus FILE` and `supercheck import kuma FILE`: another tool's config as a supercheck.yaml
on stdout (or -o FILE); every part that did not convert is listed on stderr with its reason."""

from __future__ import annotations

import json
from pathlib import Path

import click
import yaml

from shared.cli.exits import InvalidInput
from shared.cli.imports import Conversion, gatus, kuma


def _read(file: str, parse) -> object:
    try:
        text = Path(file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidInput(f"{file}: cannot read: {error}") from None
    try:
        return parse(text)
    except (ValueError, yaml.YAMLError) as error:  # json.JSONDecodeError is a ValueError
        raise InvalidInput(f"{file}: cannot parse: {error}") from None


def _emit(conversion: Conversion, source: str, tool: str, output: str | None) -> None:
    for problem in conversion.problems:
        click.echo(problem.line(source), err=True)
    text = conversion.yaml_text(
        f"Imported from {tool} ({Path(source).name}) by `supercheck import`; review it"
    )
    if output:
        Path(output).write_text(text, encoding="utf-8")
    else:
        click.echo(text, nl=False)
    click.echo(
        f"{len(conversion.monitors)} monitors converted, {len(conversion.problems)} parts not converted "
        "(or converted approximately) listed above",
        err=True,
    )
    if not conversion.monitors:
        raise InvalidInput(f"{source}: nothing to import")


OUTPUT = click.option("-o", "--output", type=click.Path(dir_okay=False), help="write here instead of stdout")


@click.group("import")
def command() -> None:
    """Convert another tool's monitors into a supercheck.yaml."""


@command.command("gatus")
@click.argument("file", type=click.Path(dir_okay=False))
@OUTPUT
def import_gatus(file: str, output: str | None) -> None:
    """A Gatus config.yaml's endpoints."""
    _emit(gatus.convert(_read(file, yaml.safe_load)), file, "Gatus", output)


@command.command("kuma")
@click.argument("file", type=click.Path(dir_okay=False))
@OUTPUT
def import_kuma(file: str, output: str | None) -> None:
    """An Uptime Kuma backup JSON's monitors."""
    _emit(kuma.convert(_read(file, json.loads)), file, "Uptime Kuma", output)
