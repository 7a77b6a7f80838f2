"""The `supercheck` console script: one click group and its subcommands, registered here in one place. Errors
are CliErrors (shared/cli/exits.py), which click's standalone mode turns into their message and exit code."""

from __future__ import annotations

import importlib

import click

# Each module defines `command`, a click command; one line each, so adding a subcommand touches one line.
SUBCOMMAND_MODULES = (
    "shared.cli.validate",
    "shared.cli.schema",
    "shared.cli.plan",
    "shared.cli.apply",
    "shared.cli.export",
    "shared.cli.testing",
    "shared.cli.trigger",
    "shared.cli.imports.cli",
)

HELP = """Monitors as code for supercheck: validate, plan and apply a supercheck.yaml, test its monitors once,
trigger deployed ones, export a project, import Gatus or Uptime Kuma monitors.

\b
Exit codes:
  0  success
  1  a check failed, or a run ended down
  2  the file or the arguments are invalid
  3  a platform error: server unreachable, authentication refused, or a 5xx

The server is $SUPERCHECK_URL (default http://127.0.0.1:8080), the key $SUPERCHECK_API_KEY."""


@click.group(help=HELP, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    pass


for _name in SUBCOMMAND_MODULES:
    cli.add_command(importlib.import_module(_name).command)


def main() -> None:
    cli(prog_name="supercheck")


if __name__ == "__main__":
    main()
