"""`supercheck schema`: the JSON Schema of a supercheck.yaml, generated from the API's models, for editors."""

from __future__ import annotations

import json

import click

from shared.cli.document import json_schema


@click.command("schema")
def command() -> None:
    """Print the file's JSON Schema (e.g. for yaml-language-server: `# yaml-language-server: $schema=...`)."""
    click.echo(json.dumps(json_schema(), indent=2))
