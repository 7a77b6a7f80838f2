"""The supercheck CLI's pure parts: loading a file with positions, ${VAR} references, offline validation with
FILE:LINE:COLUMN errors, the JSON Schema, and the three-way plan (shared/rules/managed_plan.py) as tables."""

from __future__ import annotations

import json
import textwrap

import pytest
from click.testing import CliRunner

from shared.cli import files
from shared.cli.export import assign_keys, key_from_name, with_references
from shared.cli.main import cli
from shared.rules.managed_plan import (
    SECRET_CHANGED,
    Applied,
    Desired,
    FieldChange,
    Live,
    build_plan,
    digest_matches,
    field_changes,
    secret_digest,
    with_ids,
    with_keys,
)

BROKEN = """\
notificationProviders:
  - key: ops-hook
    name: Ops
    type: webhook
    config:
      url: ${UNSET_HOOK_URL_FOR_TEST}
monitors:
  - key: web
    name: Web
    type: http_request
    target: https://example.com/
    frequencyMinutes: 0
    alertConfig:
      notificationProviders: [ops-hook, nowhere]
  - key: web
    name: Again
    type: bogus
    target: https://example.com/
  - key: Bad Key
    name: Secret in the file
    type: http_request
    target: https://example.com/
    config:
      auth: {type: bearer, token: plain-secret-value}
"""


def write(tmp_path, text: str, name: str = "supercheck.yaml") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_validate_points_every_error_at_its_line_and_column(tmp_path):
    file = write(tmp_path, BROKEN)
    result = CliRunner().invoke(cli, ["validate", "-f", file])
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    expected = [
        f"{file}:12:5: monitors.0.frequencyMinutes: Input should be greater than or equal to 1",
        f"{file}:14:41: monitors.0.alertConfig.notificationProviders.1: no notificationProviders in this file "
        "has key 'nowhere'",
        f"{file}:15:5: monitors.1.key: 'web' is the key of an earlier item",
        f"{file}:17:5: monitors.1.type: unknown monitor type 'bogus'",
        f"{file}:19:5: monitors.2.key: String should match pattern",
        f"{file}:24:28: monitors.2.config.auth.token: is a secret: write it as ${{ENV_VAR}}",
    ]
    for want in expected:
        assert any(line.startswith(want) for line in lines), (want, lines)
    # the webhook URL depends on an unset variable: a note offline, not an error
    assert any(
        "6:7: notificationProviders.0.config.url" in line and "not checked offline" in line for line in lines
    )
    assert not any(line.startswith(f"{file}:6:7") and "not checked" not in line for line in lines)


def test_validate_accepts_a_good_file_and_json_alike(tmp_path):
    good = {
        "monitors": [
            {"key": "web", "name": "Web", "type": "http", "target": "https://example.com/", "tags": ["smoke"]}
        ]
    }
    yaml_file = write(
        tmp_path, "monitors:\n  - {key: web, name: Web, type: http, target: 'https://example.com/'}\n"
    )
    json_file = write(tmp_path, json.dumps(good, indent=2), "supercheck.json")
    for file in (yaml_file, json_file):
        result = CliRunner().invoke(cli, ["validate", "-f", file])
        assert result.exit_code == 0, result.output
        assert "valid (1 monitors" in result.output


def test_a_yaml_syntax_error_and_a_duplicate_field_name_their_place(tmp_path):
    broken = write(tmp_path, "monitors:\n  - key: web\n    name: [unclosed\n")
    duplicate = write(tmp_path, "monitors:\n  - key: web\n    key: other\n", "dup.yaml")
    first = CliRunner().invoke(cli, ["validate", "-f", broken])
    second = CliRunner().invoke(cli, ["validate", "-f", duplicate])
    assert first.exit_code == 2 and first.stderr.startswith(f"{broken}:4:1: ")
    assert second.exit_code == 2 and second.stderr.startswith(f"{duplicate}:3:5: ")


def test_unset_variables_are_errors_when_the_values_are_needed(tmp_path):
    loaded = files.load(write(tmp_path, BROKEN))
    problems = files.validate(loaded, {}, require_env=True)
    assert any(
        str(p).endswith(
            "notificationProviders.0.config.url: ${UNSET_HOOK_URL_FOR_TEST} is not set in the environment"
        )
        and p.line == 6
        for p in problems.errors
    )


@pytest.mark.parametrize(
    ("text", "environ", "expected"),
    [
        ("${A}", {"A": "1"}, "1"),
        ("Bearer ${TOKEN}", {"TOKEN": "t0k"}, "Bearer t0k"),
        ("$${A} stays", {"A": "1"}, "${A} stays"),
        ("${A}${B}", {"A": "x", "B": "y"}, "xy"),
        ("no reference", {}, "no reference"),
    ],
)
def test_references_resolve(text, environ, expected):
    assert files.substitute(text, environ) == expected


def test_an_unset_reference_raises_naming_it_and_can_be_kept():
    with pytest.raises(KeyError, match="MISSING"):
        files.substitute("${MISSING}", {})
    assert files.substitute("a ${MISSING}", {}, keep_unset=True) == "a ${MISSING}"
    assert files.env_references({"a": [{"b": "${X} and ${Y}"}], "c": "$${Z}"}) == {("a", 0, "b"): ["X", "Y"]}


def test_schema_describes_every_kind_with_a_key():
    result = CliRunner().invoke(cli, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert set(schema["properties"]) >= {
        "monitors",
        "notificationProviders",
        "maintenanceWindows",
        "statusPages",
    }
    monitor = schema["$defs"]["MonitorEntry"]
    assert "key" in monitor["required"] and monitor["properties"]["key"]["pattern"]
    alert = schema["$defs"]["AlertConfigEntry"]["properties"]["notificationProviders"]
    assert alert["items"]["type"] == "string"


# --- the plan, as tables ---------------------------------------------------------------------------------------

WEB = {"name": "Web", "frequencyMinutes": 5, "alertConfig": {"notificationProviders": ["hook"]}}


def desired(key="web", kind="monitors", secrets=None, **fields):
    return Desired(kind, key, {**WEB, **fields} if kind == "monitors" else fields, secrets or {})


def applied(key="web", resource_id="m1", kind="monitors", observed=None, digests=None):
    return Applied(kind, key, resource_id, {"secretDigests": digests or {}}, observed or WEB_LIVE_KEYED)


WEB_LIVE = {"name": "Web", "frequencyMinutes": 5, "alertConfig": {"notificationProviders": ["p1"]}}
WEB_LIVE_KEYED = {"name": "Web", "frequencyMinutes": 5, "alertConfig": {"notificationProviders": ["hook"]}}
HOOK = [Desired("notificationProviders", "hook", {"name": "Hook"})]
HOOK_STATE = [Applied("notificationProviders", "hook", "p1", {}, {"name": "Hook"})]
HOOK_LIVE = [Live("notificationProviders", "p1", {"name": "Hook"})]


def actions(plan):
    return [(a.kind, a.key, a.action) for a in plan.actions]


@pytest.mark.parametrize(
    ("name", "want", "state", "live", "expected"),
    [
        ("new key: create", [desired()], [], [], [("monitors", "web", "create")]),
        (
            "same everywhere: unchanged",
            [desired()],
            [applied()],
            [Live("monitors", "m1", WEB_LIVE)],
            [("monitors", "web", "unchanged")],
        ),
        (
            "edited file: update",
            [desired(frequencyMinutes=1)],
            [applied()],
            [Live("monitors", "m1", WEB_LIVE)],
            [("monitors", "web", "update")],
        ),
        (
            "gone live: create again",
            [desired()],
            [applied()],
            [],
            [("monitors", "web", "create")],
        ),
        (
            "out of the file: delete",
            [],
            [applied()],
            [Live("monitors", "m1", WEB_LIVE)],
            [("monitors", "web", "delete")],
        ),
        (
            "same name live, no state: adopt",
            [desired()],
            [],
            [Live("monitors", "m9", WEB_LIVE)],
            [("monitors", "web", "adopt")],
        ),
    ],
)
def test_plan_actions(name, want, state, live, expected):
    plan = build_plan(HOOK + want, HOOK_STATE + state, HOOK_LIVE + live)
    assert actions(plan)[1:] == expected, name


def test_an_edit_made_live_is_drift_naming_key_and_field_and_is_planned_back():
    live = [Live("monitors", "m1", {**WEB_LIVE, "frequencyMinutes": 30})]
    plan = build_plan(HOOK + [desired()], HOOK_STATE + [applied()], HOOK_LIVE + live)
    web = plan.actions[1]
    assert web.action == "update"
    assert web.drift == [FieldChange("frequencyMinutes", 5, 30)]
    assert web.changes == [FieldChange("frequencyMinutes", 30, 5)]


def test_a_rotated_secret_is_an_update_although_its_mask_is_the_same():
    salt = b"0123456789abcdef"
    state = [applied(digests={"config.auth.token": secret_digest("old-token-xx", salt)})]
    same = build_plan(
        HOOK + [desired(secrets={"config.auth.token": "old-token-xx"})],
        HOOK_STATE + state,
        HOOK_LIVE + [Live("monitors", "m1", WEB_LIVE)],
    )
    rotated = build_plan(
        HOOK + [desired(secrets={"config.auth.token": "new-token-xx"})],
        HOOK_STATE + state,
        HOOK_LIVE + [Live("monitors", "m1", WEB_LIVE)],
    )
    assert same.actions[1].action == "unchanged"
    assert rotated.actions[1].changes == [FieldChange("config.auth.token", SECRET_CHANGED, SECRET_CHANGED)]


def test_resources_without_a_key_are_unmanaged():
    hand_made = Live("monitors", "m7", {"name": "By hand"})
    plan = build_plan(HOOK, HOOK_STATE, HOOK_LIVE + [hand_made])
    assert plan.unmanaged == [hand_made]
    assert not plan.changes_resources


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        ({"a": 1}, {"a": 1}, []),
        ({"a": 1}, {"a": 2}, [FieldChange("a", 1, 2)]),
        ({"a": {"b": 1, "c": 2}}, {"a": {"b": 1, "c": 3}}, [FieldChange("a.c", 2, 3)]),
        ({"t": ["x"]}, {"t": ["x", "y"]}, [FieldChange("t", ["x"], ["x", "y"])]),
        ({}, {"n": 1}, [FieldChange("n", None, 1)]),
    ],
)
def test_field_changes(before, after, expected):
    assert field_changes(before, after) == expected


def test_references_map_between_ids_and_keys_both_ways():
    page = {"groups": [{"name": "G", "monitorIds": ["m1", "m2"]}]}
    keyed = with_keys("statusPages", page, {"monitors": {"m1": "web"}})
    assert keyed == {"groups": [{"name": "G", "monitorIds": ["web", "id:m2"]}]}
    item = {"alertConfig": {"notificationProviders": ["hook"]}, "name": "x"}
    assert with_ids("monitors", item, {"notificationProviders": {"hook": "p1"}})["alertConfig"] == {
        "notificationProviders": ["p1"]
    }


def test_a_digest_matches_only_its_value_and_never_holds_it():
    digest = secret_digest("s3cret-value", b"salt-salt-salt!!")
    assert digest_matches("s3cret-value", digest)
    assert not digest_matches("s3cret-valuf", digest)
    assert "s3cret" not in digest


def test_export_keys_are_stable_and_masked_secrets_become_references():
    live = [Live("monitors", "b", {"name": "Web API"}), Live("monitors", "a", {"name": "Web API"})]
    assert assign_keys(live, {})["monitors"] == {"a": "web-api", "b": "web-api-2"}
    assert assign_keys(live, {"monitors": {"b": "kept"}})["monitors"] == {"b": "kept", "a": "web-api"}
    assert key_from_name("  Ünïcode & Co.  ") == "n-code-co"
    found: list[str] = []
    config = with_references({"auth": {"token": "ab****yz", "type": "bearer"}}, "web", ("config",), found)
    assert config == {"auth": {"token": "${WEB_CONFIG_AUTH_TOKEN}", "type": "bearer"}}
    assert found == ["WEB_CONFIG_AUTH_TOKEN"]


@pytest.mark.parametrize(
    ("status", "body", "code", "fragment"),
    [
        (500, b'{"error": {"code": "internal_error", "message": "boom"}}', 3, "server error 500: boom"),
        (502, b"bad gateway", 3, "server error 502"),
        (403, b'{"error": {"code": "forbidden", "message": "no"}}', 3, "authentication failed (403)"),
    ],
)
def test_a_5xx_or_a_refused_key_is_a_platform_error_exit_3(tmp_path, status, body, code, fragment):
    from tests.servers import LoopbackHttpServer

    server = LoopbackHttpServer(status=status, body=body).start()
    try:
        file = write(tmp_path, "monitors: []\n")
        result = CliRunner().invoke(cli, ["plan", "-f", file], env={"SUPERCHECK_URL": server.url.rstrip("/")})
    finally:
        server.stop()
    assert result.exit_code == code
    assert fragment in result.stderr
    assert server.requests[0].path == "/function/api/managed-resources"


def test_the_key_rule_is_one_in_the_file_model_the_api_and_the_migration():
    from pathlib import Path

    from shared.api.requests import MANAGED_KEY_PATTERN

    migration = Path(files.__file__).parents[1] / "migrations" / "0013_managed_resources.sql"
    assert f"key ~ '{MANAGED_KEY_PATTERN}'" in migration.read_text()
    assert (
        json.loads(CliRunner().invoke(cli, ["schema"]).output)["$defs"]["MonitorEntry"]["properties"]["key"][
            "pattern"
        ]
        == MANAGED_KEY_PATTERN
    )
