"""`supercheck export`: see the README's "Monitors as code" section (being built)."""

from __future__ import annotations

import click


@click.command("export")
def command() -> None:
    """Not built yet."""
    raise click.UsageError("not built yet")
