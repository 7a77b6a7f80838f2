"""Who may call a function, tried door by door against the real local stack with the anonymous mode off:
signed deliveries (bad, stale, tampered, unsigned), cron's empty calls, and API keys kept to their project."""

from __future__ import annotations

import json
import time
import uuid

import httpx
import pytest

from openfaas.local.runtime import LocalStack
from openfaas.local.services import free_port
from shared import auth, internal_auth
from tests.factories import a_job, bearer, make_project, signed

CONNECTOR_FED = [
    "check-http",
    "check-port",
    "check-ping",
    "check-dns",
    "check-synthetic",
    "aggregate",
    "alert",
]
EVERY_FUNCTION = [*CONNECTOR_FED, "schedule", "cleanup"]
TRIVIAL_SCRIPT = "async def run(page, context, variables):\n    pass\n"


@pytest.fixture(scope="module")
def strict_stack(infra, tmp_path_factory):
    """The local runtime as production runs it: no anonymous mode, so every parameterized call needs a key."""
    local = LocalStack(
        env={"ALLOW_INTERNAL_TARGETS": "true", "SC_ALLOW_ANONYMOUS_LOCAL": "false"},
        log_dir=tmp_path_factory.mktemp("strict-stack-logs"),
        gateway_port=free_port(),
        with_cron=False,
    ).start()
    yield local
    local.stop()


@pytest.fixture
def gateway(strict_stack, clean):
    with httpx.Client(base_url=f"{strict_stack.gateway_url}/function", timeout=120) as client:
        yield client


@pytest.fixture
def tenants(clean, aio):
    """Two projects' keys; project A has a monitor (tagged) and a synthetic test."""
    keys = {name: make_project(aio, name) for name in ("A", "B")}
    projects = {
        name: clean.sql("select project_id from api_keys where key_hash = %s", (auth.key_hash(key),))[0][0]
        for name, key in keys.items()
    }
    monitor = clean.sql(
        """insert into monitors (project_id, name, type, target, tags, enabled, frequency_minutes)
           values (%s, 'a-mon', 'http_request', 'http://127.0.0.1:9/', '{checkout}', false, 5) returning id""",
        (projects["A"],),
    )[0][0]
    test = clean.sql(
        "insert into synthetic_tests (project_id, title, script) values (%s, 'a-test', %s) returning id",
        (projects["A"], TRIVIAL_SCRIPT),
    )[0][0]
    return keys, projects, {"monitor_id": str(monitor), "test_id": str(test)}


def a_batch() -> dict:
    return {"messages": [{"id": "1-0", "stream": "sc:jobs:http_request:us-east", "data": a_job()}]}


def refused(response: httpx.Response) -> bool:
    return response.status_code == 401 and response.json()["error"]["code"] == "unauthorized"


# --- signed deliveries ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("function", CONNECTOR_FED)
def test_an_unsigned_delivery_is_refused(gateway, clean, function):
    response = gateway.post(f"/{function}", json=a_batch())
    assert refused(response), response.text
    assert clean.sql("select count(*) from monitor_results") == [(0,)]


@pytest.mark.parametrize("function", CONNECTOR_FED)
def test_a_delivery_signed_with_another_token_is_refused(gateway, function):
    response = gateway.post(f"/{function}", **signed(a_batch(), token="not-the-internal-token-" + "x" * 20))
    assert refused(response) and "does not match" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "age", [-(internal_auth.REPLAY_WINDOW_SECONDS + 60), internal_auth.REPLAY_WINDOW_SECONDS + 60]
)
def test_a_delivery_signed_outside_the_replay_window_is_refused(gateway, age):
    response = gateway.post("/aggregate", **signed({"messages": []}, now=time.time() - age))
    assert refused(response) and "replay window" in response.json()["error"]["message"]


def test_a_captured_delivery_with_its_body_changed_is_refused(gateway, clean):
    call = signed({"messages": []})
    assert gateway.post("/aggregate", **call).status_code == 200, "the genuine delivery verifies"
    tampered = {"content": json.dumps(a_batch()).encode(), "headers": call["headers"]}
    assert refused(gateway.post("/check-http", **tampered))
    assert refused(gateway.post("/aggregate", headers=call["headers"], content=b""))


def test_a_delivery_replayed_after_the_window_no_longer_verifies():
    signed_at = 1_700_000_000
    body = json.dumps({"messages": []}).encode()
    headers = internal_auth.sign(body, now=signed_at)
    internal_auth.verify(headers, body, now=signed_at + internal_auth.REPLAY_WINDOW_SECONDS)
    with pytest.raises(internal_auth.SignatureRefused, match="replay window"):
        internal_auth.verify(headers, body, now=signed_at + internal_auth.REPLAY_WINDOW_SECONDS + 1)


@pytest.mark.parametrize("function", EVERY_FUNCTION)
def test_a_garbage_body_is_refused_before_it_is_parsed(gateway, function):
    garbage = b"\xff{ this is not json"
    assert refused(gateway.post(f"/{function}", content=garbage))
    half_signed = {internal_auth.TIMESTAMP_HEADER: str(int(time.time()))}
    assert refused(gateway.post(f"/{function}", content=garbage, headers=half_signed))


def test_a_signed_batch_is_delivered_and_a_keys_batch_is_forbidden(gateway, tenants, clean):
    keys, _, _ = tenants
    response = gateway.post("/check-http", json=a_batch(), headers=bearer(keys["A"]))
    assert response.status_code == 403, response.text
    # signed, the batch is read: its one job (of no stored run) is rejected by name, to be dead-lettered
    bad_job = {"messages": [{"id": "1-0", "data": a_job(deadline="not a time")}]}
    response = gateway.post("/check-http", **signed(bad_job))
    assert response.status_code == 200, response.text
    assert [item["id"] for item in response.json()["rejected"]] == ["1-0"]
    assert "deadline" in response.json()["rejected"][0]["error"]


@pytest.mark.parametrize("function", ["aggregate", "alert"])
def test_alert_and_aggregate_take_no_parameters_from_a_key(gateway, tenants, function):
    keys, _, _ = tenants
    assert refused(gateway.post(f"/{function}", json={"messages": []}, headers=bearer(keys["A"])))


# --- cron calls ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("function", ["schedule", "aggregate", "cleanup"])
def test_an_empty_unsigned_cron_call_does_the_functions_own_work(gateway, function):
    response = gateway.post(f"/{function}", content=b"")
    assert response.status_code == 200, response.text


def test_an_empty_unsigned_call_to_a_function_without_cron_work_is_refused(gateway):
    assert refused(gateway.post("/alert", content=b""))
    assert refused(gateway.post("/check-http", content=b""))


# --- API keys, each in its own project -----------------------------------------------------------------------


def test_run_now_of_another_projects_monitor_runs_nothing(gateway, tenants, clean):
    keys, _, objects = tenants
    by_id = gateway.post("/schedule", json={"monitorIds": [objects["monitor_id"]]}, headers=bearer(keys["B"]))
    assert by_id.status_code == 404 and by_id.json()["error"]["code"] == "not_found"
    by_tag = gateway.post("/schedule", json={"tag": "checkout"}, headers=bearer(keys["B"]))
    assert by_tag.status_code == 200 and by_tag.json()["monitorIds"] == [] and by_tag.json()["runIds"] == []
    assert refused(gateway.post("/schedule", json={"monitorIds": [objects["monitor_id"]]}))
    assert clean.sql("select count(*) from runs") == [(0,)]
    assert not [key for key in clean.redis().keys("sc:jobs:*") if clean.redis().xlen(key)]

    own = gateway.post("/schedule", json={"tag": "checkout"}, headers=bearer(keys["A"]))
    assert own.status_code == 200 and own.json()["monitorIds"] == [objects["monitor_id"]], own.text
    assert clean.sql("select monitor_id::text from runs") == [(objects["monitor_id"],)]


def test_a_schedule_window_is_not_a_keys_to_choose(gateway, tenants):
    keys, _, _ = tenants
    response = gateway.post("/schedule", json={"windowSeconds": 300}, headers=bearer(keys["A"]))
    assert response.status_code == 400 and response.json()["error"]["field"] == "windowSeconds"


def test_a_direct_check_needs_a_key(gateway, tenants):
    keys, _, _ = tenants
    trial = {"type": "port_check", "target": "127.0.0.1", "config": {"port": 9}}
    assert refused(gateway.post("/check-port", json=trial))
    assert refused(gateway.post("/check-port", json=trial, headers=bearer("sck_not-a-real-key")))
    keyed = gateway.post("/check-port", json=trial, headers=bearer(keys["B"]))
    assert keyed.status_code == 200 and keyed.json()["status"] == "down", keyed.text


def test_a_signed_trial_must_name_its_project(gateway):
    trial = {"type": "port_check", "target": "127.0.0.1", "config": {"port": 9}}
    response = gateway.post("/check-port", **signed(trial))
    assert response.status_code == 400 and response.json()["error"]["field"] == "projectId"


def test_a_synthetic_trial_of_another_projects_test_is_404_via_the_api_and_directly(gateway, tenants):
    keys, _, objects = tenants
    trial = {"type": "synthetic_test", "target": objects["test_id"]}
    via_api = gateway.post("/api/monitors/test", json=trial, headers=bearer(keys["B"]))
    assert via_api.status_code == 404 and via_api.json()["error"]["code"] == "not_found", via_api.text
    direct = gateway.post("/check-synthetic", json=trial, headers=bearer(keys["B"]))
    assert direct.status_code == 404, direct.text
    forged = gateway.post("/check-synthetic", **signed({**trial, "projectId": str(uuid.uuid4())}))
    assert forged.status_code == 404, forged.text
    assert "a-test" not in via_api.text + direct.text + forged.text

    own = gateway.post("/api/monitors/test", json=trial, headers=bearer(keys["A"]))
    assert own.status_code == 200, own.text


_OLD_RESULT = """
with r as (
    insert into runs (monitor_id, scheduled_at, expected_locations, deadline, finalized_at, status)
    values (%(monitor)s, now() - interval '40 days', '{us-east}', now(), now(), 'up') returning id, scheduled_at
)
insert into monitor_results (run_id, monitor_id, location, status, checked_at, response_time_ms)
select r.id, %(monitor)s, 'us-east', 'up', r.scheduled_at, 50 from r
"""


def test_cleanup_for_a_key_counts_and_deletes_only_its_projects_rows(gateway, tenants, clean):
    keys, projects, objects = tenants
    b_monitor = clean.sql(
        """insert into monitors (project_id, name, type, target, frequency_minutes)
           values (%s, 'b', 'http_request', 'http://127.0.0.1:9/', 5) returning id""",
        (projects["B"],),
    )[0][0]
    for monitor in (objects["monitor_id"], b_monitor):
        clean.sql(_OLD_RESULT, {"monitor": monitor})
    assert refused(gateway.post("/cleanup", json={"dryRun": True}))

    dry = gateway.post("/cleanup", json={"dryRun": True}, headers=bearer(keys["B"]))
    assert dry.status_code == 200, dry.text
    assert [entry["monitorId"] for entry in dry.json()["monitors"]] == [str(b_monitor)]
    assert objects["monitor_id"] not in dry.text and dry.json()["projectId"] == str(projects["B"])

    manual = gateway.post("/cleanup", json={}, headers=bearer(keys["B"]))
    assert manual.status_code == 200, manual.text
    assert [entry["monitorId"] for entry in manual.json()["monitors"]] == [str(b_monitor)]
    left = clean.sql("select monitor_id::text from monitor_results")
    assert left == [(objects["monitor_id"],)], "A's old result waits for A's run or the daily one"
