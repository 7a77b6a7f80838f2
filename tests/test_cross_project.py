"""Door 4 of issue 15: no secret of one project reaches another. Ciphertexts are bound to their project and field
(AES-GCM associated data), the API refuses ciphertexts in what clients send, and `shared.rekey` moves rows
written before the binding onto it. Against real Postgres and a real loopback HTTP server."""

from __future__ import annotations

import base64
import json
import os
import uuid

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shared import security
from shared.checks import run_check
from shared.models import CheckJob
from shared.settings import reset_settings_cache
from tests.api_client import ApiClient
from tests.check_servers import RouteServer
from tests.factories import make_project

TOKEN = "tok-of-project-a-0123456789"
PASSWORD = "pw-of-project-a-9876543210"


@pytest.fixture
def server():
    running = RouteServer().start()
    yield running
    running.stop()


@pytest.fixture
def two_projects(clean, aio):
    return ApiClient(aio, make_project(aio, "A")), ApiClient(aio, make_project(aio, "B"))


def bearer_monitor(target: str) -> dict:
    return {
        "name": "with-token",
        "type": "http_request",
        "target": target,
        "enabled": False,
        "config": {"auth": {"type": "bearer", "token": TOKEN}},
    }


def stored_monitor(clean, monitor_id: str) -> tuple[dict, uuid.UUID]:
    ((config, project_id),) = clean.sql(
        "select config, project_id from monitors where id = %s", (monitor_id,)
    )
    return config, project_id


def job_of(clean, monitor_id: str) -> CheckJob:
    """The job the schedule renders for this monitor (its stored config and its project)."""
    ((target, config, project_id),) = clean.sql(
        "select target, config, project_id from monitors where id = %s", (monitor_id,)
    )
    return CheckJob.model_validate(
        {
            "run_id": str(uuid.uuid4()),
            "monitor_id": monitor_id,
            "project_id": str(project_id),
            "location": "us-east",
            "type": "http_request",
            "target": target,
            "config": config,
            "scheduled_at": "2026-01-01T00:00:00Z",
            "deadline": "2026-01-01T00:01:00Z",
        }
    )


def test_a_monitors_secret_opens_in_its_own_project(two_projects, clean, aio, server, internal_targets):
    a, _ = two_projects
    created = a.post("/monitors", json=bearer_monitor(server.url("/")))
    assert created.status_code == 201, created.text
    config, _ = stored_monitor(clean, created.json()["id"])
    assert config["auth"]["token"].startswith("enc:v2:") and TOKEN not in json.dumps(config)
    outcome = aio.run(run_check(job_of(clean, created.json()["id"])))
    assert outcome.status == "up", outcome.message
    assert server.seen[-1].headers["Authorization"] == f"Bearer {TOKEN}"


def test_a_ciphertext_copied_into_another_project_opens_nowhere(
    two_projects, clean, aio, server, internal_targets
):
    """Even written straight into the database, A's ciphertext in B's monitor decrypts neither in B's check nor in
    B's reads: the project id is part of the associated data."""
    a, b = two_projects
    from_a = a.post("/monitors", json=bearer_monitor(server.url("/")))
    to_b = b.post("/monitors", json={**bearer_monitor(server.url("/b")), "config": {}})
    assert from_a.status_code == to_b.status_code == 201
    config, _ = stored_monitor(clean, from_a.json()["id"])
    clean.sql("update monitors set config = %s where id = %s", (json.dumps(config), to_b.json()["id"]))

    outcome = aio.run(run_check(job_of(clean, to_b.json()["id"])))
    assert outcome.status == "error" and "cannot be decrypted" in outcome.message
    assert server.seen == [], "no request left with A's token"
    shown = b.get(f"/monitors/{to_b.json()['id']}").json()["config"]["auth"]["token"]
    assert shown == "****", "B's read shows nothing of A's token, not even its first and last characters"


@pytest.mark.parametrize("version", ["enc:v2", "enc:v1"])
def test_the_api_refuses_a_ciphertext_sent_as_a_secret(two_projects, clean, version):
    a, b = two_projects
    created = a.post("/monitors", json=bearer_monitor("https://a.example.net/"))
    ciphertext = stored_monitor(clean, created.json()["id"])[0]["auth"]["token"]
    ciphertext = ciphertext.replace("enc:v2", version, 1)
    body = bearer_monitor("https://b.example.net/")
    body["config"]["auth"]["token"] = ciphertext

    for method, path, payload in [
        ("POST", "/monitors", body),
        (
            "POST",
            "/monitors/test",
            {"type": body["type"], "target": body["target"], "config": body["config"]},
        ),
    ]:
        refused = b.request(method, path, json=payload)
        assert refused.status_code == 400, (path, refused.text)
        error = refused.json()["error"]
        assert error["field"] == "config.auth.token" and "encrypted value" in error["message"], error
        assert ciphertext not in refused.text

    mine = b.post("/monitors", json=bearer_monitor("https://b.example.net/")).json()["id"]
    for method in ("PUT", "PATCH"):
        refused = b.request(method, f"/monitors/{mine}", json=body)
        assert refused.status_code == 400, (method, refused.text)
        assert refused.json()["error"]["field"] == "config.auth.token"
    header = {**body, "config": {"headers": {"Authorization": ciphertext}}}
    refused = b.post("/monitors", json=header)
    assert refused.status_code == 400 and refused.json()["error"]["field"].startswith("config.headers")
    assert clean.sql("select count(*) from monitors")[0][0] == 2, "nothing refused was stored"


def test_a_partial_update_keeps_the_stored_secret(two_projects, clean, aio, server, internal_targets):
    a, _ = two_projects
    created = a.post("/monitors", json=bearer_monitor(server.url("/")))
    before = stored_monitor(clean, created.json()["id"])[0]
    renamed = a.request(
        "PATCH",
        f"/monitors/{created.json()['id']}",
        json={"name": "renamed", "config": {"timeoutSeconds": 5}},
    )
    assert renamed.status_code == 200, renamed.text
    after = stored_monitor(clean, created.json()["id"])[0]
    assert after["auth"]["token"] == before["auth"]["token"] and after["timeoutSeconds"] == 5
    aio.run(run_check(job_of(clean, created.json()["id"])))
    assert server.seen[-1].headers["Authorization"] == f"Bearer {TOKEN}"


def legacy_ciphertext(ring: security.KeyRing, plaintext: str) -> str:
    """What the code wrote before ciphertexts were bound: enc:v1, with only the key id as associated data."""
    nonce = os.urandom(12)
    sealed = AESGCM(ring.keys[ring.primary_id]).encrypt(nonce, plaintext.encode(), ring.primary_id.encode())
    return f"enc:v1:{ring.primary_id}:{base64.b64encode(nonce + sealed).decode()}"


def test_rekey_moves_legacy_rows_onto_bound_ciphertexts_under_the_newest_key(
    two_projects, clean, aio, monkeypatch, server, internal_targets
):
    from shared.rekey import reencrypt_all
    from shared.synthetic.store import variable_binding

    a, _ = two_projects
    old = security.key_ring()
    monitor = a.post("/monitors", json=bearer_monitor(server.url("/"))).json()["id"]
    provider = a.post(
        "/notification-providers",
        json={"name": "hook", "type": "webhook", "config": {"url": "https://h.example.net/"}},
    ).json()["id"]
    assert (
        a.post("/variables", json={"name": "PASSWORD", "value": PASSWORD, "isSecret": True}).status_code
        == 201
    )
    project_id = stored_monitor(clean, monitor)[1]
    # Rows as an older release left them.
    clean.sql(
        "update monitors set config = jsonb_set(config, '{auth,token}', to_jsonb(%s::text)) where id = %s",
        (legacy_ciphertext(old, TOKEN), monitor),
    )
    clean.sql(
        "update notification_providers set config_encrypted = %s where id = %s",
        (legacy_ciphertext(old, json.dumps({"url": "https://h.example.net/"})), provider),
    )
    clean.sql("update project_variables set value = %s", (legacy_ciphertext(old, PASSWORD),))
    assert aio.run(run_check(job_of(clean, monitor))).status == "up", "a legacy row still works before rekey"

    new_key = base64.b64encode(os.urandom(32)).decode()
    old_entries = ",".join(f"{kid}:{base64.b64encode(key).decode()}" for kid, key in old.keys.items())
    monkeypatch.setenv("SC_CREDENTIAL_KEY", f"k9:{new_key},{old_entries}")
    reset_settings_cache()
    security.key_ring.cache_clear()
    try:
        assert aio.run(reencrypt_all()) == {
            "notification_providers": 1,
            "monitors": 1,
            "project_variables": 1,
        }
        assert aio.run(reencrypt_all()) == {
            "notification_providers": 0,
            "monitors": 0,
            "project_variables": 0,
        }
        only_new = security.KeyRing.parse(f"k9:{new_key}")
        token = stored_monitor(clean, monitor)[0]["auth"]["token"]
        assert token.startswith("enc:v2:k9:")
        assert only_new.decrypt(token, security.Binding(project_id, "config.auth.token")) == TOKEN
        ((config,),) = clean.sql("select config_encrypted from notification_providers")
        assert json.loads(only_new.decrypt(config, security.provider_binding(project_id)))["url"]
        ((value,),) = clean.sql("select value from project_variables")
        assert only_new.decrypt(value, variable_binding(project_id, "PASSWORD")) == PASSWORD
        with pytest.raises(InvalidTag):  # bound: the same ciphertext does not open as another variable
            only_new.decrypt(value, variable_binding(project_id, "OTHER"))
        server.seen.clear()
        assert aio.run(run_check(job_of(clean, monitor))).status == "up"
        assert server.seen[-1].headers["Authorization"] == f"Bearer {TOKEN}"
    finally:
        monkeypatch.undo()
        reset_settings_cache()
        security.key_ring.cache_clear()
