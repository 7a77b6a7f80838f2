"""Trials: POST /function/check-http|check-ping|check-port with a check given in the body runs it once and stores
nothing."""

from __future__ import annotations

import socket
import uuid

import httpx
import pytest
from functions_framework.aio import create_asgi_app

from openfaas.local.stack import PROJECT_ROOT
from tests.check_servers import RouteServer, UdpPeer, closed_port
from tests.factories import signed


@pytest.fixture
def gateway(stack, clean):
    with httpx.Client(base_url=f"{stack.gateway_url}/function", timeout=60) as client:
        yield client


@pytest.fixture
def target():
    server = RouteServer().start()
    yield server
    server.stop()


def test_each_check_function_runs_one_check_and_stores_nothing(gateway, target, infra):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        tries = [
            (
                "check-http",
                {
                    "type": "http",
                    "target": target.url("/json"),
                    "config": {"jsonPathAssertion": '$.status == "ok"'},
                },
                "up",
            ),
            ("check-http", {"type": "website", "target": target.url("/status/503")}, "down"),
            ("check-ping", {"type": "ping_host", "target": "127.0.0.1", "config": {"count": 2}}, "up"),
            (
                "check-port",
                {"type": "port_check", "target": "127.0.0.1", "config": {"port": listener.getsockname()[1]}},
                "up",
            ),
            (
                "check-port",
                {"type": "port_check", "target": "127.0.0.1", "config": {"port": closed_port()}},
                "down",
            ),
        ]
        for function, body, status in tries:
            response = gateway.post(f"/{function}", json=body)
            assert response.status_code == 200, response.text
            assert response.json()["status"] == status, (function, response.json())
    http_result = gateway.post("/check-http", json=tries[0][1]).json()
    assert http_result["statusCode"] == 200 and http_result["firstByteMs"] > 0
    assert infra.sql("select count(*) from monitor_results") == [(0,)]
    r = infra.redis()
    assert not r.keys("sc:ssl:*"), "no certificate note for a one-off check"
    assert not [key for key in r.keys("sc:*") if r.type(key) == "stream" and r.xlen(key)], "nothing published"


def test_a_udp_check_through_its_function(gateway):
    peer = UdpPeer(echo=True)
    try:
        response = gateway.post(
            "/check-port",
            json={
                "type": "port_check",
                "target": "127.0.0.1",
                "config": {"port": peer.port, "protocol": "udp", "udpPayload": "ping"},
            },
        )
    finally:
        peer.stop()
    assert response.json()["status"] == "up" and peer.received == [b"ping"]


def test_a_bad_config_is_a_400_naming_the_field(gateway):
    response = gateway.post(
        "/check-port", json={"type": "port_check", "target": "127.0.0.1", "config": {"port": 0}}
    )
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "config.port"


def test_credentials_given_in_plaintext_are_used_and_not_echoed(gateway, target):
    response = gateway.post(
        "/check-http",
        json={
            "type": "http",
            "target": target.url("/echo?status=500"),
            "config": {"auth": {"type": "bearer", "token": "trial-secret-token"}},
        },
    )
    assert target.seen[-1].headers["Authorization"] == "Bearer trial-secret-token"
    assert response.json()["status"] == "down" and "trial-secret-token" not in response.text


@pytest.mark.parametrize(
    ("function", "body"),
    [
        ("check-http", {"type": "http", "target": "http://169.254.169.254/latest/meta-data/"}),
        ("check-http", {"type": "website", "target": "http://[::ffff:127.0.0.1]:8080/"}),
        ("check-ping", {"type": "ping_host", "target": "2130706433"}),
        ("check-port", {"type": "port_check", "target": "10.0.0.1", "config": {"port": 22}}),
    ],
)
def test_trials_obey_the_same_ssrf_rules(internal_targets_blocked, function, body):
    """The function's own app, in this process, with internal targets blocked as they are by default."""
    folder = function.replace("-", "_")
    app = create_asgi_app(target="handle", source=str(PROJECT_ROOT / f"functions/{folder}/main.py"))

    async def call():
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gateway"
        ) as client:
            # signed as the API signs its trials: this process runs no anonymous mode
            return await client.post(
                f"/function/{function}", **signed({**body, "projectId": str(uuid.uuid4())})
            )

    import asyncio

    response = asyncio.run(call())
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["field"] == "target" and "internal targets are blocked" in error["message"]
