"""The CLI's exit codes, one meaning each, and one exception class per code that main() turns into it."""

from __future__ import annotations

import click

OK = 0
CHECK_FAILED = 1  # a check failed, or a run ended down
INVALID_INPUT = 2  # the file or the arguments are invalid (click's own usage errors exit 2 as well)
PLATFORM_ERROR = 3  # the server is unreachable, refused the key, or answered 5xx


class CliError(click.ClickException):
    """An error the CLI reports as its message on stderr and an exit code; subclasses fix the code. A
    ClickException, so click's standalone mode (the console script, CliRunner) exits with that code."""

    exit_code = PLATFORM_ERROR

    def show(self, file=None) -> None:
        click.echo(self.message, err=True)


class CheckFailed(CliError):
    exit_code = CHECK_FAILED


class InvalidInput(CliError):
    """The file or the arguments: the message already points at FILE:LINE:COLUMN where it can."""

    exit_code = INVALID_INPUT


class PlatformError(CliError):
    exit_code = PLATFORM_ERROR


class ApiRefused(InvalidInput):
    """The API refused a request (4xx other than 401/403): what was sent is wrong, not the platform."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None):
        super().__init__(f"the API refused the request ({status} {code}): {message}")
        self.status = status
        self.code = code
        self.api_message = message
        self.field = field
