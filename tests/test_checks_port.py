"""Port checks: real TCP listeners, a UDP echo peer, a silent UDP peer and closed ports, over IPv4 and IPv6."""

from __future__ import annotations

import asyncio
import socket

import pytest

from shared.checks import run_check
from shared.checks.spec import CheckTrial
from tests.check_servers import UdpPeer, closed_port, has_ipv6_loopback
from tests.factories import trial_job

HOSTS = [
    "127.0.0.1",
    pytest.param(
        "::1", marks=pytest.mark.skipif(not has_ipv6_loopback(), reason="no IPv6 loopback (::1) here")
    ),
]


# Loopback answers for the hosts these checks reach, so they lift internal-target protection.
pytestmark = pytest.mark.usefixtures("internal_targets")


def port_check(target: str, port: int, **config):
    job = trial_job({"type": "port_check", "target": target, "config": {"port": port, **config}})
    return asyncio.run(run_check(job))


@pytest.fixture(params=HOSTS)
def host(request) -> str:
    return request.param


@pytest.fixture
def tcp_listener(host):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as listener:
        listener.bind((host, 0))
        listener.listen(16)
        yield listener.getsockname()[1]


def test_an_open_tcp_port_is_up(host, tcp_listener):
    outcome = port_check(host, tcp_listener)
    assert (outcome.status, outcome.message) == ("up", f"TCP port {tcp_listener} is open")
    assert outcome.details["address"] == host and outcome.connect_ms is not None


def test_a_closed_tcp_port_is_down(host):
    port = closed_port(host)
    outcome = port_check(host, port)
    assert (outcome.status, outcome.message) == ("down", f"TCP port {port} refused the connection")


def test_expect_closed_turns_the_tcp_verdict_upside_down(host, tcp_listener):
    assert port_check(host, tcp_listener, expectClosed=True).status == "down"
    closed = port_check(host, closed_port(host), expectClosed=True)
    assert closed.status == "up" and "closed, as expected" in closed.message


def test_a_udp_reply_is_up_and_carries_the_payload(host):
    peer = UdpPeer(host, echo=True)
    try:
        outcome = port_check(host, peer.port, protocol="udp", udpPayload="hello?", timeoutSeconds=2)
    finally:
        peer.stop()
    assert (outcome.status, outcome.message) == ("up", f"UDP port {peer.port} replied")
    assert peer.received == [b"hello?"]


def test_icmp_port_unreachable_makes_a_udp_port_down(host):
    port = closed_port(host, socket.SOCK_DGRAM)
    outcome = port_check(host, port, protocol="udp", timeoutSeconds=2)
    assert (outcome.status, outcome.message) == ("down", f"UDP port {port} is closed (ICMP port unreachable)")


def test_a_silent_udp_port_is_up_but_unconfirmed_unless_a_reply_is_required(host):
    peer = UdpPeer(host, echo=False)
    try:
        silent = port_check(host, peer.port, protocol="udp", timeoutSeconds=1)
        required = port_check(host, peer.port, protocol="UDP", timeoutSeconds=1, requireReply=True)
    finally:
        peer.stop()
    assert silent.status == "up" and silent.details["unconfirmed"] is True
    assert "unconfirmed" in silent.message
    assert required.status == "down" and "a reply is required" in required.message
    assert peer.received == [b"", b""], "an empty payload still sends a datagram"


@pytest.mark.parametrize(
    ("config", "field", "fragment"),
    [
        ({}, "config.port", "is required"),
        ({"port": 0}, "config.port", "greater than or equal to 1"),
        ({"port": 65536}, "config.port", "less than or equal to 65535"),
        ({"port": 80, "protocol": "sctp"}, "config.protocol", "Input should be"),
        ({"port": 53, "protocol": "udp", "expectClosed": True}, "config.expectClosed", "TCP only"),
        ({"port": 80, "timeoutSeconds": 0}, "config.timeoutSeconds", "greater than or equal to 1"),
        ({"port": 80, "udpPayload": "x" * 1025}, "config.udpPayload", "at most 1024"),
    ],
)
def test_bad_port_configs_are_refused_naming_the_field(config, field, fragment):
    from pydantic import ValidationError

    from shared.errors import validation_error_to_api_error

    with pytest.raises(ValidationError) as refused:
        CheckTrial.model_validate({"type": "port_check", "target": "example.com", "config": config})
    error = validation_error_to_api_error(refused.value)
    assert error.field == field and fragment in error.message
