"""`supercheck trigger --tag T | --id ID [--wait]`: runs deployed monitors now (POST /monitors/run) and, with
--wait, polls their runs (GET /runs?ids=) until they finalize; exit 1 when one ended down."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import click

from shared.cli.client import ApiClient
from shared.cli.exits import CheckFailed, InvalidInput, PlatformError

PASSING_RUN_STATUSES = frozenset({"up", "degraded"})  # unknown (nobody reported) confirms nothing: it fails
RUN_IDS_PER_READ = 100  # GET /runs' limit
# aggregate's deadline sweep is a once-a-minute cron: a run open this long past its deadline is one the
# platform failed to finalize, not one still being checked
SWEEP_SLACK = timedelta(seconds=90)


@dataclass(frozen=True)
class WaitOutcome:
    exit_code: int  # 0, 1 (a run ended down, or the checks did not report in time) or 3 (runs left open)
    message: str


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def describe_run(run: dict, names: dict[str, str]) -> str:
    """One line per run: the monitor, its verdict, and each location that did not come back up."""
    name = names.get(run["monitorId"], run["monitorId"])
    status = run["status"] or "open"
    details = [
        f"{result['location']} {result['status']}: {result.get('message') or ''}".rstrip(": ")
        for result in run.get("results") or []
        if result["status"] not in PASSING_RUN_STATUSES
    ]
    details += [f"{location} missing" for location in run.get("missingLocations") or [] if run["finalizedAt"]]
    return f"{name}: {status}" + (f" ({'; '.join(details)})" if details else "")


def wait_outcome(
    runs: Sequence[dict], now: datetime, names: dict[str, str], timed_out: bool
) -> WaitOutcome | None:
    """Pure: None while runs are open and --timeout has not passed; else the exit code and why (docs/ci.md).

    At the timeout, an open run still inside its deadline means its checks did not report in time: the gate
    fails (1). A run open well past its deadline means the platform is not finalizing runs (3): every run is
    finalized by its deadline, whether its locations reported or not.
    """
    open_runs = [run for run in runs if not run["finalizedAt"]]
    if open_runs and not timed_out:
        return None
    down = [run for run in runs if run["finalizedAt"] and run["status"] not in PASSING_RUN_STATUSES]
    lines = [describe_run(run, names) for run in down]
    if open_runs:
        listed = ", ".join(
            f"{names.get(run['monitorId'], run['monitorId'])} (run {run['id']})" for run in open_runs
        )
        if any(_parse_time(run["deadline"]) + SWEEP_SLACK < now for run in open_runs):
            return WaitOutcome(
                3, f"runs open past their deadline; the platform is not finalizing them: {listed}"
            )
        return WaitOutcome(1, "\n".join([f"timed out waiting for: {listed}", *lines]))
    if down:
        return WaitOutcome(1, f"{len(down)} of {len(runs)} runs ended down:\n  " + "\n  ".join(lines))
    return WaitOutcome(0, f"{len(runs)} run{'s' if len(runs) != 1 else ''} ended up")


def read_runs(client: ApiClient, run_ids: Sequence[str]) -> list[dict]:
    runs: list[dict] = []
    for start in range(0, len(run_ids), RUN_IDS_PER_READ):
        chunk = run_ids[start : start + RUN_IDS_PER_READ]
        runs += client.get("/runs", ids=",".join(chunk))["data"]
    return runs


def _monitor_names(client: ApiClient, monitor_ids: Sequence[str], tag: str | None) -> dict[str, str]:
    """The started monitors' names: the tag's list page by page, and each monitor given by id outside it."""
    wanted = set(monitor_ids)
    found = (
        {item["id"]: item["name"] for item in client.pages("/monitors", tag=tag) if item["id"] in wanted}
        if tag
        else {}
    )
    for monitor_id in wanted - set(found):
        found[monitor_id] = client.get(f"/monitors/{monitor_id}")["name"]
    return found


def _wait(
    client: ApiClient, run_ids: list[str], names: dict[str, str], timeout: float, poll: float
) -> WaitOutcome:
    give_up = time.monotonic() + timeout
    shown: set[str] = set()
    while True:
        runs = read_runs(client, run_ids)
        if len(runs) != len(run_ids):
            raise PlatformError("the server no longer knows some of the runs it started (monitors deleted?)")
        for run in runs:
            if run["finalizedAt"] and run["id"] not in shown:
                shown.add(run["id"])
                click.echo(describe_run(run, names))
        timed_out = time.monotonic() >= give_up
        outcome = wait_outcome(runs, datetime.now().astimezone(), names, timed_out)
        if outcome is not None:
            return outcome
        time.sleep(max(0.0, min(poll, give_up - time.monotonic())))


@click.command("trigger")
@click.option("--tag", help="run the deployed monitors with this tag")
@click.option("--id", "monitor_ids", multiple=True, help="run this deployed monitor (its id; repeatable)")
@click.option("--wait", is_flag=True, help="block until the runs finalize; exit 1 if any ended down")
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=600,
    show_default=True,
    help="seconds --wait waits at most",
)
@click.option("--poll-interval", type=click.FloatRange(min=0.1), default=2, hidden=True)
def command(
    tag: str | None, monitor_ids: tuple[str, ...], wait: bool, timeout: float, poll_interval: float
) -> None:
    """Run deployed monitors now (after a deploy); with --wait, wait for their verdicts."""
    if not tag and not monitor_ids:
        raise click.UsageError("give --tag, --id, or both")
    body = {"monitorIds": list(monitor_ids)} if monitor_ids else {}
    if tag:
        body["tag"] = tag
    with ApiClient() as client:
        started = client.post("/monitors/run", body)
        run_ids = [str(run_id) for run_id in started["runIds"]]
        if not run_ids:
            raise InvalidInput(f"no monitor matched{f' tag {tag}' if tag else ''}: nothing was run")
        names = _monitor_names(client, started["monitorIds"], tag)
        click.echo(
            f"started {len(run_ids)} run{'s' if len(run_ids) != 1 else ''}: {', '.join(sorted(names.values()))}"
        )
        if not wait:
            return
        outcome = _wait(client, run_ids, names, timeout, poll_interval)
    if outcome.exit_code == 1:
        raise CheckFailed(outcome.message)
    if outcome.exit_code == 3:
        raise PlatformError(outcome.message)
    click.echo(outcome.message)
