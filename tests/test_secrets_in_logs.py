"""Secrets never reach a log: every process of the local stack, after checks with credentials, alerts delivered
and failed, and requests rejected while carrying secrets."""

from __future__ import annotations

from base64 import b64encode

import httpx

from openfaas.local.services import free_port
from tests.servers import LoopbackHttpServer, wait_until

PASSWORD = "pw-5d1c9b7a3e2f"
BEARER = "bearer-8c2f4e6a0b1d"
HOOK_TOKEN = "hooktok-3b9d7f1e5a2c"
SECRETS = (PASSWORD, BEARER, HOOK_TOKEN)


def test_no_secret_reaches_any_log_of_the_stack(stack, clean, infra, webhook_receiver):
    failing_target = LoopbackHttpServer(status=500).start()
    try:
        with httpx.Client(base_url=f"{stack.gateway_url}/function", timeout=30) as api:
            providers = [
                api.post(
                    "/api/notification-providers",
                    json={
                        "name": name,
                        "type": "webhook",
                        "config": {"url": f"{url}/hook?token={HOOK_TOKEN}"},
                    },
                )
                for name, url in [
                    ("delivered", webhook_receiver.url),
                    ("refused", f"http://127.0.0.1:{free_port()}"),  # nothing listens: delivery fails
                ]
            ]
            assert all(p.status_code == 201 for p in providers), [p.text for p in providers]
            monitor_ids = []
            for auth in (
                {"type": "basic", "username": "ops", "password": PASSWORD},
                {"type": "bearer", "token": BEARER},
            ):
                response = api.post(
                    "/api/monitors",
                    json={
                        "name": f"with {auth['type']} auth",
                        "type": "http",
                        "target": failing_target.url,
                        "frequencyMinutes": 60,
                        "config": {"auth": auth},
                        "alertConfig": {
                            "enabled": True,
                            "notificationProviders": [p.json()["id"] for p in providers],
                        },
                    },
                )
                assert response.status_code == 201, response.text
                monitor_ids.append(response.json()["id"])
            rejected = api.post(
                "/api/monitors",
                json={
                    "name": "bad",
                    "type": "http",
                    "target": "not a url",
                    "config": {"auth": {"type": "basic", "username": "ops", "password": PASSWORD}},
                },
            )
            assert rejected.status_code == 400
            assert api.post("/schedule", json={"monitorIds": monitor_ids}).status_code == 200
            # Two monitors x two providers: two deliveries succeed, two fail (after their retries).
            wait_until(
                lambda: (
                    infra.sql("select count(*) from alert_history where status in ('sent', 'failed')")[0][0]
                    >= 4
                ),
                timeout=90,
                message="four settled deliveries",
            )
    finally:
        failing_target.stop()
    assert infra.sql("select status, count(*) from alert_history group by status order by status") == [
        ("failed", 2),
        ("sent", 2),
    ]
    sent = {r.headers.get("Authorization") for r in failing_target.requests}
    # The checks did use the secrets, so every process along the way had them in hand.
    assert f"Bearer {BEARER}" in sent and "Basic " + b64encode(f"ops:{PASSWORD}".encode()).decode() in sent
    logs = {path.name: path.read_text(errors="replace") for path in stack.log_dir.glob("*.log")}
    assert "check-http.log" in logs and "alert.log" in logs, sorted(logs)
    leaks = [(name, secret) for name, text in logs.items() for secret in SECRETS if secret in text]
    assert leaks == []
