"""The management API: keys, project isolation on every endpoint, validation, audit, key rotation, secrets."""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from pathlib import Path

import pytest

from shared import auth, db
from shared.api import routes  # noqa: F401  (registers every endpoint before the matrix is built)
from shared.api.framework import ENDPOINTS
from shared.security import KeyRing, generate_key
from shared.settings import reset_settings_cache
from tests.api_client import ApiClient
from tests.factories import make_project

PROVIDER_TOKEN = "tok-9f8e7d6c5b4a3f2e1d0c"


@pytest.fixture
def tenants(clean, aio):
    """Two projects, each with a key, and project A holding one object of every kind."""
    a = ApiClient(aio, make_project(aio, "A"))
    b = ApiClient(aio, make_project(aio, "B"))
    provider = a.post(
        "/notification-providers",
        json={
            "name": "hook",
            "type": "webhook",
            "config": {"url": f"https://hooks.example.net/x?token={PROVIDER_TOKEN}"},
        },
    )
    assert provider.status_code == 201, provider.text
    monitor = a.post(
        "/monitors",
        json={
            "name": "a-mon",
            "type": "http",
            "target": "https://a.example.net/",
            "enabled": False,
            "tags": ["checkout"],
        },
    )
    assert monitor.status_code == 201, monitor.text
    run = a.post(f"/monitors/{monitor.json()['id']}/run")
    assert run.status_code == 202, run.text
    key = a.post("/api-keys", json={"name": "second"})
    window = a.post(
        "/maintenance-windows",
        json={
            "name": "weekly",
            "cron": "0 2 * * 0",
            "durationMinutes": 60,
            "monitorIds": [monitor.json()["id"]],
        },
    )
    assert window.status_code == 201, window.text
    script = "async def run(page, context, variables):\n    await page.goto(variables['url'])\n"
    test = a.post("/synthetic-tests", json={"title": "login", "script": script})
    assert test.status_code == 201, test.text
    variable = a.post("/variables", json={"name": "PASSWORD", "value": "hunter2-hunter2", "isSecret": True})
    assert variable.status_code == 201, variable.text
    page = a.post(
        "/status-pages",
        json={
            "slug": "a-status",
            "title": "A",
            "groups": [{"name": "Web", "monitorIds": [monitor.json()["id"]]}],
        },
    )
    assert page.status_code == 201, page.text
    incident = a.post(
        "/incidents",
        json={"statusPageId": page.json()["id"], "title": "slow", "monitorIds": [monitor.json()["id"]]},
    )
    assert incident.status_code == 201, incident.text
    claim = a.post("/managed-resources/claims", json={"expectedGeneration": 0})
    assert claim.status_code == 201, claim.text
    objects = {
        "monitor_id": monitor.json()["id"],
        "provider_id": provider.json()["id"],
        "run_id": run.json()["runIds"][0],
        "key_id": key.json()["id"],
        "window_id": window.json()["id"],
        "test_id": test.json()["id"],
        "name": "PASSWORD",
        "status_page_id": page.json()["id"],
        "incident_id": incident.json()["id"],
        "claim_id": claim.json()["claimId"],
        "result_id": "1",  # any: A's monitor answers B 404 before its results are looked at
    }
    return a, b, objects


def test_a_new_key_is_shown_once_and_stored_only_as_a_hash(tenants, clean):
    a, _, objects = tenants
    created = a.post("/api-keys", json={"name": "ci"}).json()
    assert created["key"].startswith("sck_") and len(created["key"]) >= 4 + 43
    listed = a.get("/api-keys").json()
    assert all("key" not in item for item in listed)
    assert any(
        item["prefix"] == created["prefix"] and created["key"].startswith(item["prefix"]) for item in listed
    )
    assert clean.sql(
        "select count(*) from api_keys where key_hash = sha256(%s::bytea)", (created["key"].encode(),)
    ) == [(1,)]
    assert not clean.sql(
        "select 1 from api_keys where prefix = %s and position(%s in encode(key_hash, 'escape')) > 0",
        (created["prefix"], created["key"]),
    )


def test_requests_without_a_valid_key_are_refused(tenants, aio):
    a, _, objects = tenants
    assert ApiClient(aio, None).get("/monitors").status_code == 401
    assert ApiClient(aio, "sck_not-a-real-key").get("/monitors").json()["error"]["code"] == "unauthorized"
    assert ApiClient(aio, None).get("/monitors", headers={"Authorization": "Basic abc"}).status_code == 401
    assert ApiClient(aio, None).get("/health").json() == {"status": "ok"}
    second = a.post("/api-keys", json={"name": "to revoke"}).json()
    revoker = ApiClient(aio, second["key"])
    assert revoker.get("/monitors").status_code == 200
    assert a.request("DELETE", f"/api-keys/{second['id']}").json()["revokedAt"] is not None
    assert revoker.get("/monitors").status_code == 401


VALID_BODIES = {
    "MonitorCreate": {"name": "hijack", "type": "http", "target": "https://b.example.net/", "enabled": False},
    "NotificationSettings": {"providerIds": []},
    "MaintenanceWindowCreate": {
        "name": "hijack",
        "startsAt": "2030-01-01T00:00:00Z",
        "endsAt": "2030-01-02T00:00:00Z",
    },
    "SyntheticTestUpdate": {"title": "hijack"},
    "ProjectVariableUpdate": {"value": "hijack"},
    "StatusPageCreate": {"slug": "hijack", "title": "hijack"},
    "StatusPagePatch": {"title": "hijack"},
    "StatusIncidentPatch": {"title": "hijack"},
    "StatusIncidentUpdateCreate": {"status": "resolved", "message": "hijack"},
    "AlertPolicyBacktest": {"alertConfig": {"enabled": True}, "days": 1},
}


def _fill(path: str, objects: dict) -> str:
    return re.sub(r"{(\w+)}", lambda m: objects[m.group(1)], path)


@pytest.mark.parametrize(
    "spec", [s for s in ENDPOINTS if "{" in s.path], ids=lambda s: f"{s.method} {s.path}"
)
def test_another_projects_key_cannot_reach_or_learn_of_an_object(tenants, clean, spec):
    a, b, objects = tenants
    before = clean.sql("select count(*) from audit_log")
    body = VALID_BODIES.get(spec.body.__name__ if spec.body else None, {"name": "hijack"})
    response = b.request(spec.method, _fill(spec.path, objects), json=body)
    assert response.status_code == 404, response.text
    assert response.json()["error"]["code"] == "not_found"
    assert clean.sql("select count(*) from audit_log") == before, "nothing was changed"
    # A's key still sees its objects unchanged
    assert a.get(f"/monitors/{objects['monitor_id']}").json()["name"] == "a-mon"


def test_lists_and_run_by_tag_only_ever_show_the_callers_project(tenants):
    a, b, objects = tenants
    assert b.get("/monitors").json()["pagination"]["total"] == 0
    assert b.get("/notification-providers").json() == []
    assert len(b.get("/api-keys").json()) == 1
    assert b.post("/monitors/run", json={"tag": "checkout"}).json() == {"runIds": [], "monitorIds": []}
    assert b.post("/monitors/run", json={"monitorIds": [objects["monitor_id"]]}).status_code == 404
    assert b.get("/audit-log").json()["pagination"]["total"] == 0
    assert b.get("/events", params={"monitorId": objects["monitor_id"]}).status_code == 404
    assert a.get("/monitors", params={"tag": "checkout"}).json()["pagination"]["total"] == 1


# Functions the gateway serves beside the api take the same keys: another project's objects are 404 there too.
FUNCTION_DOORS = {
    "schedule run-now by id": ("schedule", {"monitorIds": ["{monitor_id}"]}),
    "synthetic trial": ("check-synthetic", {"type": "synthetic_test", "target": "{test_id}"}),
    "synthetic trial naming the test twice": (
        "check-synthetic",
        {"type": "synthetic_test", "target": "{test_id}", "config": {"testId": "{test_id}"}},
    ),
}


@pytest.mark.parametrize(("function", "body"), FUNCTION_DOORS.values(), ids=FUNCTION_DOORS.keys())
def test_another_projects_key_cannot_reach_an_object_through_a_function(tenants, clean, function, body):
    a, b, objects = tenants
    runs = clean.sql("select count(*) from runs")
    filled = json.loads(_fill(json.dumps(body), objects))
    response = ApiClient(b.aio, b.key, function).post("", json=filled)
    assert response.status_code == 404, response.text
    assert response.json()["error"]["code"] == "not_found"
    assert clean.sql("select count(*) from runs") == runs, "nothing was run"


def test_a_functions_lists_only_ever_show_the_callers_project(tenants, clean):
    a, b, objects = tenants
    # A's run-now, made 40 days old, with its result: past retention, so a dry run lists it
    clean.sql(
        """with old as (update runs set scheduled_at = now() - interval '40 days' where monitor_id = %(m)s
                        returning id, monitor_id, scheduled_at)
           insert into monitor_results (run_id, monitor_id, location, status, checked_at)
           select id, monitor_id, 'us-east', 'up', scheduled_at from old""",
        {"m": objects["monitor_id"]},
    )
    listed = {
        name: ApiClient(client.aio, client.key, "cleanup").post("", json={"dryRun": True}).json()["monitors"]
        for name, client in (("a", a), ("b", b))
    }
    assert [entry["monitorId"] for entry in listed["a"]] == [objects["monitor_id"]]
    assert listed["b"] == []
    by_tag = ApiClient(b.aio, b.key, "schedule").post("", json={"tag": "checkout"})
    assert by_tag.status_code == 200 and by_tag.json()["monitorIds"] == []


def test_monitor_lifecycle_through_the_api(tenants, clean):
    a, _, objects = tenants
    monitor_id = objects["monitor_id"]
    assert a.post(f"/monitors/{monitor_id}/resume").json()["enabled"] is True
    runs_before = clean.sql("select count(*) from runs")[0][0]
    patched = a.request(
        "PATCH", f"/monitors/{monitor_id}", json={"target": "https://b.example.net/", "tags": ["x"]}
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["target"] == "https://b.example.net/" and patched.json()["name"] == "a-mon"
    assert clean.sql("select count(*) from runs")[0][0] == runs_before + 1, "a changed target runs at once"
    renamed = a.request("PATCH", f"/monitors/{monitor_id}", json={"name": "renamed"})
    assert renamed.json()["name"] == "renamed"
    assert clean.sql("select count(*) from runs")[0][0] == runs_before + 1, "a rename is not a reason to run"
    bad = a.request("PATCH", f"/monitors/{monitor_id}", json={"frequencyMinutes": 0})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "frequencyMinutes"
    assert a.post(f"/monitors/{monitor_id}/pause").json()["enabled"] is False
    listed = a.get("/monitors", params={"type": "http", "status": "pending"}).json()
    assert [m["id"] for m in listed["data"]] == [monitor_id]
    run = a.get(f"/runs/{objects['run_id']}").json()
    assert run["expectedLocations"] == ["us-east", "eu-central", "asia-pacific"] and run["status"] is None
    settings = a.request(
        "PUT", f"/monitors/{monitor_id}/notification-settings", json={"providerIds": [objects["provider_id"]]}
    )
    assert settings.json() == {"providerIds": [objects["provider_id"]]}
    assert a.request("DELETE", f"/monitors/{monitor_id}").status_code == 204
    assert a.get(f"/monitors/{monitor_id}").status_code == 404
    actions = [entry["action"] for entry in a.get("/audit-log", params={"limit": 100}).json()["data"]]
    for action in (
        "monitor.create",
        "monitor.update",
        "monitor.pause",
        "monitor.resume",
        "monitor.delete",
        "provider.create",
        "api_key.create",
        "monitor.notification_settings",
    ):
        assert action in actions


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("results", {"page": 0}, "page"),
        ("results", {"limit": 101}, "limit"),
        ("results", {"date": "2026-13-01"}, "date"),
        ("results", {"date": "yesterday"}, "date"),
        ("results", {"timezoneOffset": 841}, "timezoneOffset"),
        ("location-stats", {"days": 91}, "days"),
        ("location-stats", {"days": 0}, "days"),
    ],
)
def test_out_of_range_queries_are_400_naming_the_parameter(tenants, path, params, field):
    a, _, objects = tenants
    response = a.get(f"/monitors/{objects['monitor_id']}/{path}", params=params)
    assert response.status_code == 400
    assert response.json()["error"]["field"] == field


def test_provider_secrets_never_appear_in_reads_audit_errors_streams_or_a_database_dump(
    tenants, clean, infra
):
    a, _, objects = tenants
    reads = [
        a.get("/notification-providers").text,
        a.get(f"/notification-providers/{objects['provider_id']}").text,
        a.get("/audit-log", params={"limit": 100}).text,
    ]
    bad = a.post(
        "/notification-providers",
        json={"name": "x", "type": "webhook", "config": {"url": f"ftp://h/?token={PROVIDER_TOKEN}"}},
    )
    assert bad.status_code == 400
    reads.append(bad.text)
    for text in reads:
        assert PROVIDER_TOKEN not in text
    assert "****" in reads[1]
    dump = _pg_dump(infra.database_url)
    assert PROVIDER_TOKEN not in dump
    r = infra.redis()
    for stream in r.keys("sc:*"):
        if r.type(stream) == "stream":
            assert PROVIDER_TOKEN not in str(r.xrange(stream))


def _pg_dump(database_url: str) -> str:
    from openfaas.local.services import _postgres_bin

    return subprocess.run(
        [str(Path(_postgres_bin()) / "pg_dump"), database_url], check=True, capture_output=True, text=True
    ).stdout


def test_keys_rotate_old_data_stays_readable_and_rekey_moves_it_to_the_newest_key(
    tenants, clean, aio, monkeypatch
):
    from shared import security
    from shared.rekey import reencrypt_all
    from shared.settings import reset_settings_cache

    a, _, objects = tenants
    old_setting = security.key_ring()
    old_id = old_setting.primary_id
    ((stored, owner),) = clean.sql("select config_encrypted, project_id from notification_providers")
    assert stored.startswith(f"enc:v2:{old_id}:")
    binding = security.provider_binding(owner)
    new_key = generate_key()
    old_entries = ",".join(
        f"{kid}:{__import__('base64').b64encode(key).decode()}" for kid, key in old_setting.keys.items()
    )
    monkeypatch.setenv("SC_CREDENTIAL_KEY", f"k2:{new_key},{old_entries}")
    reset_settings_cache()
    security.key_ring.cache_clear()
    try:
        ring = security.key_ring()
        assert ring.primary_id == "k2"
        assert "hooks.example.net" in ring.decrypt(stored, binding), (
            "data under the old key is still readable"
        )
        counts = aio.run(reencrypt_all())
        assert counts["notification_providers"] == 1
        ((rotated,),) = clean.sql("select config_encrypted from notification_providers")
        assert rotated.startswith("enc:v2:k2:")
        assert KeyRing.parse(f"k2:{new_key}").decrypt(rotated, binding) == ring.decrypt(stored, binding)
        assert aio.run(reencrypt_all())["notification_providers"] == 0
    finally:
        monkeypatch.undo()
        reset_settings_cache()
        security.key_ring.cache_clear()


@pytest.mark.parametrize(
    ("setting", "fragment"),
    [
        (None, "no credential key"),
        ("", "no credential key"),
        ("dG9vLXNob3J0", "AES-256 needs exactly 32"),
        ("k1:!!!", "not valid base64"),
    ],
)
def test_a_missing_or_short_credential_key_is_a_clear_error(setting, fragment):
    from shared.security import CredentialKeyError

    with pytest.raises(CredentialKeyError, match=fragment):
        KeyRing.parse(setting)


def test_the_openapi_document_describes_every_endpoint(aio):
    doc = ApiClient(aio, None).get("/openapi.json").json()
    assert doc["openapi"] == "3.1.0"
    described = {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}
    assert described == {(spec.method, spec.path) for spec in ENDPOINTS}
    assert "ErrorBody" in doc["components"]["schemas"]


def test_bootstrap_creates_one_default_key_or_pins_the_given_one(clean, aio, monkeypatch):
    async def boot():
        async with db.transaction() as conn:
            return await auth.bootstrap(conn)

    clean.sql("delete from api_keys")
    first = aio.run(boot())
    assert first and first.startswith("sck_")
    assert aio.run(boot()) is None
    pinned = "ci-" + uuid.uuid4().hex + uuid.uuid4().hex
    monkeypatch.setenv("SC_BOOTSTRAP_API_KEY", pinned)
    reset_settings_cache()
    assert aio.run(boot()) == pinned
    assert ApiClient(aio, pinned).get("/project").json()["name"] == "Default"


def test_maintenance_windows_synthetic_tests_and_variables_through_the_api(tenants, aio):
    a, b, objects = tenants
    windows = a.get("/maintenance-windows").json()
    assert [w["cron"] for w in windows] == ["0 2 * * 0"]
    bad = a.post("/maintenance-windows", json={"name": "x", "cron": "0 2 * * 0"})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "durationMinutes"
    foreign = b.post(
        "/maintenance-windows",
        json={"name": "x", "cron": "0 2 * * 0", "durationMinutes": 5, "monitorIds": [objects["monitor_id"]]},
    )
    assert foreign.status_code == 400 and foreign.json()["error"]["field"] == "monitorIds"
    assert a.request("DELETE", f"/maintenance-windows/{objects['window_id']}").status_code == 204

    variable = a.get("/variables/PASSWORD").json()
    assert variable["isSecret"] and "hunter2-hunter2" not in str(variable)
    monitor = a.post(
        "/monitors",
        json={
            "name": "journey",
            "type": "synthetic_test",
            "target": objects["test_id"],
            "frequencyMinutes": 5,
            "enabled": False,
        },
    )
    assert monitor.status_code == 201, monitor.text
    too_often = a.post(
        "/monitors",
        json={
            "name": "j",
            "type": "synthetic_test",
            "target": objects["test_id"],
            "frequencyMinutes": 1,
            "enabled": False,
        },
    )
    assert too_often.status_code == 400 and too_often.json()["error"]["field"] == "frequencyMinutes"
    other = b.post(
        "/monitors",
        json={
            "name": "j",
            "type": "synthetic_test",
            "target": objects["test_id"],
            "frequencyMinutes": 5,
            "enabled": False,
        },
    )
    assert other.status_code == 400 and other.json()["error"]["field"] == "target"
    assert a.request("DELETE", f"/synthetic-tests/{objects['test_id']}").status_code == 409


def test_a_provider_test_sends_one_sample_alert(tenants, internal_targets, webhook_receiver):
    a, _, _ = tenants
    provider = a.post(
        "/notification-providers",
        json={"name": "local", "type": "webhook", "config": {"url": webhook_receiver.url}},
    ).json()
    result = a.post(f"/notification-providers/{provider['id']}/test")
    assert result.status_code == 200, result.text
    assert result.json()["status"] == "sent"
    assert len(webhook_receiver.wait_for_requests(1)) == 1
