"""`supercheck apply -f FILE [--prune] [--yes] [--message M]`: the plan carried out through the API, then
recorded on the server (compare-and-set) with an audit entry; an apply with nothing to do writes nothing."""

from __future__ import annotations

import os
import re

import click

from shared.cli import environment, resources
from shared.cli.client import ApiClient
from shared.cli.exits import ApiRefused, InvalidInput, PlatformError
from shared.cli.plan import Planned, compute, render
from shared.cli.validate import FILE_OPTION
from shared.rules.managed_plan import (
    KINDS,
    Action,
    compact,
    digest_matches,
    secret_digest,
    with_ids,
    with_keys,
)

WRITES = ("create", "update", "adopt")


def _desired_state(item: resources.FileItem, applied_digests: dict) -> dict:
    """The file's item as written (references unresolved) and a digest per resolved reference: no secret.
    A digest that still matches is kept, so an unchanged secret records the same state."""
    digests = {}
    for path, value in item.desired.secrets.items():
        kept = applied_digests.get(path)
        digests[path] = kept if digest_matches(value, kept) else secret_digest(value, os.urandom(16))
    return {"item": item.written, "secretDigests": digests}


def _new_states(planned: Planned) -> dict[tuple[str, str], dict]:
    applied = {(entry.kind, entry.key): entry for entry in planned.state.applied}
    return {
        key: _desired_state(item, dict(applied[key].digests) if key in applied else {})
        for key, item in planned.items.items()
    }


def _nothing_to_do(planned: Planned, states: dict, prune: bool) -> bool:
    plan = planned.plan
    if plan.of("create", "update", "adopt") or (prune and plan.of("delete")):
        return False
    if any(action.drift for action in plan.actions):
        return False  # live was brought to the file by hand: the state's read-back is stale
    applied = {(entry.kind, entry.key): entry.desired for entry in planned.state.applied}
    return all(applied.get(key) == state for key, state in states.items())


def _confirm_deletes(deletes: list[Action], yes: bool) -> None:
    if not deletes or yes:
        return
    names = ", ".join(f"{action.kind}.{action.key}" for action in deletes)
    try:
        confirmed = click.confirm(f"Delete {len(deletes)} resource(s) ({names})?", default=False)
    except click.Abort:
        confirmed = False
    if not confirmed:
        raise InvalidInput("deletes not confirmed, nothing applied; confirm at the prompt or pass --yes")


def _write(client: ApiClient, planned: Planned, ids: dict[str, dict[str, str]]) -> list[str]:
    """Creates and updates, kind after kind so references resolve; returns kind.key of what changed."""
    changed: list[str] = []
    for kind in KINDS:
        actions = [a for a in planned.plan.actions if a.kind == kind and a.action in WRITES]
        if kind == "monitors":
            _create_monitors(client, planned, [a for a in actions if a.action == "create"], ids, changed)
            actions = [a for a in actions if a.action != "create"]
        for action in actions:
            if action.action == "adopt" and not action.changes:
                ids[kind][action.key] = action.resource_id
                continue
            body = with_ids(kind, planned.items[(kind, action.key)].resolved, ids)
            try:
                if action.action == "create":
                    ids[kind][action.key] = resources.create(client, kind, body)
                else:
                    ids[kind][action.key] = resources.update(client, kind, action.resource_id, body)
            except ApiRefused as refused:
                raise _refused_at(planned, action, refused, changed) from None
            changed.append(f"{kind}.{action.key}")
    return changed


# New monitors go in the API's batch form, this many a request: 20,000 take seconds, not the minutes of one
# request each (issue 23). Each request is all or nothing; the ones before a refusal stay, as single creates do.
MONITORS_PER_CREATE = 500


def _create_monitors(
    client: ApiClient,
    planned: Planned,
    creates: list[Action],
    ids: dict[str, dict[str, str]],
    changed: list[str],
) -> None:
    for start in range(0, len(creates), MONITORS_PER_CREATE):
        chunk = creates[start : start + MONITORS_PER_CREATE]
        bodies = [with_ids("monitors", planned.items[("monitors", a.key)].resolved, ids) for a in chunk]
        try:
            created = resources.create_monitors(client, bodies)
        except ApiRefused as refused:
            action, refused = _item_refused(chunk, refused)
            raise _refused_at(planned, action, refused, changed) from None
        for action, monitor_id in zip(chunk, created, strict=True):
            ids["monitors"][action.key] = monitor_id
            changed.append(f"monitors.{action.key}")


_BATCH_FIELD = re.compile(r"\[(\d+)\](?:\.(.+))?")


def _item_refused(chunk: list[Action], refused: ApiRefused) -> tuple[Action, ApiRefused]:
    """The batch's refusal as the refusal of the item it names ("[3].config.timeoutSeconds"), so it points at
    that monitor's line of the file; a refusal naming no item is put on the batch's first."""
    named = _BATCH_FIELD.fullmatch(refused.field or "")
    if named is None or int(named.group(1)) >= len(chunk):
        return chunk[0], refused
    prefix = f"[{named.group(1)}]"
    message = refused.api_message.removeprefix(f"{prefix}.").removeprefix(f"{prefix}: ")
    return chunk[int(named.group(1))], ApiRefused(refused.status, refused.code, message, named.group(2))


def _refused_at(planned: Planned, action: Action, refused: ApiRefused, done: list[str]) -> ApiRefused:
    """The API's refusal, pointing at the file's item and field; what went through before stays, unrecorded,
    and the next plan adopts it by name."""
    before = f" ({len(done)} change(s) before it went through: {', '.join(done)})" if done else ""
    error = ApiRefused(refused.status, refused.code, refused.api_message, refused.field)
    message = refused.api_message.removeprefix(f"{refused.field}: ") if refused.field else refused.api_message
    where = planned.place(action.kind, action.key, refused.field)
    error.message = f"{where}: {message} [{action.kind}.{action.key}]{before}"
    return error


def _delete(client: ApiClient, deletes: list[Action]) -> None:
    for action in deletes:  # the plan lists them in the reverse order of creation
        if action.resource_id is None:
            continue
        try:
            resources.delete(client, action.kind, action.resource_id)
        except ApiRefused as refused:
            if refused.status != 404:  # deleted meanwhile: the goal holds
                raise


def _claim(client: ApiClient, planned: Planned) -> str:
    """The state, claimed on the generation the plan read, before anything is written: a second apply running
    at once is refused here, not after it has created its resources too."""
    try:
        return client.post("/managed-resources/claims", {"expectedGeneration": planned.state.generation})[
            "claimId"
        ]
    except ApiRefused as refused:
        if refused.status == 409:
            raise PlatformError(
                "another apply holds the state or was recorded since this plan read it; nothing applied, run again"
            ) from None
        raise


def _release(client: ApiClient, claim_id: str) -> None:
    try:
        client.delete(f"/managed-resources/claims/{claim_id}")
    except (ApiRefused, PlatformError):
        pass  # best effort: the claim expires on its own


def _record(client, planned, states, ids, prune, claim_id, message, summary) -> int:
    key_of = {kind: {resource_id: key for key, resource_id in ids[kind].items()} for kind in KINDS}
    observed = {
        (live.kind, key_of[live.kind][live.id]): compact(with_keys(live.kind, live.display, key_of))
        for live in resources.live_resources(client)
        if live.id in key_of[live.kind]
    }
    upserts = [
        {
            "kind": kind,
            "key": key,
            "resourceId": ids[kind][key],
            "desired": states[(kind, key)],
            "observed": observed[(kind, key)],
        }
        for (kind, key) in planned.items
    ]
    deletes = [{"kind": a.kind, "key": a.key} for a in planned.plan.of("delete")] if prune else []
    body = {
        "expectedGeneration": planned.state.generation,
        "claimId": claim_id,
        "message": message,
        "commitSha": environment.get("GITHUB_SHA") or None,
        "upserts": upserts,
        "deletes": deletes,
        **summary,
    }
    try:
        return client.post("/managed-resources/applies", body)["generation"]
    except ApiRefused as refused:
        if refused.status == 409:
            raise PlatformError(
                "this apply's claim expired and another apply claimed the state; the changes above went "
                "through, run `supercheck plan` to see where the project stands"
            ) from None
        raise


def _carry_out(client: ApiClient, planned: Planned, deletes: list[Action]) -> dict:
    ids: dict[str, dict[str, str]] = {kind: {} for kind in KINDS}
    for action in planned.plan.actions:
        if action.resource_id and action.action != "delete":
            ids[action.kind][action.key] = action.resource_id
    changed = _write(client, planned, ids)
    _delete(client, deletes)
    created = [f"{a.kind}.{a.key}" for a in planned.plan.of("create")]
    return {
        "ids": ids,
        "created": created,
        "updated": [name for name in changed if name not in created],
        "deleted": [f"{a.kind}.{a.key}" for a in deletes],
    }


@click.command("apply")
@FILE_OPTION
@click.option("--prune", is_flag=True, help="delete managed resources no longer in the file")
@click.option("--yes", "-y", is_flag=True, help="do not ask before deleting")
@click.option(
    "--message", "-m", default=None, help="why: kept in the audit entry (with $GITHUB_SHA when set)"
)
def command(file: str, prune: bool, yes: bool, message: str | None) -> None:
    """Apply the file: create and update what the plan shows; delete only with --prune."""
    with ApiClient() as client:
        planned = compute(file, client)
        states = _new_states(planned)
        if _nothing_to_do(planned, states, prune):
            click.echo(render(planned, prune))
            click.echo("Nothing to apply.")
            return
        click.echo(render(planned, prune))
        deletes = planned.plan.of("delete") if prune else []
        _confirm_deletes(deletes, yes)
        claim_id = _claim(client, planned)
        try:
            summary = _carry_out(client, planned, deletes)
            generation = _record(
                client, planned, states, summary.pop("ids"), prune, claim_id, message, summary
            )
        except BaseException:
            _release(client, claim_id)
            raise
    click.echo(
        f"Apply complete: {len(summary['created'])} created, {len(summary['updated'])} updated, "
        f"{len(summary['deleted'])} deleted (state generation {generation})."
    )
