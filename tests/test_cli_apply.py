"""The supercheck CLI against the real local stack: plan, apply, a re-plan with no changes, drift after an API
edit, prune, export then apply, the audit entry, secrets kept out of the state and the output, exit codes 2 and 3,
and the console script itself as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import tomllib
import uuid
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from click.testing import CliRunner

from openfaas.local.services import free_port
from shared.cli.main import cli
from tests.api_client import ApiClient
from tests.factories import make_project

ROOT = Path(__file__).resolve().parent.parent
HOOK_SECRET = "hook-path-secret-0123456789"
TOKEN_SECRET = "bearer-token-secret-abcdef"

FILE = """\
notificationProviders:
  - key: ops-hook
    name: Ops hook
    type: webhook
    config:
      url: ${{OPS_HOOK_URL}}
monitors:
  - key: web
    name: Web
    type: http_request
    target: {target}
    frequencyMinutes: {frequency}
    config:
      auth: {{type: bearer, token: "${{WEB_TOKEN}}"}}
    alertConfig:
      enabled: true
      notificationProviders: [ops-hook]
    tags: [smoke]
{extra}"""
EXTRA_MONITOR = """\
  - key: api
    name: API
    type: http_request
    target: {target}api
    frequencyMinutes: 60
maintenanceWindows:
  - key: sundays
    name: Sunday patching
    monitorIds: [web, api]
    cron: "0 2 * * 0"
    durationMinutes: 60
statusPages:
  - key: public
    slug: cli-public-{suffix}
    title: Our services
    groups:
      - name: Sites
        monitorIds: [web, api]
"""


@pytest.fixture
def project(stack, clean, aio, http_target, webhook_receiver, internal_targets, tmp_path):
    key = make_project(aio, "cli")
    suffix = uuid.uuid4().hex[:8]  # a page's slug is unique across projects
    env = {
        "SUPERCHECK_URL": stack.gateway_url,
        "SUPERCHECK_API_KEY": key,
        "OPS_HOOK_URL": f"{webhook_receiver.url}{HOOK_SECRET}",
        "WEB_TOKEN": TOKEN_SECRET,
        "GITHUB_SHA": "0123456789abcdef0123456789abcdef01234567",
    }

    def write(frequency: int = 60, extra: bool = True) -> str:
        text = FILE.format(
            target=http_target.url,
            frequency=frequency,
            extra=EXTRA_MONITOR.format(target=http_target.url, suffix=suffix) if extra else "",
        )
        path = tmp_path / "supercheck.yaml"
        path.write_text(text)
        return str(path)

    def run(*args: str, input: str | None = None, **overrides: str):
        return CliRunner().invoke(cli, list(args), env={**env, **overrides}, input=input)

    api = httpx.Client(
        base_url=f"{stack.gateway_url}/function/api", headers={"Authorization": f"Bearer {key}"}, timeout=60
    )
    yield SimpleNamespace(write=write, run=run, api=api, env=env, slug=f"cli-public-{suffix}")
    api.close()


def test_plan_apply_then_plan_again_changes_nothing(project):
    file = project.write()
    plan = project.run("plan", "-f", file)
    assert plan.exit_code == 0, plan.output
    assert "+ notificationProviders.ops-hook will be created" in plan.output
    assert "+ monitors.web will be created" in plan.output
    assert "Plan: 5 to create, 0 to update, 0 to delete." in plan.output

    applied = project.run("apply", "-f", file, "-m", "first apply")
    assert applied.exit_code == 0, applied.output
    assert "Apply complete: 5 created" in applied.output
    monitors = {m["name"]: m for m in project.api.get("/monitors").json()["data"]}
    provider = project.api.get("/notification-providers").json()[0]
    assert monitors["Web"]["alertConfig"]["notificationProviders"] == [provider["id"]]

    again = project.run("plan", "-f", file)
    assert again.exit_code == 0 and "No changes." in again.output, again.output
    second = project.run("apply", "-f", file)
    assert second.exit_code == 0 and "Nothing to apply." in second.output, second.output
    audit = project.api.get("/audit-log").json()["data"]
    applies = [entry for entry in audit if entry["action"] == "managed.apply"]
    assert len(applies) == 1  # the apply with nothing to do wrote nothing
    assert applies[0]["changes"]["message"] == "first apply"
    assert applies[0]["changes"]["commitSha"] == project.env["GITHUB_SHA"]


def test_new_monitors_go_in_the_api_s_batch_form_a_request_per_chunk(project, monkeypatch):
    from shared.cli import apply, resources

    requests = []
    create_monitors = resources.create_monitors

    def counted(client, bodies):
        requests.append([body["name"] for body in bodies])
        return create_monitors(client, bodies)

    monkeypatch.setattr(apply, "MONITORS_PER_CREATE", 1)
    monkeypatch.setattr(resources, "create_monitors", counted)
    applied = project.run("apply", "-f", project.write())
    assert applied.exit_code == 0, applied.output
    assert sorted(requests) == [["API"], ["Web"]]  # one request each, in the plan's order
    assert {m["name"] for m in project.api.get("/monitors").json()["data"]} == {"Web", "API"}
    assert "No changes." in project.run("plan", "-f", project.write()).output


@pytest.mark.parametrize(
    ("field", "message", "item", "item_field", "item_message"),
    [
        (
            "[1].config.timeoutSeconds",
            "[1].config.timeoutSeconds: too big",
            1,
            "config.timeoutSeconds",
            "config.timeoutSeconds: too big",  # as a single create says it
        ),
        ("[0]", "[0]: must be an object", 0, None, "must be an object"),
        (None, "project over its monitor quota", 0, None, "project over its monitor quota"),
        ("[7].name", "[7].name: too long", 0, "[7].name", "[7].name: too long"),  # no such item: left as is
    ],
)
def test_a_batch_refusal_becomes_the_refusal_of_the_item_it_names(
    field, message, item, item_field, item_message
):
    from shared.cli.apply import _item_refused
    from shared.cli.exits import ApiRefused
    from shared.rules.managed_plan import Action

    chunk = [Action("monitors", key, "create") for key in ("web", "api")]
    action, refused = _item_refused(chunk, ApiRefused(400, "invalid", message, field))
    assert (action.key, refused.field, refused.api_message) == (chunk[item].key, item_field, item_message)


def test_an_edit_in_the_file_is_an_update_field_by_field(project):
    first = project.run("apply", "-f", project.write(frequency=60))
    assert first.exit_code == 0, first.output
    plan = project.run("plan", "-f", project.write(frequency=30))
    assert "~ monitors.web will be updated in place" in plan.output
    assert "frequencyMinutes: 60 -> 30" in plan.output
    second = project.run("apply", "-f", project.write(frequency=30))
    assert second.exit_code == 0, second.output
    web = next(m for m in project.api.get("/monitors").json()["data"] if m["name"] == "Web")
    assert web["frequencyMinutes"] == 30


def test_an_api_edit_since_the_last_apply_is_drift_naming_key_and_field(project):
    file = project.write()
    project.run("apply", "-f", file)
    web = next(m for m in project.api.get("/monitors").json()["data"] if m["name"] == "Web")
    assert project.api.patch(f"/monitors/{web['id']}", json={"frequencyMinutes": 15}).status_code == 200

    plan = project.run("plan", "-f", file)
    assert "! DRIFT monitors.web: frequencyMinutes changed live since the last apply: 60 -> 15" in plan.output
    assert "frequencyMinutes: 15 -> 60" in plan.output  # apply puts it back
    assert project.run("apply", "-f", file).exit_code == 0
    assert project.api.get(f"/monitors/{web['id']}").json()["frequencyMinutes"] == 60
    assert "No changes." in project.run("plan", "-f", file).output


def test_prune_deletes_only_with_confirmation_or_yes(project):
    project.run("apply", "-f", project.write(extra=True))
    smaller = project.write(extra=False)
    plan = project.run("plan", "-f", smaller)
    assert "- monitors.api is no longer in the file; deleted only with --prune" in plan.output

    kept = project.run("apply", "-f", smaller)
    assert kept.exit_code == 0
    assert len(project.api.get("/monitors").json()["data"]) == 2
    refused = project.run("apply", "-f", smaller, "--prune", input="n\n")
    assert refused.exit_code == 2 and "not confirmed" in refused.output
    assert len(project.api.get("/monitors").json()["data"]) == 2

    pruned = project.run("apply", "-f", smaller, "--prune", "--yes")
    assert pruned.exit_code == 0, pruned.output
    assert "3 deleted" in pruned.output  # the monitor, the window and the page no longer in the file
    assert [m["name"] for m in project.api.get("/monitors").json()["data"]] == ["Web"]
    assert project.api.get("/maintenance-windows").json() == []
    assert project.api.get("/status-pages").json()["data"] == []
    assert "No changes." in project.run("plan", "-f", smaller, "--prune").output


def test_secrets_from_the_environment_never_reach_the_state_or_the_output(project, clean):
    file = project.write()
    outputs = [project.run("plan", "-f", file).output, project.run("apply", "-f", file).output]
    state = project.api.get("/managed-resources").json()
    stored = json.dumps(clean.sql("select desired, observed from managed_resources"), default=str)
    for text in [*outputs, json.dumps(state), stored]:
        assert HOOK_SECRET not in text and TOKEN_SECRET not in text
    web = next(r for r in state["resources"] if r["key"] == "web")
    assert web["desired"]["item"]["config"]["auth"]["token"] == "${WEB_TOKEN}"
    assert web["desired"]["secretDigests"]["config.auth.token"].startswith("scrypt$")

    # a rotated secret shows as its masks; one whose mask stays the same, by the digest
    rotated = project.run("plan", "-f", file, WEB_TOKEN="another-token-value-abcdeg")
    assert 'config.auth.token: "be****ef" -> "an****eg"' in rotated.output
    same_mask = project.run("plan", "-f", file, WEB_TOKEN="be-rotated-token-ef")
    assert "config.auth.token: " in same_mask.output and "(changed secret)" in same_mask.output


def test_an_unset_variable_at_apply_is_exit_2_naming_its_place(project):
    file = project.write()
    result = CliRunner().invoke(cli, ["apply", "-f", file], env={**project.env, "WEB_TOKEN": None})
    assert result.exit_code == 2
    assert f"{file}:14:" in result.stderr and "${WEB_TOKEN} is not set" in result.stderr


def test_export_then_apply_of_the_export_changes_nothing(project, tmp_path):
    project.run("apply", "-f", project.write())
    by_hand = {
        "name": "Made by hand",
        "type": "http",
        "target": "https://example.com/",
        "frequencyMinutes": 60,
    }
    assert project.api.post("/monitors", json={**by_hand, "enabled": False}).status_code == 201
    assert "? unmanaged monitors 'Made by hand'" in project.run("plan", "-f", project.write()).output

    exported = tmp_path / "exported.yaml"
    result = project.run("export", "-o", str(exported))
    assert result.exit_code == 0, result.output
    text = exported.read_text()
    assert "key: made-by-hand" in text and HOOK_SECRET not in text and TOKEN_SECRET not in text
    variables = {
        "OPS_HOOK_CONFIG_URL": project.env["OPS_HOOK_URL"],
        "WEB_CONFIG_AUTH_TOKEN": TOKEN_SECRET,
    }
    assert sorted(variables) == sorted(result.stderr.split("apply: ")[1].strip().split(", "))
    assert project.run("validate", "-f", str(exported)).exit_code == 0

    applied = project.run("apply", "-f", str(exported), **variables)
    assert applied.exit_code == 0, applied.output
    assert "Apply complete: 0 created, 0 updated, 0 deleted" in applied.output  # adopts the hand-made one
    assert "No changes." in project.run("plan", "-f", str(exported), **variables).output


def test_a_refusal_mid_apply_names_the_item_and_the_next_plan_adopts_what_went_through(project, aio, stack):
    other = httpx.Client(
        base_url=f"{stack.gateway_url}/function/api",
        headers={"Authorization": f"Bearer {make_project(aio, 'other')}"},
        timeout=60,
    )
    with other:
        taken = other.post("/status-pages", json={"slug": project.slug, "title": "Theirs"})
    assert taken.status_code == 201, taken.text
    file = project.write()
    refused = project.run("apply", "-f", file)
    assert refused.exit_code == 2
    assert refused.stderr.startswith(f"{file}:32:5: statusPages.0.slug: ")  # the file's slug line
    assert "[statusPages.public]" in refused.stderr and "4 change(s) before it" in refused.stderr
    plan = project.run("plan", "-f", file)
    assert (
        "= monitors.web will be adopted" in plan.output
        and "+ statusPages.public will be created" in plan.output
    )


def test_an_apply_while_another_holds_the_state_writes_nothing_and_exits_3(project):
    held = project.api.post("/managed-resources/claims", json={"expectedGeneration": 0})
    assert held.status_code == 201
    result = project.run("apply", "-f", project.write())
    assert result.exit_code == 3 and "another apply holds the state" in result.stderr
    assert project.api.get("/monitors").json()["data"] == []
    assert project.api.delete(f"/managed-resources/claims/{held.json()['claimId']}").status_code == 204
    assert project.run("apply", "-f", project.write()).exit_code == 0


def test_platform_errors_exit_3(project):
    file = project.write()
    closed = f"http://127.0.0.1:{free_port()}"
    unreachable = project.run("plan", "-f", file, SUPERCHECK_URL=closed)
    assert unreachable.exit_code == 3 and "cannot reach the server" in unreachable.stderr
    refused = project.run("plan", "-f", file, SUPERCHECK_API_KEY="sc_not_a_key")
    assert refused.exit_code == 3 and "authentication failed (401)" in refused.stderr


def _console_script(tmp_path: Path) -> Path:
    """The launcher pip writes for pyproject's [project.scripts] entry, made here so the test runs this
    tree's entry point without reinstalling the shared virtualenv."""
    entry = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]["supercheck"]
    module, _, function = entry.partition(":")
    script = tmp_path / "supercheck"
    script.write_text(
        f"#!{sys.executable}\nimport sys\nfrom {module} import {function}\nif __name__ == '__main__':\n"
        f"    sys.exit({function}())\n"
    )
    script.chmod(0o755)
    return script


def test_the_supercheck_console_script_validates_plans_and_exits_with_its_codes(project, tmp_path):
    script = _console_script(tmp_path)
    env = {**os.environ, **project.env, "PYTHONPATH": str(ROOT)}
    file = project.write()
    plan = subprocess.run([script, "plan", "-f", file], env=env, capture_output=True, text=True, timeout=120)
    assert plan.returncode == 0, plan.stderr
    assert "Plan: 5 to create" in plan.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text(textwrap.dedent("monitors:\n  - key: x\n    name: X\n    type: http\n"))
    invalid = subprocess.run(
        [script, "validate", "-f", bad], env=env, capture_output=True, text=True, timeout=60
    )
    assert invalid.returncode == 2
    assert invalid.stderr.startswith(f"{bad}:2:5: monitors.0.target: is required")
    usage = subprocess.run(
        [script, "apply", "--no-such-flag"], env=env, capture_output=True, text=True, timeout=60
    )
    assert usage.returncode == 2


def test_an_apply_claims_then_records_the_state_by_compare_and_set_and_refuses_plaintext_secrets(clean, aio):
    api = ApiClient(aio, make_project(aio, "state"))
    resource = {
        "kind": "monitors",
        "key": "web",
        "resourceId": str(uuid.uuid4()),
        "desired": {"item": {"config": {"auth": {"token": "${WEB_TOKEN}"}}}, "secretDigests": {}},
        "observed": {"name": "Web"},
    }
    claim = api.post("/managed-resources/claims", json={"expectedGeneration": 0})
    assert claim.status_code == 201, claim.text
    held = api.post("/managed-resources/claims", json={"expectedGeneration": 0})
    assert held.status_code == 409 and held.json()["error"]["field"] == "expectedGeneration"
    record = {"expectedGeneration": 0, "claimId": claim.json()["claimId"], "upserts": [resource]}
    first = api.post("/managed-resources/applies", json=record)
    assert first.status_code == 201 and first.json()["generation"] == 1
    again = api.post("/managed-resources/applies", json=record)  # the claim is spent, the generation moved
    assert again.status_code == 409 and again.json()["error"]["field"] == "claimId"
    stale = api.post("/managed-resources/claims", json={"expectedGeneration": 0})
    assert stale.status_code == 409
    state = api.get("/managed-resources").json()
    assert state["generation"] == 1 and [r["key"] for r in state["resources"]] == ["web"]

    claim = api.post("/managed-resources/claims", json={"expectedGeneration": 1}).json()["claimId"]
    plaintext = {**resource, "desired": {"item": {"config": {"auth": {"token": "hunter2-hunter2"}}}}}
    refused = api.post(
        "/managed-resources/applies", json={"expectedGeneration": 1, "claimId": claim, "upserts": [plaintext]}
    )
    assert refused.status_code == 400
    assert refused.json()["error"]["message"].startswith("desired.item.config.auth.token: ")
    assert "hunter2" not in refused.text
    assert api.request("DELETE", f"/managed-resources/claims/{claim}").status_code == 204
    assert api.request("DELETE", f"/managed-resources/claims/{claim}").status_code == 404  # released
    claim = api.post("/managed-resources/claims", json={"expectedGeneration": 1}).json()[
        "claimId"
    ]  # released
    gone = api.post(
        "/managed-resources/applies",
        json={
            "expectedGeneration": 1,
            "claimId": claim,
            "deletes": [{"kind": "monitors", "key": "web"}],
            "message": "bye",
        },
    )
    assert gone.status_code == 201 and api.get("/managed-resources").json()["resources"] == []
    doc = api.get("/openapi.json").json()
    assert "ManagedState" in json.dumps(doc["paths"]["/managed-resources"])
    assert "/managed-resources/claims/{claim_id}" in doc["paths"]
