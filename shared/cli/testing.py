"""`supercheck test -f FILE`: each monitor of the file checked once per location by the check functions
(POST /monitors/test, which stores nothing), with the human table, JUnit, JSON and GitHub summary reports."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import click

from shared.checks.spec import TRIAL_LOCATION
from shared.cli import environment, files, reports
from shared.cli.client import ApiClient
from shared.cli.exits import ApiRefused, CheckFailed, InvalidInput
from shared.cli.validate import FILE_OPTION

# Trials at once: each holds one request open for as long as its check runs (its timeout at most).
PARALLEL_TRIALS = 8
# A trial answers within its check's timeout (60 s at most) and the check function's own slack.
TRIAL_REQUEST_SECONDS = 330


@dataclass(frozen=True)
class Trial:
    """One monitor of the file at one location: what POST /monitors/test is sent."""

    monitor: dict
    location: str

    def body(self) -> dict:
        monitor = self.monitor
        return {
            "type": monitor["type"],
            "target": monitor["target"],
            "config": monitor.get("config") or {},
            "location": self.location,
        }


def selected_monitors(monitors: Sequence[dict], tags: Sequence[str]) -> list[dict]:
    """The monitors carrying any of tags (all of them when no tag is given)."""
    if not tags:
        return list(monitors)
    return [monitor for monitor in monitors if set(tags) & set(monitor.get("tags") or [])]


def trials_of(monitors: Sequence[dict], locations: Sequence[str]) -> list[Trial]:
    """Each monitor at the locations asked for, else at those its locationConfig names, else once, direct."""
    planned = []
    for monitor in monitors:
        named = (monitor.get("locationConfig") or {}).get("locations") or []
        for location in locations or named or [TRIAL_LOCATION]:
            planned.append(Trial(monitor, location))
    return planned


def case_of(trial: Trial, outcome: dict | None, refusal: ApiRefused | None = None) -> reports.CaseResult:
    """A trial's answer (or the API's refusal of it) as a report's case."""
    from shared.security import mask_target

    monitor = trial.monitor
    common = {
        "key": monitor["key"],
        "name": monitor.get("name") or monitor["key"],
        "type": monitor["type"],
        "target": mask_target(monitor["target"]),
        "location": trial.location,
    }
    if refusal is not None:
        where = (
            f"{refusal.field}: "
            if refusal.field and not refusal.api_message.startswith(refusal.field)
            else ""
        )
        return reports.CaseResult(**common, status=reports.INVALID, message=where + refusal.api_message)
    assert outcome is not None
    return reports.CaseResult(
        **common,
        status=outcome["status"],
        message=outcome.get("message") or "",
        response_time_ms=outcome.get("responseTimeMs"),
        status_code=outcome.get("statusCode"),
    )


def _run_one(client: ApiClient, trial: Trial) -> reports.CaseResult:
    try:
        return case_of(trial, client.post("/monitors/test", trial.body()))
    except ApiRefused as refusal:  # a platform error (exit 3) is not caught: the whole run stops
        return case_of(trial, None, refusal)


def run_trials(client: ApiClient, planned: Sequence[Trial]) -> list[reports.CaseResult]:
    with ThreadPoolExecutor(max_workers=PARALLEL_TRIALS) as pool:
        return list(pool.map(lambda trial: _run_one(client, trial), planned))


def _write_reports(suite: reports.Suite, junit: str | None, json_file: str | None, github: bool) -> None:
    stamp = datetime.now(UTC).replace(microsecond=0, tzinfo=None).isoformat()
    if junit:
        Path(junit).write_text(reports.junit_xml([suite], stamp), encoding="utf-8")
    if json_file:
        Path(json_file).write_text(reports.json_report([suite], stamp), encoding="utf-8")
    if github:
        summary = environment.get("GITHUB_STEP_SUMMARY")
        if not summary:
            click.echo(
                "--github: GITHUB_STEP_SUMMARY is not set (outside GitHub Actions?); no summary written",
                err=True,
            )
            return
        with open(summary, "a", encoding="utf-8") as out:  # appended: other steps write there too
            out.write(reports.github_summary([suite]))


def verdict(suite: reports.Suite) -> None:
    """Raises with the exit code the results call for: 2 when the platform refused a monitor, 1 when a check
    failed; returns when all passed."""
    line = reports.summary_line([suite])
    if suite.errors:
        raise InvalidInput(f"{suite.file}: {line}")
    if suite.failures:
        raise CheckFailed(f"{suite.file}: {line}")


@click.command("test")
@FILE_OPTION
@click.option(
    "--location",
    "locations",
    multiple=True,
    help="run at this location (repeatable); default: "
    "each monitor's locationConfig.locations, else once from the API's own region ('direct')",
)
@click.option(
    "--tag", "tags", multiple=True, help="only the monitors with this tag (repeatable: any of them)"
)
@click.option("--junit", type=click.Path(dir_okay=False), help="write a JUnit XML report to this file")
@click.option("--json", "json_file", type=click.Path(dir_okay=False), help="write a JSON report to this file")
@click.option("--github", is_flag=True, help="append a Markdown job summary to $GITHUB_STEP_SUMMARY")
def command(
    file: str,
    locations: tuple[str, ...],
    tags: tuple[str, ...],
    junit: str | None,
    json_file: str | None,
    github: bool,
) -> None:
    """Run each monitor of the file once, now, storing nothing; exit 1 if any check failed."""
    loaded = files.load_valid(file, require_env=True)
    data = files.resolve(loaded.data, environment.variables())
    monitors = selected_monitors(data.get("monitors") or [], tags)
    if not monitors:
        what = f"with tag {', '.join(tags)}" if tags else "at all"
        raise InvalidInput(f"{file}: no monitor {what}")
    with ApiClient(timeout=TRIAL_REQUEST_SECONDS) as client:
        suite = reports.Suite(file, run_trials(client, trials_of(monitors, locations)))
    click.echo(reports.human_table([suite]), nl=False)
    _write_reports(suite, junit, json_file, github)
    verdict(suite)
