"""`supercheck validate -f FILE`: the file checked offline by the API's own rules, every problem with its place."""

from __future__ import annotations

import click

from shared.cli import files
from shared.cli.exits import InvalidInput

FILE_OPTION = click.option(
    "-f",
    "--file",
    "file",
    default="supercheck.yaml",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="the monitors file (YAML or JSON)",
)


@click.command("validate")
@FILE_OPTION
def command(file: str) -> None:
    """Check a file offline: every error as FILE:LINE:COLUMN: field: message; exit 2 on any."""
    loaded = files.load(file)
    problems = files.validate(loaded)
    for note in problems.notes:
        click.echo(f"{note} (not checked offline: it depends on an unset ${{VAR}})", err=True)
    if problems.errors:
        raise InvalidInput("\n".join(str(problem) for problem in problems.errors))
    counts = ", ".join(
        f"{len(loaded.data.get(kind) or [])} {kind}"
        for kind in ("monitors", "notificationProviders", "maintenanceWindows", "statusPages")
    )
    click.echo(f"{file}: valid ({counts})")
