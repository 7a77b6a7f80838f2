"""`supercheck apply`: see the README's "Monitors as code" section (being built)."""

from __future__ import annotations

import click


@click.command("apply")
def command() -> None:
    """Not built yet."""
    raise click.UsageError("not built yet")
