"""Ping checks: real ICMP to 127.0.0.1 and ::1 through icmplib, and a clear error when sockets are refused."""

from __future__ import annotations

import asyncio

import icmplib
import pytest

from shared.checks import ping as ping_module
from shared.checks import run_check
from shared.checks.spec import CheckTrial
from shared.models import CheckJob
from tests.check_servers import has_ipv6_loopback
from tests.factories import trial_job

# Loopback answers for the hosts these checks reach, so they lift internal-target protection.
pytestmark = pytest.mark.usefixtures("internal_targets")


def ping(target: str, **config):
    job = trial_job({"type": "ping_host", "target": target, "config": config})
    return asyncio.run(run_check(job))


@pytest.mark.parametrize(
    "target",
    [
        "127.0.0.1",
        "localhost",
        pytest.param(
            "::1",
            marks=pytest.mark.skipif(
                not has_ipv6_loopback(), reason="this machine has no IPv6 loopback (::1)"
            ),
        ),
    ],
)
def test_loopback_answers_pings(target):
    outcome = ping(target, count=3, intervalSeconds=0.1)
    assert outcome.status == "up", outcome.message
    assert outcome.message == "3/3 replies, 0% packet loss"
    details = outcome.details
    assert (details["packetsSent"], details["packetsReceived"], details["packetLossPercent"]) == (3, 3, 0.0)
    assert 0 < details["minRttMs"] <= details["avgRttMs"] <= details["maxRttMs"]


def test_ipv4_spellings_are_normalised_before_pinging():
    outcome = ping("0x7f.1", count=1)
    assert outcome.status == "up" and outcome.details["address"] == "127.0.0.1"


def test_pinging_loopback_is_refused_while_internal_targets_are_blocked(internal_targets_blocked):
    from datetime import UTC, datetime
    from uuid import uuid4

    now = datetime.now(UTC)
    job = CheckJob(
        run_id=uuid4(),
        monitor_id=uuid4(),
        location="us-east",
        type="ping_host",
        target="127.0.0.1",
        config={},
        scheduled_at=now,
        deadline=now,
    )
    outcome = asyncio.run(run_check(job))
    assert outcome.status == "error"
    assert "target: '127.0.0.1' is 127.0.0.1: loopback" in outcome.message


def test_without_icmp_permission_the_error_names_what_is_missing(monkeypatch):
    attempts: list[bool] = []

    async def refused(address, privileged=True, **kwargs):
        attempts.append(privileged)
        raise icmplib.SocketPermissionError(privileged)

    monkeypatch.setattr(ping_module.icmplib, "async_ping", refused)
    monkeypatch.setattr(ping_module, "_privileged_mode", None)
    outcome = ping("127.0.0.1", count=1)
    assert attempts == [False, True], "unprivileged sockets first, raw sockets second"
    assert outcome.status == "error"
    assert "CAP_NET_RAW" in outcome.message and "net.ipv4.ping_group_range" in outcome.message


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"count": 0}, "config.count"),
        ({"count": 21}, "config.count"),
        ({"intervalSeconds": 0.01}, "config.intervalSeconds"),
        ({"timeoutSeconds": 61}, "config.timeoutSeconds"),
        ({"maxPacketLossPercent": 0}, "config.maxPacketLossPercent"),
        ({"port": 80}, "config.port"),
    ],
)
def test_bad_ping_configs_are_refused_naming_the_field(config, field):
    from pydantic import ValidationError

    from shared.errors import validation_error_to_api_error

    with pytest.raises(ValidationError) as refused:
        CheckTrial.model_validate({"type": "ping_host", "target": "example.com", "config": config})
    assert validation_error_to_api_error(refused.value).field == field


@pytest.mark.parametrize("target", ["http://example.com", "example.com; reboot", "-f example.com", "a b"])
def test_ping_targets_must_be_a_hostname_or_an_ip(target):
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        CheckTrial.model_validate({"type": "ping_host", "target": target})


def test_the_hard_timeout_covers_every_ping_and_the_wait():
    from shared.checks import configured_timeout

    assert configured_timeout("ping_host", {"count": 10, "intervalSeconds": 1, "timeoutSeconds": 5}) == 15
    assert configured_timeout("ping_host", {}) == 3 * 0.5 + 5
